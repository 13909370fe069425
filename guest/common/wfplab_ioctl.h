/*
 * The driver's user-mode interface, shared by guest/driver and guest/agent.
 * Both sides compile this one file, so the IOCTL codes and the buffer layout
 * cannot drift apart. Layout uses only fixed-width fields: the x86 agent on an
 * x64 guest reads the x64 driver's buffer unchanged.
 */
#ifndef WFPLAB_IOCTL_H
#define WFPLAB_IOCTL_H

#define WFPLAB_NT_DEVICE_NAME  L"\\Device\\WfplabCallout"
#define WFPLAB_DOS_DEVICE_NAME L"\\DosDevices\\WfplabCallout"
#define WFPLAB_WIN32_PATH      L"\\\\.\\WfplabCallout"

/* A vendor device type (0x8000-0xFFFF are reserved for vendors). */
#define WFPLAB_DEVICE_TYPE 0xA17B

/* CTL_CODE(DeviceType, Function, Method, Access), spelled out so this header
 * needs neither winioctl.h nor wdm.h. METHOD_BUFFERED = 0, FILE_READ_ACCESS = 1,
 * FILE_WRITE_ACCESS = 2. */
#define WFPLAB_CTL_CODE(function, access) \
    (((unsigned long)WFPLAB_DEVICE_TYPE << 16) | ((unsigned long)(access) << 14) | \
     ((unsigned long)(function) << 2) | 0UL)

/* Output: struct wfplab_counters. Input: none. */
#define IOCTL_WFPLAB_GET_COUNTERS   WFPLAB_CTL_CODE(0x800, 1)
/* Output: struct wfplab_counters as they were; then every counter is zeroed. */
#define IOCTL_WFPLAB_RESET_COUNTERS WFPLAB_CTL_CODE(0x801, 1 | 2)

/* Input: one ULONG, WFPLAB_MODE_BLOCK or WFPLAB_MODE_PERMIT. Output: struct
 * wfplab_counters as they are. Permit-and-count lets the same callouts measure
 * throughput; every load starts in block mode. 0x810 leaves 0x802-0x80F free. */
#define IOCTL_WFPLAB_SET_MODE WFPLAB_CTL_CODE(0x810, 1 | 2)
#define WFPLAB_MODE_BLOCK  0UL
#define WFPLAB_MODE_PERMIT 1UL

#define WFPLAB_COUNTERS_VERSION 1

/* Layers in the order guest/agent/FORMAT.md lists them. */
enum wfplab_layer {
    WFPLAB_LAYER_STREAM = 0,
    WFPLAB_LAYER_FORWARD = 1,
    WFPLAB_LAYER_TRANSPORT = 2,
    WFPLAB_LAYER_COUNT = 3
};

/* Chain-length histogram buckets: 1, 2, 3-4, 5-8, 9-16, 17 or more. */
#define WFPLAB_HIST_BUCKETS 6

/* One layer's counters, in FORMAT.md's order for the L.<layer> field. */
struct wfplab_layer_counters {
    unsigned long long classify;    /* classifyFn calls */
    unsigned long long blocked;     /* chains the callout blocked */
    unsigned long long nbls;        /* NBLs seen, summed over all chains */
    unsigned long long multi_chain; /* chains with more than one NBL */
    unsigned long long hist[WFPLAB_HIST_BUCKETS];
};

struct wfplab_counters {
    unsigned int version;     /* WFPLAB_COUNTERS_VERSION */
    unsigned int layer_count; /* WFPLAB_LAYER_COUNT */
    struct wfplab_layer_counters layer[WFPLAB_LAYER_COUNT];
};

#define WFPLAB_LAYER_FIELDS 10

_Static_assert(sizeof(struct wfplab_layer_counters) == WFPLAB_LAYER_FIELDS * 8,
               "layer counters are ten UINT64s");
_Static_assert(sizeof(struct wfplab_counters) == 8 + WFPLAB_LAYER_COUNT * WFPLAB_LAYER_FIELDS * 8,
               "counters buffer has no padding");

#endif
