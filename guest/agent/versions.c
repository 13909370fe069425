/* `versions`: the V1 inventory line (FORMAT.md). */
#include "agent.h"

#define STATUS_SUCCESS_NT 0
#define SYSTEM_MODULE_INFORMATION 11          /* SystemModuleInformation */
#define SYSTEM_CODE_INTEGRITY_INFORMATION 103 /* SystemCodeIntegrityInformation */
#define CODEINTEGRITY_OPTION_TESTSIGN 0x02

LONG NTAPI NtQuerySystemInformation(ULONG infoClass, PVOID info, ULONG length, PULONG returned);
LONG NTAPI RtlGetVersion(OSVERSIONINFOEXW *info);

struct code_integrity {
    ULONG Length; /* must be 8 */
    ULONG CodeIntegrityOptions;
};

/* RTL_PROCESS_MODULE_INFORMATION: one loaded kernel module; the first one
 * SystemModuleInformation lists is the kernel image itself. */
struct module_info {
    HANDLE section;
    void *mapped_base;
    void *image_base;
    ULONG image_size;
    ULONG flags;
    USHORT load_order_index;
    USHORT init_order_index;
    USHORT load_count;
    USHORT offset_to_file_name;
    UCHAR full_path_name[256];
};

struct module_list {
    ULONG count;
    struct module_info modules[1];
};

#if defined(_WIN64)
_Static_assert(sizeof(struct module_info) == 296 && __builtin_offsetof(struct module_list, modules) == 8,
               "RTL_PROCESS_MODULES on x64");
#else
_Static_assert(sizeof(struct module_info) == 284 && __builtin_offsetof(struct module_list, modules) == 4,
               "RTL_PROCESS_MODULES on x86");
#endif

/* The running kernel's file name (ntoskrnl.exe, or ntkrnlpa.exe on an x86
 * PAE kernel, which is a different file with its own version) into name, as
 * System32-relative UTF-16. FALSE when the system does not say. */
static BOOL kernel_image_name(WCHAR *name, unsigned cap)
{
    /* The kernel comes first: room for it and a few more is enough, and a
     * too-small buffer still gets the first entries on Vista and 7. */
    static union {
        struct module_list list;
        UCHAR bytes[sizeof(struct module_list) + 15 * sizeof(struct module_info)];
    } buf;
    ULONG returned = 0;
    LONG status = NtQuerySystemInformation(SYSTEM_MODULE_INFORMATION, &buf, sizeof(buf), &returned);
    const struct module_info *m = &buf.list.modules[0];
    const UCHAR *file;
    unsigned i;

    /* STATUS_INFO_LENGTH_MISMATCH still fills what fits on these systems. */
    if ((status != STATUS_SUCCESS_NT && status != (LONG)0xC0000004) || buf.list.count == 0 ||
        m->offset_to_file_name >= sizeof(m->full_path_name)) {
        return FALSE;
    }
    file = m->full_path_name + m->offset_to_file_name;
    for (i = 0; file[i] != 0 && i + 1 < cap && i + m->offset_to_file_name < sizeof(m->full_path_name); i++) {
        if (file[i] < ' ' || file[i] > '~' || file[i] == '\\' || file[i] == '/') {
            return FALSE;
        }
        name[i] = file[i];
    }
    name[i] = L'\0';
    return i > 0 && file[i] == 0;
}

/* %windir%\<dir>\<file>, where dir is System32, or Sysnative from a 32-bit
 * process on 64-bit Windows (System32 is redirected to SysWOW64 there). */
static BOOL system_path(WCHAR *out, unsigned cap, const WCHAR *relative)
{
    BOOL wow64 = FALSE;
    UINT n = GetSystemWindowsDirectoryW(out, cap);
    const WCHAR *dir;
    unsigned i;

    if (n == 0 || n >= cap) {
        return FALSE;
    }
    if (!IsWow64Process(GetCurrentProcess(), &wow64)) {
        wow64 = FALSE;
    }
    dir = wow64 ? L"\\Sysnative\\" : L"\\System32\\";
    for (i = 0; dir[i] != L'\0'; i++) {
        if (n + 1 >= cap) return FALSE;
        out[n++] = dir[i];
    }
    for (i = 0; relative[i] != L'\0'; i++) {
        if (n + 1 >= cap) return FALSE;
        out[n++] = relative[i];
    }
    out[n] = L'\0';
    return TRUE;
}

