/*
 * wfplab-harness.exe: runs the real wfplabcallout.sys in a user-mode process
 * under wine (test build only, never shipped). See guest/README.md.
 *
 *   wfplab-harness.exe DRIVER.sys [load-only | AGENT.exe]
 *
 * Loads the driver image with LoadLibraryEx (its ntoskrnl.exe imports bind
 * to wine's builtin ntoskrnl.exe, its fwpkclnt.sys imports to the stand-in
 * next to this exe), runs wine's IRP loop (wine_ntoskrnl_main_loop) on a
 * thread as winedevice.exe does, starts the driver with IoCreateDriver, then
 * drives it: classify calls through the callouts it registered with the
 * stand-in, counters through DeviceIoControl on \\.\WfplabCallout, and
 * DriverUnload. Every result is one line "KIND key=value ..." on stdout;
 * guest/harness_test.go checks them. Exit 0 when the run got to its end (the
 * test judges the lines), 2 when the harness itself could not go on.
 */
#include <windows.h>
#include <sddl.h>
#include <stdio.h>
#include <string.h>

#include "../common/wfplab_ioctl.h"
#include "harness.h"
#include "stub.h"

#define REG_SERVICE L"SYSTEM\\CurrentControlSet\\Services\\wfplabcallout"
#define TEST_STREAM_PORT 50001
#define TEST_CONTROL_PORT 50002
#define TEST_FORWARD_PREFIX L"10.20.30.0/24"

#ifndef STATUS_DEVICE_BUSY
#define STATUS_DEVICE_BUSY ((long)0x80000011L)
#endif
#define STATUS_FWP_IN_USE_VALUE ((long)0xC022000AL)

static stub_log_fn stub_log;
static stub_fail_unregister_fn stub_fail_unregister;
static stub_classify_for_layer_fn stub_classify_for_layer;
static stub_state_fn stub_state;
static size_t g_log_printed;

static const char *const LAYER_NAMES[3] = {"stream", "forward", "transport"};

static void fail(const char *what, DWORD err)
{
    printf("FATAL what=%s err=%lu\n", what, (unsigned long)err);
    fflush(stdout);
    ExitProcess(2);
}

/* Prints the stub's log lines not printed yet. */
static void flush_stub_log(void)
{
    const char *log = stub_log();
    size_t len = strlen(log);

    if (len > g_log_printed) {
        fwrite(log + g_log_printed, 1, len - g_log_printed, stdout);
        g_log_printed = len;
    }
    fflush(stdout);
}

static void write_config(void)
{
    HKEY key;
    DWORD v;
    LONG rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, REG_SERVICE L"\\Parameters", 0, NULL, 0, KEY_ALL_ACCESS, NULL,
                              &key, NULL);
    if (rc != ERROR_SUCCESS) fail("RegCreateKeyEx(Parameters)", (DWORD)rc);
    v = TEST_STREAM_PORT;
    rc = RegSetValueExW(key, L"StreamPort", 0, REG_DWORD, (const BYTE *)&v, sizeof(v));
    v = TEST_CONTROL_PORT;
    if (rc == ERROR_SUCCESS) rc = RegSetValueExW(key, L"ControlPort", 0, REG_DWORD, (const BYTE *)&v, sizeof(v));
    if (rc == ERROR_SUCCESS) {
        rc = RegSetValueExW(key, L"ForwardPrefix", 0, REG_SZ, (const BYTE *)TEST_FORWARD_PREFIX,
                            sizeof(TEST_FORWARD_PREFIX));
    }
    RegCloseKey(key);
    if (rc != ERROR_SUCCESS) fail("RegSetValueEx(Parameters)", (DWORD)rc);
    printf("CONFIG stream_port=%u control_port=%u forward_prefix=%ls\n", TEST_STREAM_PORT, TEST_CONTROL_PORT,
           TEST_FORWARD_PREFIX);
}

static void print_os_version(void)
{
    typedef LONG(WINAPI * rtl_get_version_fn)(OSVERSIONINFOW *);
    rtl_get_version_fn get = (rtl_get_version_fn)(void *)GetProcAddress(GetModuleHandleW(L"ntdll.dll"),
                                                                         "RtlGetVersion");
    OSVERSIONINFOW v;

    memset(&v, 0, sizeof(v));
    v.dwOSVersionInfoSize = sizeof(v);
    if (get == NULL || get(&v) != 0) fail("RtlGetVersion", GetLastError());
    printf("OS major=%lu minor=%lu build=%lu\n", (unsigned long)v.dwMajorVersion, (unsigned long)v.dwMinorVersion,
           (unsigned long)v.dwBuildNumber);
}

