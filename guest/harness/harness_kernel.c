/*
 * The harness's kernel-header half: the driver object, NET_BUFFER_LIST chains
 * and the classify call, compiled against the driver's own wfpk.h so the
 * harness passes exactly the structures the driver reads. Runs in the
 * harness process under wine, whose builtin ntoskrnl.exe provides the Io/Zw
 * functions (test build only, never shipped).
 */
#include <ntifs.h>

#include "../driver/wfpk.h"
#include "harness.h"

/* Not in mingw's headers: wine's ntoskrnl.exe exports it, as Windows does.
 * It makes a driver object and calls init(driver, service key path), which
 * is how wine's winedevice.exe starts a kernel driver. */
NTSTATUS NTAPI IoCreateDriver(UNICODE_STRING *name, PDRIVER_INITIALIZE init);
void NTAPI IoDeleteDriver(DRIVER_OBJECT *driver);

/* NDIS 6 NET_BUFFER_LIST as ndis.h (nbl.h) lays it out: the header union's
 * { Next; FirstNetBuffer; } then the rest. The driver reads only Next; the
 * harness fills the rest with a pattern and checks it is left alone. */
typedef struct harness_net_buffer {
    struct harness_net_buffer *Next;
    void *CurrentMdl;
    ULONG CurrentMdlOffset;
    union {
        ULONG DataLength;
        SIZE_T stDataLength;
    };
    void *MdlChain;
    ULONG DataOffset;
} HARNESS_NET_BUFFER;

typedef struct harness_nbl {
    struct harness_nbl *Next;
    HARNESS_NET_BUFFER *FirstNetBuffer;
    void *Context;
    struct harness_nbl *ParentNetBufferList;
    void *NdisPoolHandle;
    void *NdisReserved[2];
    void *ProtocolReserved[4];
    void *MiniportReserved[2];
    void *Scratch;
    void *SourceHandle;
    ULONG NblFlags;
    LONG ChildRefCount;
    ULONG Flags;
    LONG Status;
    void *NetBufferListInfo[20];
} HARNESS_NBL;

_Static_assert(__builtin_offsetof(HARNESS_NBL, Next) == __builtin_offsetof(NET_BUFFER_LIST, Next),
               "the driver's NET_BUFFER_LIST.Next is the real one's");
#if defined(_WIN64)
_Static_assert(__builtin_offsetof(HARNESS_NBL, FirstNetBuffer) == 8 && __builtin_offsetof(HARNESS_NBL, Context) == 16 &&
               __builtin_offsetof(HARNESS_NBL, Scratch) == 104 && __builtin_offsetof(HARNESS_NBL, NblFlags) == 120 &&
               __builtin_offsetof(HARNESS_NBL, Status) == 132 &&
               __builtin_offsetof(HARNESS_NBL, NetBufferListInfo) == 136,
               "NET_BUFFER_LIST (x64)");
_Static_assert(__builtin_offsetof(HARNESS_NET_BUFFER, DataLength) == 24 &&
               __builtin_offsetof(HARNESS_NET_BUFFER, DataOffset) == 40,
               "NET_BUFFER_DATA (x64)");
#endif

#define MAX_CHAIN 16
#define SEGMENT_BYTES 1460
#define FWPS_STREAM_FLAG_RECEIVE 0x00000001

static const GUID LAYER_KEYS[3] = {
    /* FWPM_LAYER_STREAM_V4 */
    {0x3b89653c, 0xc170, 0x49e4, {0xb1, 0xcd, 0xe0, 0xee, 0xee, 0xe1, 0x9a, 0x3e}},
    /* FWPM_LAYER_IPFORWARD_V4 */
    {0xa82acc24, 0x4ee1, 0x4ee1, {0xb4, 0x65, 0xfd, 0x1d, 0x25, 0xcb, 0x10, 0xa4}},
    /* FWPM_LAYER_INBOUND_TRANSPORT_V4 */
    {0x5926dfc8, 0xe3cf, 0x4426, {0xa2, 0x83, 0xdc, 0x39, 0x3f, 0x5d, 0x0f, 0x9d}},
};

const void *harness_layer_key(enum harness_layer layer)
{
    return &LAYER_KEYS[layer];
}

static HARNESS_NBL g_nbl[MAX_CHAIN];
static HARNESS_NET_BUFFER g_nb[MAX_CHAIN];

/* Builds a chain of n NBLs (one NET_BUFFER each) and returns its head. */
static HARNESS_NBL *build_chain(unsigned int n)
{
    unsigned int i;

    RtlZeroMemory(g_nbl, sizeof(g_nbl));
    RtlZeroMemory(g_nb, sizeof(g_nb));
    for (i = 0; i < n && i < MAX_CHAIN; i++) {
        g_nb[i].DataLength = SEGMENT_BYTES;
        g_nbl[i].FirstNetBuffer = &g_nb[i];
        g_nbl[i].Next = i + 1 < n ? &g_nbl[i + 1] : NULL;
        g_nbl[i].Scratch = (void *)(ULONG_PTR)(0x5C000000u + i);
        g_nbl[i].Status = 0;
    }
    return n > 0 ? &g_nbl[0] : NULL;
}

static int chain_intact(unsigned int n)
{
    unsigned int i;

    for (i = 0; i < n && i < MAX_CHAIN; i++) {
        if (g_nbl[i].Next != (i + 1 < n ? &g_nbl[i + 1] : NULL) || g_nbl[i].FirstNetBuffer != &g_nb[i] ||
            g_nbl[i].Scratch != (void *)(ULONG_PTR)(0x5C000000u + i) || g_nb[i].DataLength != SEGMENT_BYTES) {
            return 0;
        }
    }
    return 1;
}

