/*
 * wfplabcallout.sys: the KB979223 test callout driver. A plain WDM driver
 * that blocks the lab's traffic at three WFP layers and counts the NBL
 * chains it sees; see callouts.c.
 *
 * Load:   read Parameters (config.c) -> IoCreateDevice -> its DACL
 *         (security.c) -> symbolic link -> callouts and filters (callouts.c,
 *         its steps 1-7).
 * Unload: the same in reverse: engine closed and callouts unregistered
 *         (callouts.c), symbolic link deleted, device deleted.
 * User mode (SYSTEM and Administrators) reads and resets the counters, and
 * switches between block and permit-and-count, with DeviceIoControl on
 * \\.\WfplabCallout (guest/common/wfplab_ioctl.h): version 2 codes, and
 * version 1's for older agents.
 */
#include "wfplab.h"

static DEVICE_OBJECT *g_device;
static BOOLEAN g_symlink_created;

static NTSTATUS complete(IRP *irp, NTSTATUS status, ULONG_PTR information)
{
    irp->IoStatus.Status = status;
    irp->IoStatus.Information = information;
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    return status;
}

/* IRP_MJ_CREATE, IRP_MJ_CLEANUP, IRP_MJ_CLOSE: opening the device holds no state. */
static NTSTATUS NTAPI dispatch_open_close(DEVICE_OBJECT *device, IRP *irp)
{
    (void)device;
    return complete(irp, STATUS_SUCCESS, 0);
}

