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

/* Version 1. Output: struct wfplab_counters. Input: none. */
#define IOCTL_WFPLAB_GET_COUNTERS   WFPLAB_CTL_CODE(0x800, 1)
/* Output: struct wfplab_counters as they were; then every counter is zeroed. */
#define IOCTL_WFPLAB_RESET_COUNTERS WFPLAB_CTL_CODE(0x801, 1 | 2)

/* Input: one ULONG, WFPLAB_MODE_BLOCK or WFPLAB_MODE_PERMIT. Output: struct
 * wfplab_counters (version 1) as they are. Permit-and-count lets the same callouts measure
 * throughput; every load starts in block mode. 0x810 leaves 0x802-0x80F free. */
#define IOCTL_WFPLAB_SET_MODE WFPLAB_CTL_CODE(0x810, 1 | 2)
#define WFPLAB_MODE_BLOCK  0UL
#define WFPLAB_MODE_PERMIT 1UL

/* Version 2 adds multi_blocked; the version 1 codes stay, so an older agent
 * still reads a newer driver. Output: struct wfplab_counters_v2. */
#define IOCTL_WFPLAB_GET_COUNTERS_V2   WFPLAB_CTL_CODE(0x802, 1)
#define IOCTL_WFPLAB_RESET_COUNTERS_V2 WFPLAB_CTL_CODE(0x803, 1 | 2)

#define WFPLAB_COUNTERS_VERSION 1
#define WFPLAB_COUNTERS_VERSION_2 2

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
    unsigned long long blocked;     /* classify calls that set FWP_ACTION_BLOCK */
    unsigned long long nbls;        /* NBLs seen, summed over all chains */
    unsigned long long multi_chain; /* chains seen with more than one NBL, blocked or not */
    unsigned long long hist[WFPLAB_HIST_BUCKETS];
};

struct wfplab_counters {
    unsigned int version;     /* WFPLAB_COUNTERS_VERSION */
    unsigned int layer_count; /* WFPLAB_LAYER_COUNT */
    struct wfplab_layer_counters layer[WFPLAB_LAYER_COUNT];
};

/* Version 2: version 1's fields, then the chains the analysis divides by. */
struct wfplab_layer_counters_v2 {
    unsigned long long classify;
    unsigned long long blocked;
    unsigned long long nbls;
    unsigned long long multi_chain;
    unsigned long long hist[WFPLAB_HIST_BUCKETS];
    unsigned long long multi_blocked; /* blocks set on a chain of two or more NBLs */
};

struct wfplab_counters_v2 {
    unsigned int version;     /* WFPLAB_COUNTERS_VERSION_2 */
    unsigned int layer_count; /* WFPLAB_LAYER_COUNT */
    struct wfplab_layer_counters_v2 layer[WFPLAB_LAYER_COUNT];
};

#define WFPLAB_LAYER_FIELDS 10
#define WFPLAB_LAYER_FIELDS_V2 11

_Static_assert(sizeof(struct wfplab_layer_counters) == WFPLAB_LAYER_FIELDS * 8,
               "layer counters are ten UINT64s");
_Static_assert(sizeof(struct wfplab_counters) == 8 + WFPLAB_LAYER_COUNT * WFPLAB_LAYER_FIELDS * 8,
               "counters buffer has no padding");
_Static_assert(sizeof(struct wfplab_layer_counters_v2) == WFPLAB_LAYER_FIELDS_V2 * 8,
               "version 2 layer counters are eleven UINT64s");
_Static_assert(sizeof(struct wfplab_counters_v2) == 8 + WFPLAB_LAYER_COUNT * WFPLAB_LAYER_FIELDS_V2 * 8,
               "version 2 counters buffer has no padding");

#endif
