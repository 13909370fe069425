/* Declarations shared by the driver's source files. */
#ifndef WFPLAB_DRIVER_H
#define WFPLAB_DRIVER_H

#include "wfpk.h"
#include "../common/wfplab_ioctl.h"

/* What the driver blocks, from HKLM\SYSTEM\CurrentControlSet\Services\
 * wfplabcallout\Parameters. Ports and address are host byte order. */
struct wfplab_config {
    UINT16 stream_port;  /* StreamPort (REG_DWORD): TCP local port, stream layer */
    UINT16 control_port; /* ControlPort (REG_DWORD): UDP local port, inbound transport */
    UINT32 forward_addr; /* ForwardPrefix (REG_SZ "a.b.c.d/len"): forwarding layer */
    UINT32 forward_mask;
    UINT32 forward_prefix_len;
};

/* Defaults when a value is absent: the lab's usual ports, and the RFC 2544
 * benchmarking network, which is never routed anywhere real. */
#define WFPLAB_DEFAULT_STREAM_PORT 49152
#define WFPLAB_DEFAULT_CONTROL_PORT 49153
#define WFPLAB_DEFAULT_FORWARD_ADDR 0xC6120000UL /* 198.18.0.0 */
#define WFPLAB_DEFAULT_FORWARD_PREFIX_LEN 15

/* config.c */
NTSTATUS wfplab_read_config(const UNICODE_STRING *registryPath, struct wfplab_config *cfg);
BOOLEAN wfplab_parse_prefix(const WCHAR *text, SIZE_T chars, UINT32 *addr, UINT32 *prefixLen);

/* callouts.c */
/* midStream: set FWP_CALLOUT_FLAG_ALLOW_MID_STREAM_INSPECTION on the stream
 * callout (Windows 7 and later only; Vista rejects the flag). */
NTSTATUS wfplab_register_callouts(DEVICE_OBJECT *device, const struct wfplab_config *cfg, BOOLEAN midStream);
void wfplab_unregister_callouts(void);
void wfplab_set_mode(ULONG mode);

/* counters.c */
/* Counts a chain seen (NULL: none, returns 0) and returns its length. */
UINT64 wfplab_count_chain(enum wfplab_layer layer, const NET_BUFFER_LIST *chain);
void wfplab_count_classify(enum wfplab_layer layer);
void wfplab_count_blocked(enum wfplab_layer layer, UINT64 chainLength);
void wfplab_read_counters(struct wfplab_counters_v2 *out, BOOLEAN reset);
void wfplab_counters_v1(const struct wfplab_counters_v2 *in, struct wfplab_counters *out);

/* security.c */
/* Gives the device a DACL of SYSTEM and Administrators (full access) only. */
NTSTATUS wfplab_secure_device(DEVICE_OBJECT *device);

#define WFPLAB_LOG(...) DbgPrintEx(DPFLTR_IHVNETWORK_ID, DPFLTR_ERROR_LEVEL, "wfplabcallout: " __VA_ARGS__)

#endif
