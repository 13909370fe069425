/*
 * Reads the driver's settings from the service's Parameters key, which the
 * lab writes with `reg add` before `sc start`:
 *   StreamPort    REG_DWORD  TCP port whose stream data is blocked
 *   ControlPort   REG_DWORD  UDP port of the single-NBL control traffic
 *   ForwardPrefix REG_SZ     "a.b.c.d/len": forwarded destinations to block
 * A missing key or value means its default. A value of the wrong type or out
 * of range fails the load with STATUS_INVALID_PARAMETER (sc start reports
 * error 87), so a typo never silently blocks the wrong traffic.
 */
#include "wfplab.h"

/* KEY_VALUE_PARTIAL_INFORMATION followed by room for the longest value we
 * accept; ULONG-aligned as ZwQueryValueKey requires. */
#define VALUE_DATA_MAX 128
typedef union {
    KEY_VALUE_PARTIAL_INFORMATION info;
    ULONG align[(sizeof(KEY_VALUE_PARTIAL_INFORMATION) + VALUE_DATA_MAX) / sizeof(ULONG) + 1];
} value_buffer;

/* Returns STATUS_OBJECT_NAME_NOT_FOUND when the value is absent. */
static NTSTATUS query_value(HANDLE key, const WCHAR *name, value_buffer *buf)
{
    UNICODE_STRING valueName;
    ULONG resultLength = 0;

    RtlInitUnicodeString(&valueName, name);
    return ZwQueryValueKey(key, &valueName, KeyValuePartialInformation, buf, sizeof(*buf), &resultLength);
}

static NTSTATUS read_port(HANDLE key, const WCHAR *name, UINT16 *port)
{
    value_buffer buf;
    ULONG value;
    NTSTATUS status = query_value(key, name, &buf);

    if (status == STATUS_OBJECT_NAME_NOT_FOUND) {
        return STATUS_SUCCESS; /* keep the default */
    }
    if (!NT_SUCCESS(status)) {
        WFPLAB_LOG("reading %ws failed: 0x%08lx\n", name, (unsigned long)status);
        return status;
    }
    if (buf.info.Type != REG_DWORD || buf.info.DataLength != sizeof(ULONG)) {
        WFPLAB_LOG("%ws must be REG_DWORD\n", name);
        return STATUS_INVALID_PARAMETER;
    }
    RtlCopyMemory(&value, buf.info.Data, sizeof(value));
    if (value == 0 || value > 65535) {
        WFPLAB_LOG("%ws=%lu is not a port (1-65535)\n", name, (unsigned long)value);
        return STATUS_INVALID_PARAMETER;
    }
    *port = (UINT16)value;
    return STATUS_SUCCESS;
}

/* Parses up to three decimal digits; returns the number of digits read. */
static SIZE_T parse_decimal(const WCHAR *text, SIZE_T chars, ULONG *value)
{
    SIZE_T i = 0;
    ULONG v = 0;

    while (i < chars && i < 3 && text[i] >= L'0' && text[i] <= L'9') {
        v = v * 10 + (ULONG)(text[i] - L'0');
        i++;
    }
    *value = v;
    return i;
}

/* "a.b.c.d/len" (or a bare "a.b.c.d", meaning /32) to a host-order address
 * and prefix length. Rejects anything else, including trailing text. */
BOOLEAN wfplab_parse_prefix(const WCHAR *text, SIZE_T chars, UINT32 *addr, UINT32 *prefixLen)
{
    SIZE_T pos = 0;
    UINT32 a = 0;
    ULONG part;
    SIZE_T n;
    int octet;

    for (octet = 0; octet < 4; octet++) {
        if (octet > 0) {
            if (pos >= chars || text[pos] != L'.') return FALSE;
            pos++;
        }
        n = parse_decimal(text + pos, chars - pos, &part);
        if (n == 0 || part > 255) return FALSE;
        pos += n;
        a = (a << 8) | part;
    }
    part = 32;
    if (pos < chars && text[pos] == L'/') {
        pos++;
        n = parse_decimal(text + pos, chars - pos, &part);
        if (n == 0 || n > 2 || part > 32) return FALSE;
        pos += n;
    }
    if (pos != chars) return FALSE;
    *addr = a;
    *prefixLen = part;
    return TRUE;
}