static void *stub_export(HMODULE stub, const char *name)
{
    void *p = (void *)GetProcAddress(stub, name);
    if (p == NULL) fail(name, GetLastError());
    return p;
}

/* --- wine's IRP loop ----------------------------------------------------- */

typedef LONG(__cdecl *main_loop_fn)(HANDLE stop);
static main_loop_fn g_main_loop;

static DWORD WINAPI irp_thread(void *stop)
{
    return (DWORD)g_main_loop((HANDLE)stop);
}

/* --- the device ---------------------------------------------------------- */

static HANDLE open_device(DWORD *err)
{
    HANDLE h = CreateFileW(WFPLAB_WIN32_PATH, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    *err = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
    return h;
}

static void print_device(const char *phase)
{
    WCHAR target[256];
    DWORD err;
    HANDLE h;
    long nt = harness_open_nt((const unsigned short *)WFPLAB_NT_DEVICE_NAME);

    if (QueryDosDeviceW(L"WfplabCallout", target, 256) == 0) {
        lstrcpyW(target, L"none");
    }
    h = open_device(&err);
    if (h != INVALID_HANDLE_VALUE) CloseHandle(h);
    printf("DEVICE phase=%s nt_open=0x%08lx dos_link=%ls open_err=%lu\n", phase, (unsigned long)nt, target,
           (unsigned long)err);
}

static void print_sddl(const char *via, PSECURITY_DESCRIPTOR sd)
{
    LPWSTR sddl = NULL;

    if (!ConvertSecurityDescriptorToStringSecurityDescriptorW(sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &sddl,
                                                              NULL)) {
        printf("DACL via=%s err=%lu\n", via, (unsigned long)GetLastError());
        return;
    }
    printf("DACL via=%s sddl=%ls\n", via, sddl[0] ? sddl : L"none");
    LocalFree(sddl);
}

/* The device's DACL as SDDL: from the device object (what the driver set),
 * and through a user handle to it (what a user asking the I/O manager sees). */
static void print_dacl(void)
{
    ULONGLONG buf[128];
    unsigned int need = 0;
    DWORD got = 0;
    long status = harness_device_sd(buf, sizeof(buf), &need);
    HANDLE h;

    if (status != 0) {
        printf("DACL via=object status=0x%08lx\n", (unsigned long)status);
    } else {
        print_sddl("object", (PSECURITY_DESCRIPTOR)buf);
    }
    h = CreateFileW(WFPLAB_WIN32_PATH, READ_CONTROL, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        printf("DACL via=handle err=%lu\n", (unsigned long)GetLastError());
        return;
    }
    if (!GetKernelObjectSecurity(h, DACL_SECURITY_INFORMATION, (PSECURITY_DESCRIPTOR)buf, sizeof(buf), &got)) {
        printf("DACL via=handle err=%lu\n", (unsigned long)GetLastError());
    } else {
        print_sddl("handle", (PSECURITY_DESCRIPTOR)buf);
    }
    CloseHandle(h);
}

/* Opens the device as this user (wine's user is an administrator), then with
 * a token whose Administrators group is deny-only and whose privileges are
 * gone: what a user who is not an administrator holds. The same token opens
 * a named event with the device's DACL, so the line shows whether wine
 * checks such a DACL for that token at all. */
static void print_opens(void)
{
    static const WCHAR eventName[] = L"Local\\wfplab-harness-dacl-control";
    BYTE adminsSid[SECURITY_MAX_SID_SIZE];
    DWORD sidSize = sizeof(adminsSid);
    SID_AND_ATTRIBUTES disable;
    SECURITY_ATTRIBUTES sa;
    PSECURITY_DESCRIPTOR sd = NULL;
    HANDLE token = NULL, restricted = NULL, impersonation = NULL, event = NULL;
    DWORD err, eventErr;
    HANDLE h = open_device(&err);

    if (h != INVALID_HANDLE_VALUE) CloseHandle(h);
    printf("OPEN who=admin err=%lu\n", (unsigned long)err);

    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(L"D:P(A;;GA;;;SY)(A;;GA;;;BA)", SDDL_REVISION_1, &sd,
                                                              NULL)) {
        printf("OPEN who=user setup_err=%lu\n", (unsigned long)GetLastError());
        return;
    }
    sa.nLength = sizeof(sa);
    sa.lpSecurityDescriptor = sd;
    sa.bInheritHandle = FALSE;
    event = CreateEventW(&sa, TRUE, FALSE, eventName);
    if (event == NULL || !CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, adminsSid, &sidSize) ||
        !OpenProcessToken(GetCurrentProcess(), TOKEN_ALL_ACCESS, &token)) {
        printf("OPEN who=user setup_err=%lu\n", (unsigned long)GetLastError());
        goto out;
    }
    disable.Sid = adminsSid;
    disable.Attributes = 0;
    if (!CreateRestrictedToken(token, DISABLE_MAX_PRIVILEGE, 1, &disable, 0, NULL, 0, NULL, &restricted) ||
        !DuplicateTokenEx(restricted, TOKEN_ALL_ACCESS, NULL, SecurityImpersonation, TokenImpersonation,
                          &impersonation) ||
        !SetThreadToken(NULL, impersonation)) {
        printf("OPEN who=user setup_err=%lu\n", (unsigned long)GetLastError());
        goto out;
    }
    h = open_device(&err);
    if (h != INVALID_HANDLE_VALUE) CloseHandle(h);
    {
        HANDLE e = OpenEventW(EVENT_MODIFY_STATE, FALSE, eventName);
        eventErr = e == NULL ? GetLastError() : 0;
        if (e != NULL) CloseHandle(e);
    }
    RevertToSelf();
    printf("OPEN who=user err=%lu control_event_err=%lu\n", (unsigned long)err, (unsigned long)eventErr);