/* The fixed version block of a file's version resource. */
static BOOL file_version(const WCHAR *relative, VS_FIXEDFILEINFO *fixed)
{
    WCHAR path[MAX_PATH + 64];
    DWORD ignored = 0;
    DWORD size;
    void *data;
    VS_FIXEDFILEINFO *info = NULL;
    UINT infoLen = 0;
    BOOL ok = FALSE;

    if (!system_path(path, sizeof(path) / sizeof(path[0]), relative)) {
        return FALSE;
    }
    size = GetFileVersionInfoSizeW(path, &ignored);
    if (size == 0 || size > 16 * 1024 * 1024) {
        return FALSE;
    }
    data = mem_alloc(size);
    if (data == NULL) {
        return FALSE;
    }
    if (GetFileVersionInfoW(path, 0, size, data) && VerQueryValueW(data, L"\\", (void **)&info, &infoLen) &&
        info != NULL && infoLen >= sizeof(*info) && info->dwSignature == 0xFEEF04BD) {
        *fixed = *info;
        ok = TRUE;
    }
    mem_free(data);
    return ok;
}

/* "a.b.c.d" from a file version, or "missing". */
static void file_version_text(const WCHAR *relative, char *out)
{
    VS_FIXEDFILEINFO info;
    DWORD parts[4];
    unsigned n = 0;
    int i;

    if (!file_version(relative, &info)) {
        memcpy(out, "missing", 8);
        return;
    }
    parts[0] = HIWORD(info.dwFileVersionMS);
    parts[1] = LOWORD(info.dwFileVersionMS);
    parts[2] = HIWORD(info.dwFileVersionLS);
    parts[3] = LOWORD(info.dwFileVersionLS);
    for (i = 0; i < 4; i++) {
        if (i > 0) out[n++] = '.';
        n += format_u64(out + n, parts[i]);
    }
}

/* Whether "TESTSIGNING" is a whole word of s (case-insensitive). */
static BOOL has_testsigning_word(const WCHAR *s, unsigned len)
{
    static const char word[] = "TESTSIGNING";
    const unsigned wlen = sizeof(word) - 1;
    unsigned i;
    unsigned k;

    for (i = 0; i + wlen <= len; i++) {
        if (i > 0 && s[i - 1] != L' ' && s[i - 1] != L'/') continue;
        for (k = 0; k < wlen; k++) {
            WCHAR c = s[i + k];
            if (c >= L'a' && c <= L'z') c = (WCHAR)(c - L'a' + L'A');
            if (c != (WCHAR)word[k]) break;
        }
        if (k == wlen && (i + wlen == len || s[i + wlen] == L' ' || s[i + wlen] == L'=')) {
            return TRUE;
        }
    }
    return FALSE;
}

/* Test signing in force for this boot: code integrity's own answer, else the
 * boot options the loader passed (SystemStartOptions holds " TESTSIGNING"
 * when bcdedit's testsigning was on at boot). Returns FALSE if neither could
 * be read. */
static BOOL test_signing(BOOL *on)
{
    struct code_integrity ci;
    ULONG returned = 0;
    HKEY key;
    WCHAR options[1024];
    DWORD type = 0;
    DWORD bytes = sizeof(options) - sizeof(WCHAR);

    ci.Length = sizeof(ci);
    ci.CodeIntegrityOptions = 0;
    if (NtQuerySystemInformation(SYSTEM_CODE_INTEGRITY_INFORMATION, &ci, sizeof(ci), &returned) ==
        STATUS_SUCCESS_NT) {
        *on = (ci.CodeIntegrityOptions & CODEINTEGRITY_OPTION_TESTSIGN) != 0;
        return TRUE;
    }
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, L"SYSTEM\\CurrentControlSet\\Control", 0, KEY_QUERY_VALUE, &key) !=
        ERROR_SUCCESS) {
        return FALSE;
    }
    memset(options, 0, sizeof(options));
    if (RegQueryValueExW(key, L"SystemStartOptions", NULL, &type, (BYTE *)options, &bytes) != ERROR_SUCCESS ||
        type != REG_SZ) {
        RegCloseKey(key);
        return FALSE;
    }
    RegCloseKey(key);
    *on = has_testsigning_word(options, (unsigned)wcslen(options));
    return TRUE;
}