static NTSTATUS read_prefix(HANDLE key, struct wfplab_config *cfg)
{
    value_buffer buf;
    const WCHAR *text;
    SIZE_T chars;
    UINT32 addr;
    UINT32 len;
    NTSTATUS status = query_value(key, L"ForwardPrefix", &buf);

    if (status == STATUS_OBJECT_NAME_NOT_FOUND) {
        return STATUS_SUCCESS;
    }
    if (status == STATUS_BUFFER_OVERFLOW || status == STATUS_BUFFER_TOO_SMALL) {
        WFPLAB_LOG("ForwardPrefix is longer than an a.b.c.d/len prefix\n");
        return STATUS_INVALID_PARAMETER;
    }
    if (!NT_SUCCESS(status)) {
        WFPLAB_LOG("reading ForwardPrefix failed: 0x%08lx\n", (unsigned long)status);
        return status;
    }
    if (buf.info.Type != REG_SZ) {
        WFPLAB_LOG("ForwardPrefix must be REG_SZ\n");
        return STATUS_INVALID_PARAMETER;
    }
    text = (const WCHAR *)buf.info.Data;
    chars = buf.info.DataLength / sizeof(WCHAR);
    while (chars > 0 && text[chars - 1] == L'\0') {
        chars--; /* REG_SZ data normally ends in one NUL; tolerate none or several */
    }
    if (!wfplab_parse_prefix(text, chars, &addr, &len)) {
        WFPLAB_LOG("ForwardPrefix is not of the form a.b.c.d/len\n");
        return STATUS_INVALID_PARAMETER;
    }
    cfg->forward_prefix_len = len;
    cfg->forward_mask = len == 0 ? 0 : (0xFFFFFFFFUL << (32 - len));
    cfg->forward_addr = addr & cfg->forward_mask;
    return STATUS_SUCCESS;
}

NTSTATUS wfplab_read_config(const UNICODE_STRING *registryPath, struct wfplab_config *cfg)
{
    OBJECT_ATTRIBUTES attrs;
    UNICODE_STRING parametersName;
    HANDLE serviceKey = NULL;
    HANDLE parametersKey = NULL;
    NTSTATUS status;

    cfg->stream_port = WFPLAB_DEFAULT_STREAM_PORT;
    cfg->control_port = WFPLAB_DEFAULT_CONTROL_PORT;
    cfg->forward_prefix_len = WFPLAB_DEFAULT_FORWARD_PREFIX_LEN;
    cfg->forward_mask = 0xFFFFFFFFUL << (32 - WFPLAB_DEFAULT_FORWARD_PREFIX_LEN);
    cfg->forward_addr = WFPLAB_DEFAULT_FORWARD_ADDR & cfg->forward_mask;

    InitializeObjectAttributes(&attrs, (UNICODE_STRING *)registryPath, OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE,
                               NULL, NULL);
    status = ZwOpenKey(&serviceKey, KEY_READ, &attrs);
    if (!NT_SUCCESS(status)) {
        WFPLAB_LOG("opening the service key failed: 0x%08lx\n", (unsigned long)status);
        return status;
    }
    RtlInitUnicodeString(&parametersName, L"Parameters");
    InitializeObjectAttributes(&attrs, &parametersName, OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE, serviceKey, NULL);
    status = ZwOpenKey(&parametersKey, KEY_READ, &attrs);
    ZwClose(serviceKey);
    if (status == STATUS_OBJECT_NAME_NOT_FOUND) {
        return STATUS_SUCCESS; /* no Parameters key: all defaults */
    }
    if (!NT_SUCCESS(status)) {
        WFPLAB_LOG("opening the Parameters key failed: 0x%08lx\n", (unsigned long)status);
        return status;
    }

    status = read_port(parametersKey, L"StreamPort", &cfg->stream_port);
    if (NT_SUCCESS(status)) {
        status = read_port(parametersKey, L"ControlPort", &cfg->control_port);
    }
    if (NT_SUCCESS(status)) {
        status = read_prefix(parametersKey, cfg);
    }
    ZwClose(parametersKey);
    return status;
}