out:
    if (impersonation != NULL) CloseHandle(impersonation);
    if (restricted != NULL) CloseHandle(restricted);
    if (token != NULL) CloseHandle(token);
    if (event != NULL) CloseHandle(event);
    LocalFree(sd);
}

/* One IOCTL; prints what came back. A v2 buffer is printed field by field. */
static void ioctl_line(const char *when, const char *name, DWORD code, const void *in, DWORD inLength,
                       DWORD outLength)
{
    struct wfplab_counters_v2 buf;
    DWORD got = 0;
    DWORD err;
    HANDLE h = open_device(&err);
    unsigned int l, i;

    if (h == INVALID_HANDLE_VALUE) {
        printf("COUNTERS when=%s ioctl=%s open_err=%lu\n", when, name, (unsigned long)err);
        return;
    }
    memset(&buf, 0xEE, sizeof(buf));
    if (in != NULL) memcpy(&buf, in, inLength);
    err = DeviceIoControl(h, code, in != NULL ? &buf : NULL, inLength, &buf, outLength, &got, NULL) ? 0
                                                                                                   : GetLastError();
    CloseHandle(h);
    printf("COUNTERS when=%s ioctl=%s err=%lu bytes=%lu", when, name, (unsigned long)err, (unsigned long)got);
    if (err == 0 && got >= 8) {
        unsigned int fields = buf.version == WFPLAB_COUNTERS_VERSION_2 ? WFPLAB_LAYER_FIELDS_V2 : WFPLAB_LAYER_FIELDS;
        const unsigned long long *v = (const unsigned long long *)((const char *)&buf + 8);
        printf(" version=%u layers=%u", buf.version, buf.layer_count);
        for (l = 0; l < 3 && 8 + (l + 1) * fields * 8 <= got; l++) {
            printf(" L.%s=", LAYER_NAMES[l]);
            for (i = 0; i < fields; i++) printf("%s%llu", i ? "," : "", v[l * fields + i]);
        }
    }
    printf("\n");
    fflush(stdout);
}

static void get_v2(const char *when)
{
    ioctl_line(when, "get_v2", IOCTL_WFPLAB_GET_COUNTERS_V2, NULL, 0, sizeof(struct wfplab_counters_v2));
}

static void set_mode(const char *when, ULONG mode)
{
    ioctl_line(when, mode == WFPLAB_MODE_PERMIT ? "set_mode_permit" : "set_mode_block", IOCTL_WFPLAB_SET_MODE,
               &mode, sizeof(mode), sizeof(struct wfplab_counters));
}

/* --- classify ------------------------------------------------------------ */