void harness_classify(enum harness_layer layer, void *classify_fn, unsigned int nbls, int write_right,
                      unsigned long long data_length, struct harness_classify *out)
{
    FWPS_CALLOUT_CLASSIFY_FN0 fn = (FWPS_CALLOUT_CLASSIFY_FN0)classify_fn;
    HARNESS_NBL *chain = build_chain(nbls);
    FWPS_CLASSIFY_OUT0 classifyOut;
    FWPS_STREAM_DATA0 streamData;
    FWPS_STREAM_CALLOUT_IO_PACKET0 ioPacket;
    void *layerData = chain;
    /* Never read by this driver; non-NULL like the engine's. */
    UINT64 fixed[8] = {0}, meta[32] = {0}, filter[16] = {0};

    RtlZeroMemory(&classifyOut, sizeof(classifyOut));
    classifyOut.actionType = FWP_ACTION_CONTINUE;
    classifyOut.rights = write_right ? FWPS_RIGHT_ACTION_WRITE : 0;
    RtlZeroMemory(&ioPacket, sizeof(ioPacket));
    if (layer == H_STREAM) {
        RtlZeroMemory(&streamData, sizeof(streamData));
        streamData.flags = FWPS_STREAM_FLAG_RECEIVE;
        streamData.dataOffset.netBufferList = (NET_BUFFER_LIST *)chain;
        streamData.dataLength = (SIZE_T)data_length;
        streamData.netBufferListChain = (NET_BUFFER_LIST *)chain;
        ioPacket.streamData = &streamData;
        ioPacket.countBytesRequired = 0xFFFF;   /* the callout must set these */
        ioPacket.countBytesEnforced = 0xFFFF;
        layerData = &ioPacket;
    }
    fn((const FWPS_INCOMING_VALUES0 *)fixed, (const FWPS_INCOMING_METADATA_VALUES0 *)meta, layerData,
       (const FWPS_FILTER0 *)filter, 0, &classifyOut);
    out->action = classifyOut.actionType;
    out->rights = classifyOut.rights;
    out->bytes_enforced = ioPacket.countBytesEnforced;
    out->bytes_required = ioPacket.countBytesRequired;
    out->chain_intact = chain_intact(nbls);
}

/* --- the driver object --------------------------------------------------- */

static DRIVER_OBJECT *g_driver;
static PDRIVER_INITIALIZE g_entry;
static WCHAR g_registry_path[256];

/* DriverInit for IoCreateDriver: keeps the driver object and the path, then
 * calls the real DriverEntry. */
static NTSTATUS NTAPI init_trampoline(DRIVER_OBJECT *driver, UNICODE_STRING *registryPath)
{
    USHORT i;

    g_driver = driver;
    for (i = 0; registryPath != NULL && i < registryPath->Length / sizeof(WCHAR) && i + 1 < 256; i++) {
        g_registry_path[i] = registryPath->Buffer[i];
    }
    g_registry_path[i] = 0;
    return g_entry(driver, registryPath);
}

long harness_driver_entry(void *entry, const unsigned short *driver_name)
{
    UNICODE_STRING name;

    g_entry = (PDRIVER_INITIALIZE)entry;
    RtlInitUnicodeString(&name, (const WCHAR *)driver_name);
    return IoCreateDriver(&name, init_trampoline);
}

int harness_dispatch_set(void)
{
    if (g_driver == NULL) return 0;
    return g_driver->DriverUnload != NULL && g_driver->MajorFunction[IRP_MJ_CREATE] != NULL &&
           g_driver->MajorFunction[IRP_MJ_CLOSE] != NULL && g_driver->MajorFunction[IRP_MJ_DEVICE_CONTROL] != NULL;
}

long harness_driver_unload(void)
{
    if (g_driver == NULL) return STATUS_UNSUCCESSFUL;
    if (g_driver->DriverUnload == NULL) return STATUS_UNSUCCESSFUL;
    g_driver->DriverUnload(g_driver);
    IoDeleteDriver(g_driver);
    g_driver = NULL;
    return STATUS_SUCCESS;
}

long harness_open_nt(const unsigned short *path)
{
    UNICODE_STRING name;
    OBJECT_ATTRIBUTES attrs;
    IO_STATUS_BLOCK iosb;
    HANDLE h = NULL;
    NTSTATUS status;

    RtlInitUnicodeString(&name, (const WCHAR *)path);
    InitializeObjectAttributes(&attrs, &name, OBJ_CASE_INSENSITIVE, NULL, NULL);
    status = ZwOpenFile(&h, FILE_READ_ATTRIBUTES | SYNCHRONIZE, &attrs, &iosb, FILE_SHARE_READ | FILE_SHARE_WRITE, 0);
    if (NT_SUCCESS(status)) ZwClose(h);
    return status;
}

const unsigned short *harness_registry_path(void)
{
    return (const unsigned short *)g_registry_path;
}

long harness_device_sd(void *buf, unsigned int size, unsigned int *needed)
{
    HANDLE h = NULL;
    ULONG got = 0;
    NTSTATUS status;

    *needed = 0;
    if (g_driver == NULL || g_driver->DeviceObject == NULL) return STATUS_NO_SUCH_DEVICE;
    /* The same route the driver took to set it (security.c), read back. */
    status = ObOpenObjectByPointer(g_driver->DeviceObject, OBJ_KERNEL_HANDLE, NULL, READ_CONTROL, NULL, KernelMode, &h);
    if (!NT_SUCCESS(status)) return status;
    status = ZwQuerySecurityObject(h, DACL_SECURITY_INFORMATION, buf, size, &got);
    ZwClose(h);
    *needed = got;
    return status;
}