/* State of the wfplabcallout service; NULL with *error set if SCM failed. */
static const char *service_state(DWORD *error)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    SC_HANDLE svc;
    SERVICE_STATUS status;
    const char *state;

    if (scm == NULL) {
        *error = GetLastError();
        return NULL;
    }
    svc = OpenServiceW(scm, L"wfplabcallout", SERVICE_QUERY_STATUS);
    if (svc == NULL) {
        *error = GetLastError();
        CloseServiceHandle(scm);
        return *error == ERROR_SERVICE_DOES_NOT_EXIST ? "absent" : NULL;
    }
    if (!QueryServiceStatus(svc, &status)) {
        *error = GetLastError();
        state = NULL;
    } else {
        switch (status.dwCurrentState) {
        case SERVICE_STOPPED:
            state = "stopped";
            break;
        case SERVICE_START_PENDING:
            state = "start_pending";
            break;
        case SERVICE_STOP_PENDING:
            state = "stop_pending";
            break;
        default:
            /* RUNNING; a kernel driver is never paused or pending-continue. */
            state = "running";
            break;
        }
    }
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return state;
}

int cmd_versions(void)
{
    static struct line l;
    OSVERSIONINFOEXW os;
    VS_FIXEDFILEINFO kernel;
    WCHAR kernelName[64];
    char text[64];
    unsigned n;
    const char *arch = os_arch();
    const char *svc;
    DWORD error = 0;
    BOOL testsign = FALSE;

    memset(&os, 0, sizeof(os));
    os.dwOSVersionInfoSize = sizeof(os);
    if (RtlGetVersion(&os) != STATUS_SUCCESS_NT) {
        report_error("RtlGetVersion", 0, "cannot read the OS version");
        return EXIT_QUERY_FAILED;
    }
    if (arch == NULL) {
        report_error("GetNativeSystemInfo", 0, "the OS is neither x86 nor x64");
        return EXIT_QUERY_FAILED;
    }
    /* The build of the kernel that is running; ntoskrnl.exe when the system
     * does not name it (or its file has no version). */
    if (!kernel_image_name(kernelName, sizeof(kernelName) / sizeof(kernelName[0])) ||
        !file_version(kernelName, &kernel)) {
        if (!file_version(L"ntoskrnl.exe", &kernel)) {
            report_error("ntoskrnl.exe", GetLastError(), "cannot read the kernel's version resource");
            return EXIT_QUERY_FAILED;
        }
    }
    if (!test_signing(&testsign)) {
        report_error("testsigning", GetLastError(), "neither code integrity nor SystemStartOptions answered");
        return EXIT_QUERY_FAILED;
    }
    svc = service_state(&error);
    if (svc == NULL) {
        report_error("wfplabcallout service", error, "cannot query the service control manager");
        return EXIT_QUERY_FAILED;
    }

    line_start(&l, "V1");
    /* build.revision of ntoskrnl's product version, e.g. 7600.16385 */
    n = format_u64(text, HIWORD(kernel.dwProductVersionLS));
    text[n++] = '.';
    format_u64(text + n, LOWORD(kernel.dwProductVersionLS));
    line_field(&l, "os_build", text);
    n = format_u64(text, os.dwMajorVersion);
    text[n++] = '.';
    format_u64(text + n, os.dwMinorVersion);
    line_field(&l, "os_version", text);
    line_field_u64(&l, "sp", os.wServicePackMajor);
    line_field(&l, "arch", arch);
    file_version_text(L"drivers\\netio.sys", text);
    line_field(&l, "netio", text);
    file_version_text(L"drivers\\tcpip.sys", text);
    line_field(&l, "tcpip", text);
    file_version_text(L"drivers\\fwpkclnt.sys", text);
    line_field(&l, "fwpkclnt", text);
    line_field(&l, "testsigning", testsign ? "on" : "off");
    line_field(&l, "drv_service", svc);
    line_field_u64(&l, "boot_us", boot_microseconds());
    return line_write(&l) ? EXIT_OK : EXIT_QUERY_FAILED;
}