static NTSTATUS NTAPI dispatch_device_control(DEVICE_OBJECT *device, IRP *irp)
{
    IO_STACK_LOCATION *stack = IoGetCurrentIrpStackLocation(irp);
    ULONG code = stack->Parameters.DeviceIoControl.IoControlCode;
    ULONG outLength = stack->Parameters.DeviceIoControl.OutputBufferLength;
    ULONG inLength = stack->Parameters.DeviceIoControl.InputBufferLength;
    ULONG mode = WFPLAB_MODE_BLOCK;
    void *out = irp->AssociatedIrp.SystemBuffer;
    struct wfplab_counters_v2 now;
    BOOLEAN reset;
    BOOLEAN v2;
    ULONG size;

    (void)device;
    switch (code) {
    case IOCTL_WFPLAB_GET_COUNTERS:      reset = FALSE; v2 = FALSE; break;
    case IOCTL_WFPLAB_RESET_COUNTERS:    reset = TRUE;  v2 = FALSE; break;
    case IOCTL_WFPLAB_GET_COUNTERS_V2:   reset = FALSE; v2 = TRUE;  break;
    case IOCTL_WFPLAB_RESET_COUNTERS_V2: reset = TRUE;  v2 = TRUE;  break;
    case IOCTL_WFPLAB_SET_MODE:          reset = FALSE; v2 = FALSE; break; /* answers version 1 */
    default:
        return complete(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
    }
    size = v2 ? sizeof(struct wfplab_counters_v2) : sizeof(struct wfplab_counters);
    if (outLength < size || out == NULL) {
        return complete(irp, STATUS_BUFFER_TOO_SMALL, 0);
    }
    if (code == IOCTL_WFPLAB_SET_MODE) {
        /* The input shares SystemBuffer with the output: read it first. */
        if (inLength < sizeof(mode)) {
            return complete(irp, STATUS_INVALID_PARAMETER, 0);
        }
        RtlCopyMemory(&mode, out, sizeof(mode));
        if (mode != WFPLAB_MODE_BLOCK && mode != WFPLAB_MODE_PERMIT) {
            return complete(irp, STATUS_INVALID_PARAMETER, 0);
        }
        wfplab_set_mode(mode);
    }
    /* METHOD_BUFFERED: SystemBuffer is a nonpaged copy the I/O manager
     * returns to the caller. */
    wfplab_read_counters(&now, reset);
    if (v2) {
        RtlCopyMemory(out, &now, sizeof(now));
    } else {
        wfplab_counters_v1(&now, out);
    }
    return complete(irp, STATUS_SUCCESS, size);
}

/* FWP_CALLOUT_FLAG_ALLOW_MID_STREAM_INSPECTION exists from Windows 7 (6.1)
 * on; Vista's FwpsCalloutRegister0 would refuse it. The version is the
 * running kernel's. */
static BOOLEAN has_mid_stream_flag(void)
{
    RTL_OSVERSIONINFOW v;

    RtlZeroMemory(&v, sizeof(v));
    v.dwOSVersionInfoSize = sizeof(v);
    if (!NT_SUCCESS(RtlGetVersion(&v))) {
        return FALSE;
    }
    return v.dwMajorVersion > 6 || (v.dwMajorVersion == 6 && v.dwMinorVersion >= 1);
}

static void delete_device(void)
{
    if (g_symlink_created) {
        UNICODE_STRING link;
        RtlInitUnicodeString(&link, WFPLAB_DOS_DEVICE_NAME);
        IoDeleteSymbolicLink(&link);
        g_symlink_created = FALSE;
    }
    if (g_device != NULL) {
        IoDeleteDevice(g_device);
        g_device = NULL;
    }
}

static void NTAPI driver_unload(DRIVER_OBJECT *driver)
{
    (void)driver;
    wfplab_unregister_callouts();
    delete_device();
}

NTSTATUS NTAPI DriverEntry(DRIVER_OBJECT *driver, UNICODE_STRING *registryPath)
{
    struct wfplab_config cfg;
    UNICODE_STRING deviceName;
    UNICODE_STRING linkName;
    NTSTATUS status;

    status = wfplab_read_config(registryPath, &cfg);
    if (!NT_SUCCESS(status)) {
        return status;
    }

    RtlInitUnicodeString(&deviceName, WFPLAB_NT_DEVICE_NAME);
    status = IoCreateDevice(driver, 0, &deviceName, WFPLAB_DEVICE_TYPE, FILE_DEVICE_SECURE_OPEN, FALSE, &g_device);
    if (!NT_SUCCESS(status)) {
        WFPLAB_LOG("IoCreateDevice failed: 0x%08lx\n", (unsigned long)status);
        g_device = NULL;
        return status;
    }
    status = wfplab_secure_device(g_device);
    if (!NT_SUCCESS(status)) {
        /* Better no driver than a device any local user may reset. */
        delete_device();
        return status;
    }
    RtlInitUnicodeString(&linkName, WFPLAB_DOS_DEVICE_NAME);
    status = IoCreateSymbolicLink(&linkName, &deviceName);
    if (!NT_SUCCESS(status)) {
        WFPLAB_LOG("IoCreateSymbolicLink failed: 0x%08lx\n", (unsigned long)status);
        delete_device();
        return status;
    }
    g_symlink_created = TRUE;

    driver->MajorFunction[IRP_MJ_CREATE] = dispatch_open_close;
    driver->MajorFunction[IRP_MJ_CLEANUP] = dispatch_open_close;
    driver->MajorFunction[IRP_MJ_CLOSE] = dispatch_open_close;
    driver->MajorFunction[IRP_MJ_DEVICE_CONTROL] = dispatch_device_control;
    driver->DriverUnload = driver_unload;

    status = wfplab_register_callouts(g_device, &cfg, has_mid_stream_flag());
    if (!NT_SUCCESS(status)) {
        delete_device();
        return status;
    }
    WFPLAB_LOG("running: StreamPort=%u ControlPort=%u ForwardPrefix=%lu.%lu.%lu.%lu/%lu\n",
               (unsigned)cfg.stream_port, (unsigned)cfg.control_port,
               (unsigned long)(cfg.forward_addr >> 24) & 0xFF, (unsigned long)(cfg.forward_addr >> 16) & 0xFF,
               (unsigned long)(cfg.forward_addr >> 8) & 0xFF, (unsigned long)cfg.forward_addr & 0xFF,
               (unsigned long)cfg.forward_prefix_len);
    return STATUS_SUCCESS;
}