static void classify(const char *mode, enum harness_layer layer, unsigned int nbls, int right,
                     unsigned long long dataLength)
{
    void *fn = stub_classify_for_layer(harness_layer_key(layer));
    struct harness_classify r;

    if (fn == NULL) {
        printf("CLASSIFY layer=%s nbls=%u right=%d data=%llu mode=%s callout=missing\n", LAYER_NAMES[layer], nbls,
               right, dataLength, mode);
        return;
    }
    harness_classify(layer, fn, nbls, right, dataLength, &r);
    printf("CLASSIFY layer=%s nbls=%u right=%d data=%llu mode=%s action=0x%08x rights=0x%08x enforced=%llu "
           "required=%u intact=%d\n",
           LAYER_NAMES[layer], nbls, right, dataLength, mode, r.action, r.rights,
           layer == H_STREAM ? r.bytes_enforced : 0ULL, layer == H_STREAM ? r.bytes_required : 0u, r.chain_intact);
}

/* Stream data is one 1460-byte segment per NBL; zero-length is a FIN/RST. */
static void classify_stream(const char *mode, unsigned int nbls, int right)
{
    classify(mode, H_STREAM, nbls, right, (unsigned long long)nbls * 1460);
}

static void run_classify_cases(void)
{
    static const unsigned int chains[] = {1, 2, 9};
    unsigned int i;
    int right;

    for (right = 1; right >= 0; right--) {
        for (i = 0; i < 3; i++) classify_stream("block", chains[i], right);
        classify("block", H_STREAM, 0, right, 0); /* FIN/RST: no data, no chain */
        for (i = 0; i < 3; i++) classify("block", H_FORWARD, chains[i], right, 0);
        classify("block", H_TRANSPORT, 1, right, 0);
    }
    get_v2("block");
    ioctl_line("block", "get_v1", IOCTL_WFPLAB_GET_COUNTERS, NULL, 0, sizeof(struct wfplab_counters));
    ioctl_line("block", "reset_v2", IOCTL_WFPLAB_RESET_COUNTERS_V2, NULL, 0, sizeof(struct wfplab_counters_v2));
    get_v2("after_reset");
    ioctl_line("after_reset", "get_v2_short", IOCTL_WFPLAB_GET_COUNTERS_V2, NULL, 0,
               sizeof(struct wfplab_counters));
    ioctl_line("after_reset", "unknown_code", WFPLAB_CTL_CODE(0x80F, 1), NULL, 0,
               sizeof(struct wfplab_counters_v2));

    set_mode("permit", WFPLAB_MODE_PERMIT);
    classify_stream("permit", 2, 1);
    classify_stream("permit", 9, 1);
    classify("permit", H_FORWARD, 2, 1, 0);
    classify("permit", H_TRANSPORT, 1, 1, 0);
    get_v2("permit");
    set_mode("block_again", WFPLAB_MODE_BLOCK);
    classify_stream("block_again", 2, 1);
    get_v2("block_again");
}

/* Runs `AGENT.exe counters` in its own process while the driver is loaded:
 * its open and IOCTLs reach this process's device through wineserver. Each
 * line it prints comes back as "AGENT <line>". */
static void run_agent(const char *agent)
{
    char cmd[MAX_PATH + 32];
    static char out[4096];
    SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, TRUE};
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    HANDLE rd, wr;
    DWORD got, total = 0, code = 0;
    char *line, *next;

    if (!CreatePipe(&rd, &wr, &sa, 0)) fail("CreatePipe(agent)", GetLastError());
    SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdOutput = wr;
    si.hStdError = wr;
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    snprintf(cmd, sizeof(cmd), "\"%s\" counters", agent);
    if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
        printf("AGENT start_err=%lu\n", (unsigned long)GetLastError());
        CloseHandle(rd);
        CloseHandle(wr);
        return;
    }
    CloseHandle(wr);
    while (total + 1 < sizeof(out) && ReadFile(rd, out + total, (DWORD)(sizeof(out) - 1 - total), &got, NULL) &&
           got > 0) {
        total += got;
    }
    out[total] = 0;
    CloseHandle(rd);
    if (WaitForSingleObject(pi.hProcess, 30000) != WAIT_OBJECT_0) TerminateProcess(pi.hProcess, 9);
    GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hProcess);
    CloseHandle(pi.hThread);
    for (line = out; *line; line = next) {
        next = strchr(line, '\n');
        if (next != NULL) *next++ = 0; else next = line + strlen(line);
        if (*line && line[strlen(line) - 1] == '\r') line[strlen(line) - 1] = 0;
        if (*line) printf("AGENT %s\n", line);
    }
    printf("AGENTEXIT code=%lu\n", (unsigned long)code);
    fflush(stdout);
}

