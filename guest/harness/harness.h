/*
 * The two halves of the harness: harness.c (windows.h: files, registry,
 * DeviceIoControl, tokens) and harness_kernel.c (the driver's own kernel
 * headers: DRIVER_OBJECT, NET_BUFFER_LIST, classify). Plain types only.
 */
#ifndef WFPLAB_HARNESS_H
#define WFPLAB_HARNESS_H

enum harness_layer { H_STREAM = 0, H_FORWARD = 1, H_TRANSPORT = 2 };

struct harness_classify {
    unsigned int action;                   /* FWPS_CLASSIFY_OUT0.actionType after the call */
    unsigned int rights;                   /* FWPS_CLASSIFY_OUT0.rights after the call */
    unsigned long long bytes_enforced;     /* stream: countBytesEnforced */
    unsigned int bytes_required;           /* stream: countBytesRequired */
    int chain_intact;                      /* the NBLs' Next links are as built */
};

/* The layer key of a harness layer (16 bytes), for stub_classify_for_layer. */
const void *harness_layer_key(enum harness_layer layer);

/* Calls classifyFn (from the stub) with a chain of `nbls` NBLs (0: no chain),
 * FWPS_RIGHT_ACTION_WRITE when `write_right`, the action preset to
 * FWP_ACTION_CONTINUE. At the stream layer the chain goes in an
 * FWPS_STREAM_CALLOUT_IO_PACKET0 whose dataLength is `data_length`; at the
 * others layerData is the chain itself. */
void harness_classify(enum harness_layer layer, void *classify_fn, unsigned int nbls, int write_right,
                      unsigned long long data_length, struct harness_classify *out);

/* Loads the driver as wine's winedevice does: IoCreateDriver with the
 * image's entry point as DriverInit. Returns DriverEntry's status. */
long harness_driver_entry(void *entry, const unsigned short *driver_name);
/* Calls DriverUnload (returns 0xC0000002 if DriverEntry set none), then
 * IoDeleteDriver. */
long harness_driver_unload(void);
/* Nonzero when DriverEntry set these MajorFunction entries and DriverUnload. */
int harness_dispatch_set(void);
/* ZwOpenFile on an NT path (L"\\Device\\..."): its NTSTATUS. */
long harness_open_nt(const unsigned short *path);
/* The device object's security descriptor (self-relative, DACL only), read
 * through a kernel handle to the object: its NTSTATUS. */
long harness_device_sd(void *buf, unsigned int size, unsigned int *needed);
/* The registry path DriverEntry received, as UTF-16 (static). */
const unsigned short *harness_registry_path(void);

#endif