/* --- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
    WCHAR driverPath[MAX_PATH];
    HMODULE image, stub;
    IMAGE_NT_HEADERS *nt;
    HANDLE stop, thread;
    LARGE_INTEGER f, t0, t1;
    long status;
    int loadOnly = argc == 3 && strcmp(argv[2], "load-only") == 0;
    const char *agent = argc == 3 && !loadOnly ? argv[2] : NULL;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: wfplab-harness.exe DRIVER.sys [load-only | AGENT.exe]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    MultiByteToWideChar(CP_ACP, 0, argv[1], -1, driverPath, MAX_PATH);
    write_config();
    print_os_version();

    /* The stand-in first, from this exe's folder, so the driver's import of
     * fwpkclnt.sys binds to it (same base name: the loader reuses it). */
    stub = LoadLibraryW(L"fwpkclnt.sys");
    if (stub == NULL) fail("LoadLibrary(fwpkclnt.sys stand-in)", GetLastError());
    stub_log = (stub_log_fn)stub_export(stub, "stub_log");
    stub_fail_unregister = (stub_fail_unregister_fn)stub_export(stub, "stub_fail_unregister");
    stub_classify_for_layer = (stub_classify_for_layer_fn)stub_export(stub, "stub_classify_for_layer");
    stub_state = (stub_state_fn)stub_export(stub, "stub_state");

    image = LoadLibraryExW(driverPath, NULL, 0);
    if (image == NULL) fail("LoadLibraryEx(driver)", GetLastError());
    nt = (IMAGE_NT_HEADERS *)((BYTE *)image + ((IMAGE_DOS_HEADER *)image)->e_lfanew);
    printf("LOAD base=%p preferred=0x%llx entry_rva=0x%lx subsystem=%u\n", (void *)image,
           (unsigned long long)nt->OptionalHeader.ImageBase, (unsigned long)nt->OptionalHeader.AddressOfEntryPoint,
           (unsigned)nt->OptionalHeader.Subsystem);

    g_main_loop = (main_loop_fn)(void *)GetProcAddress(GetModuleHandleW(L"ntoskrnl.exe"), "wine_ntoskrnl_main_loop");
    if (g_main_loop == NULL) fail("wine_ntoskrnl_main_loop (not wine?)", GetLastError());
    stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    thread = CreateThread(NULL, 0, irp_thread, stop, 0, NULL);
    if (stop == NULL || thread == NULL) fail("CreateThread(IRP loop)", GetLastError());

    status = harness_driver_entry((BYTE *)image + nt->OptionalHeader.AddressOfEntryPoint,
                                  (const unsigned short *)L"\\Driver\\wfplabcallout");
    flush_stub_log();
    printf("ENTRY status=0x%08lx registry_path=%ls dispatch=%d\n", (unsigned long)status,
           (const WCHAR *)harness_registry_path(), harness_dispatch_set());
    printf("%s\n", stub_state());
    if (status != 0) {
        printf("DONE\n");
        return 0;
    }
    print_device("loaded");
    if (!loadOnly) {
        print_dacl();
        print_opens();
        get_v2("initial");
        run_classify_cases();
        if (agent != NULL) run_agent(agent);
        /* The engine keeps the first callout it is asked to unregister busy
         * for two calls, then in use for two: unload must wait them out. */
        stub_fail_unregister(0, 2, STATUS_DEVICE_BUSY);
        stub_fail_unregister(0, 2, STATUS_FWP_IN_USE_VALUE);
    }
    flush_stub_log();

    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&t0);
    status = harness_driver_unload();
    QueryPerformanceCounter(&t1);
    flush_stub_log();
    printf("UNLOAD status=0x%08lx ms=%llu\n", (unsigned long)status,
           (unsigned long long)((t1.QuadPart - t0.QuadPart) * 1000 / f.QuadPart));
    printf("%s\n", stub_state());
    print_device("unloaded");

    SetEvent(stop);
    if (WaitForSingleObject(thread, 10000) != WAIT_OBJECT_0) printf("IRPLOOP stopped=0\n");
    printf("DONE\n");
    fflush(stdout);
    return 0;
}
