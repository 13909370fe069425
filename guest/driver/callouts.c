/*
 * The three callouts and their registration with the filter engine.
 *
 * Registration, in the documented order (wfplab_register_callouts):
 *   1. FwpsCalloutRegister0 for each callout (run-time registration, needs
 *      the device object DriverEntry created);
 *   2. FwpmEngineOpen0 with a dynamic session, so that closing the engine
 *      handle deletes everything added below;
 *   3. FwpmTransactionBegin0;
 *   4. FwpmSubLayerAdd0: our own sublayer, weight 0;
 *   5. FwpmCalloutAdd0 for each callout;
 *   6. FwpmFilterAdd0 for each layer, action FWP_ACTION_CALLOUT_TERMINATING;
 *   7. FwpmTransactionCommit0.
 * Any failure aborts the transaction, closes the engine and unregisters what
 * step 1 registered, in reverse. Unload (wfplab_unregister_callouts) is the
 * same in reverse: close the engine (the dynamic session's sublayer, callouts
 * and filters go with it), then unregister the run-time callouts, retrying
 * one that is still busy.
 *
 * Classify (one function per layer, so no layer lookup is needed):
 * count the call, walk the NBL chain and count it, then — only if the
 * FWPS_RIGHT_ACTION_WRITE right is present — set FWP_ACTION_BLOCK and clear
 * that right so that no lower-weight filter overrides the block. In permit
 * mode (IOCTL_WFPLAB_SET_MODE, for throughput runs) the same path permits
 * instead and keeps the right, so nothing is blocked and nothing leaks.
 * A stream indication without data is permitted (classify_stream).
 */
#include "wfplab.h"

#define IPPROTO_UDP_NUMBER 17

/* Layer keys (FWPM_LAYER_*) and filtering condition keys (FWPM_CONDITION_*),
 * from fwpmk.h / fwpmu.h. */
static const GUID LAYER_STREAM_V4 = /* 3b89653c-c170-49e4-b1cd-e0eeeee19a3e */
    {0x3b89653c, 0xc170, 0x49e4, {0xb1, 0xcd, 0xe0, 0xee, 0xee, 0xe1, 0x9a, 0x3e}};
static const GUID LAYER_IPFORWARD_V4 = /* a82acc24-4ee1-4ee1-b465-fd1d25cb10a4 */
    {0xa82acc24, 0x4ee1, 0x4ee1, {0xb4, 0x65, 0xfd, 0x1d, 0x25, 0xcb, 0x10, 0xa4}};
static const GUID LAYER_INBOUND_TRANSPORT_V4 = /* 5926dfc8-e3cf-4426-a283-dc393f5d0f9d */
    {0x5926dfc8, 0xe3cf, 0x4426, {0xa2, 0x83, 0xdc, 0x39, 0x3f, 0x5d, 0x0f, 0x9d}};
static const GUID CONDITION_IP_LOCAL_PORT = /* 0c1ba1af-5765-453f-af22-a8f791ac775b */
    {0x0c1ba1af, 0x5765, 0x453f, {0xaf, 0x22, 0xa8, 0xf7, 0x91, 0xac, 0x77, 0x5b}};
static const GUID CONDITION_IP_DESTINATION_ADDRESS = /* 2d79133b-b390-45c6-8699-acaceaafed33 */
    {0x2d79133b, 0xb390, 0x45c6, {0x86, 0x99, 0xac, 0xac, 0xea, 0xaf, 0xed, 0x33}};
static const GUID CONDITION_IP_PROTOCOL = /* 3971ef2b-623e-4f9a-8cb1-6e79b806b9a7 */
    {0x3971ef2b, 0x623e, 0x4f9a, {0x8c, 0xb1, 0x6e, 0x79, 0xb8, 0x06, 0xb9, 0xa7}};

/* Our own keys, fixed so that `netsh wfp show state` names them the same on
 * every guest. */
static const GUID WFPLAB_SUBLAYER = /* 9408dbe9-2b19-4d91-91f4-fcf721c2d41f */
    {0x9408dbe9, 0x2b19, 0x4d91, {0x91, 0xf4, 0xfc, 0xf7, 0x21, 0xc2, 0xd4, 0x1f}};
static const GUID WFPLAB_CALLOUT_STREAM = /* bdcd3c56-9e51-4068-9da6-f90344697507 */
    {0xbdcd3c56, 0x9e51, 0x4068, {0x9d, 0xa6, 0xf9, 0x03, 0x44, 0x69, 0x75, 0x07}};
static const GUID WFPLAB_CALLOUT_FORWARD = /* f3f93a7a-2eb0-4a6b-982b-723d6180ba05 */
    {0xf3f93a7a, 0x2eb0, 0x4a6b, {0x98, 0x2b, 0x72, 0x3d, 0x61, 0x80, 0xba, 0x05}};
static const GUID WFPLAB_CALLOUT_TRANSPORT = /* b30b9c05-d629-4a62-b30c-e799ca119bd8 */
    {0xb30b9c05, 0xd629, 0x4a62, {0xb3, 0x0c, 0xe7, 0x99, 0xca, 0x11, 0x9b, 0xd8}};
static const GUID WFPLAB_FILTER_STREAM = /* e9dad6e0-7c65-4caf-b50f-643a553f7e60 */
    {0xe9dad6e0, 0x7c65, 0x4caf, {0xb5, 0x0f, 0x64, 0x3a, 0x55, 0x3f, 0x7e, 0x60}};
static const GUID WFPLAB_FILTER_FORWARD = /* d8064d33-54d5-4bd1-9aff-acfc80590fd9 */
    {0xd8064d33, 0x54d5, 0x4bd1, {0x9a, 0xff, 0xac, 0xfc, 0x80, 0x59, 0x0f, 0xd9}};
static const GUID WFPLAB_FILTER_TRANSPORT = /* e31b2d17-de6c-4d6c-bef5-e2aa52625998 */
    {0xe31b2d17, 0xde6c, 0x4d6c, {0xbe, 0xf5, 0xe2, 0xaa, 0x52, 0x62, 0x59, 0x98}};

static HANDLE g_engine;
static UINT32 g_callout_ids[WFPLAB_LAYER_COUNT];
static BOOLEAN g_callout_registered[WFPLAB_LAYER_COUNT];
/* WFPLAB_MODE_BLOCK or WFPLAB_MODE_PERMIT; an aligned LONG is read atomically. */
static volatile LONG g_mode = WFPLAB_MODE_BLOCK;

void wfplab_set_mode(ULONG mode)
{
    (void)__sync_lock_test_and_set(&g_mode, (LONG)mode); /* InterlockedExchange */
}

/* --- classify ------------------------------------------------------------ */

/* The rights check and the block, shared by all three layers. Returns TRUE
 * when this callout set the action. */
static BOOLEAN block_if_allowed(enum wfplab_layer layer, UINT64 chainLength, FWPS_CLASSIFY_OUT0 *classifyOut)
{
    if ((classifyOut->rights & FWPS_RIGHT_ACTION_WRITE) == 0) {
        /* A higher-weight filter already decided and took the right away:
         * leave its action alone. */
        return FALSE;
    }
    if (g_mode == WFPLAB_MODE_PERMIT) {
        /* A soft permit: the right stays, so a lower filter may still block. */
        classifyOut->actionType = FWP_ACTION_PERMIT;
        return FALSE;
    }
    classifyOut->actionType = FWP_ACTION_BLOCK;
    classifyOut->rights &= ~FWPS_RIGHT_ACTION_WRITE;
    wfplab_count_blocked(layer, chainLength);
    return TRUE;
}

/* Stream layer: layerData is an FWPS_STREAM_CALLOUT_IO_PACKET0; the data is
 * streamData->netBufferListChain, one NBL per TCP segment, so it can be a
 * chain of several. An indication without data (FIN or RST: dataLength 0,
 * no chain) is permitted: blocking it frees nothing and would only keep the
 * connection from closing. */
static void NTAPI classify_stream(const FWPS_INCOMING_VALUES0 *inFixedValues,
                                  const FWPS_INCOMING_METADATA_VALUES0 *inMetaValues, void *layerData,
                                  const FWPS_FILTER0 *filter, UINT64 flowContext,
                                  FWPS_CLASSIFY_OUT0 *classifyOut)
{
    FWPS_STREAM_CALLOUT_IO_PACKET0 *ioPacket = layerData;
    FWPS_STREAM_DATA0 *streamData = ioPacket != NULL ? ioPacket->streamData : NULL;
    NET_BUFFER_LIST *chain = NULL;
    UINT64 length;

    (void)inFixedValues;
    (void)inMetaValues;
    (void)filter;
    (void)flowContext;

    if (streamData != NULL && streamData->dataLength != 0) {
        chain = streamData->netBufferListChain;
    }
    wfplab_count_classify(WFPLAB_LAYER_STREAM);
    length = wfplab_count_chain(WFPLAB_LAYER_STREAM, chain);
    if (chain != NULL) {
        block_if_allowed(WFPLAB_LAYER_STREAM, length, classifyOut);
    } else if ((classifyOut->rights & FWPS_RIGHT_ACTION_WRITE) != 0) {
        classifyOut->actionType = FWP_ACTION_PERMIT;
    }
    if (ioPacket != NULL) {
        /* The action applies to all the indicated bytes; no more data needed. */
        ioPacket->streamAction = FWPS_STREAM_ACTION_NONE;
        ioPacket->countBytesRequired = 0;
        ioPacket->countBytesEnforced = chain != NULL ? streamData->dataLength : 0;
    }
}

/* Forwarding layer: layerData is the NBL; a fragment group arrives as a chain
 * of one NBL per fragment. With fragment grouping on (the lab turns it on),
 * WFP indicates each fragment twice: alone as it arrives, then inside its
 * group. A lone fragment (or a whole datagram: one NBL) is permitted, so the
 * group forms and is indicated; the group, a chain of two or more, is blocked.
 * Blocking the lone fragment would drop it before its group was ever built
 * (Microsoft Learn, "WFP Layer Requirements and Restrictions"). */
static void NTAPI classify_forward(const FWPS_INCOMING_VALUES0 *inFixedValues,
                                   const FWPS_INCOMING_METADATA_VALUES0 *inMetaValues, void *layerData,
                                   const FWPS_FILTER0 *filter, UINT64 flowContext,
                                   FWPS_CLASSIFY_OUT0 *classifyOut)
{
    UINT64 length;

    (void)inFixedValues;
    (void)inMetaValues;
    (void)filter;
    (void)flowContext;

    wfplab_count_classify(WFPLAB_LAYER_FORWARD);
    length = wfplab_count_chain(WFPLAB_LAYER_FORWARD, layerData);
    if (length >= 2) {
        block_if_allowed(WFPLAB_LAYER_FORWARD, length, classifyOut);
    } else if ((classifyOut->rights & FWPS_RIGHT_ACTION_WRITE) != 0) {
        classifyOut->actionType = FWP_ACTION_PERMIT;
    }
}

/* Inbound transport layer: layerData is a single NBL (the control). */
static void NTAPI classify_transport(const FWPS_INCOMING_VALUES0 *inFixedValues,
                                     const FWPS_INCOMING_METADATA_VALUES0 *inMetaValues, void *layerData,
                                     const FWPS_FILTER0 *filter, UINT64 flowContext,
                                     FWPS_CLASSIFY_OUT0 *classifyOut)
{
    (void)inFixedValues;
    (void)inMetaValues;
    (void)filter;
    (void)flowContext;

    wfplab_count_classify(WFPLAB_LAYER_TRANSPORT);
    block_if_allowed(WFPLAB_LAYER_TRANSPORT, wfplab_count_chain(WFPLAB_LAYER_TRANSPORT, layerData), classifyOut);
}

/* Filters are added and deleted only by this driver's own session. */
static NTSTATUS NTAPI notify(FWPS_CALLOUT_NOTIFY_TYPE notifyType, const GUID *filterKey,
                             const FWPS_FILTER0 *filter)
{
    (void)notifyType;
    (void)filterKey;
    (void)filter;
    return STATUS_SUCCESS;
}

/* --- registration -------------------------------------------------------- */

struct layer_def {
    const GUID *layerKey;
    const GUID *calloutKey;
    const GUID *filterKey;
    FWPS_CALLOUT_CLASSIFY_FN0 classifyFn;
    WCHAR *calloutName;
    WCHAR *filterName;
};

static const struct layer_def g_layers[WFPLAB_LAYER_COUNT] = {
    [WFPLAB_LAYER_STREAM] = {&LAYER_STREAM_V4, &WFPLAB_CALLOUT_STREAM, &WFPLAB_FILTER_STREAM, classify_stream,
                             L"wfplab stream callout", L"wfplab: block TCP stream data to StreamPort"},
    [WFPLAB_LAYER_FORWARD] = {&LAYER_IPFORWARD_V4, &WFPLAB_CALLOUT_FORWARD, &WFPLAB_FILTER_FORWARD,
                              classify_forward, L"wfplab forward callout",
                              L"wfplab: block forwarded packets to ForwardPrefix"},
    [WFPLAB_LAYER_TRANSPORT] = {&LAYER_INBOUND_TRANSPORT_V4, &WFPLAB_CALLOUT_TRANSPORT, &WFPLAB_FILTER_TRANSPORT,
                                classify_transport, L"wfplab transport callout",
                                L"wfplab: block inbound UDP to ControlPort"},
};

/* The filter conditions of each layer; the values they point to must live
 * until FwpmFilterAdd0 returns. */
static ULONG build_conditions(enum wfplab_layer layer, const struct wfplab_config *cfg,
                              FWPM_FILTER_CONDITION0 conditions[2], FWP_V4_ADDR_AND_MASK *addrMask)
{
    RtlZeroMemory(conditions, 2 * sizeof(conditions[0]));
    switch (layer) {
    case WFPLAB_LAYER_STREAM:
        conditions[0].fieldKey = CONDITION_IP_LOCAL_PORT;
        conditions[0].matchType = FWP_MATCH_EQUAL;
        conditions[0].conditionValue.type = FWP_UINT16;
        conditions[0].conditionValue.uint16 = cfg->stream_port;
        return 1;
    case WFPLAB_LAYER_FORWARD:
        addrMask->addr = cfg->forward_addr;
        addrMask->mask = cfg->forward_mask;
        conditions[0].fieldKey = CONDITION_IP_DESTINATION_ADDRESS;
        conditions[0].matchType = FWP_MATCH_EQUAL;
        conditions[0].conditionValue.type = FWP_V4_ADDR_MASK;
        conditions[0].conditionValue.v4AddrMask = addrMask;
        return 1;
    case WFPLAB_LAYER_TRANSPORT:
        conditions[0].fieldKey = CONDITION_IP_LOCAL_PORT;
        conditions[0].matchType = FWP_MATCH_EQUAL;
        conditions[0].conditionValue.type = FWP_UINT16;
        conditions[0].conditionValue.uint16 = cfg->control_port;
        conditions[1].fieldKey = CONDITION_IP_PROTOCOL;
        conditions[1].matchType = FWP_MATCH_EQUAL;
        conditions[1].conditionValue.type = FWP_UINT8;
        conditions[1].conditionValue.uint8 = IPPROTO_UDP_NUMBER;
        return 2;
    default:
        return 0;
    }
}

/* FwpsCalloutUnregisterById0 refuses while a classify is still running in
 * the callout (STATUS_DEVICE_BUSY, or STATUS_FWP_IN_USE); both end within
 * microseconds once the filters are gone. The driver image must not go away
 * while a callout is registered, so unload waits, up to this bound. */
#define UNREGISTER_RETRY_MS 50
#define UNREGISTER_MAX_TRIES 600 /* 30 s */

static NTSTATUS unregister_callout(UINT32 id)
{
    LARGE_INTEGER delay;
    NTSTATUS status = STATUS_SUCCESS;
    ULONG tries;

    delay.QuadPart = -(LONGLONG)UNREGISTER_RETRY_MS * 10000; /* relative, 100 ns units */
    for (tries = 1; tries <= UNREGISTER_MAX_TRIES; tries++) {
        status = FwpsCalloutUnregisterById0(id);
        if (status != STATUS_DEVICE_BUSY && status != STATUS_FWP_IN_USE) {
            break;
        }
        KeDelayExecutionThread(KernelMode, FALSE, &delay);
    }
    if (!NT_SUCCESS(status)) {
        WFPLAB_LOG("FwpsCalloutUnregisterById0(%lu) failed after %lu tries: 0x%08lx\n", (unsigned long)id,
                   (unsigned long)(tries > UNREGISTER_MAX_TRIES ? UNREGISTER_MAX_TRIES : tries),
                   (unsigned long)status);
    }
    return status;
}

static void unregister_runtime_callouts(void)
{
    int i;

    for (i = WFPLAB_LAYER_COUNT - 1; i >= 0; i--) {
        if (g_callout_registered[i]) {
            unregister_callout(g_callout_ids[i]);
            g_callout_registered[i] = FALSE;
        }
    }
}

static NTSTATUS add_objects(const struct wfplab_config *cfg)
{
    FWPM_SUBLAYER0 subLayer;
    NTSTATUS status;
    ULONG i;

    /* 4. our sublayer */
    RtlZeroMemory(&subLayer, sizeof(subLayer));
    subLayer.subLayerKey = WFPLAB_SUBLAYER;
    subLayer.displayData.name = L"wfplab sublayer";
    subLayer.displayData.description = L"KB979223 test callouts";
    subLayer.weight = 0; /* below FWPM_SUBLAYER_UNIVERSAL, as Vista's IPsec requires */
    status = FwpmSubLayerAdd0(g_engine, &subLayer, NULL);
    if (!NT_SUCCESS(status)) {
        WFPLAB_LOG("FwpmSubLayerAdd0 failed: 0x%08lx\n", (unsigned long)status);
        return status;
    }

    /* 5. the callouts, then 6. one filter per layer calling its callout */
    for (i = 0; i < WFPLAB_LAYER_COUNT; i++) {
        FWPM_CALLOUT0 callout;
        RtlZeroMemory(&callout, sizeof(callout));
        callout.calloutKey = *g_layers[i].calloutKey;
        callout.displayData.name = g_layers[i].calloutName;
        callout.applicableLayer = *g_layers[i].layerKey;
        status = FwpmCalloutAdd0(g_engine, &callout, NULL, NULL);
        if (!NT_SUCCESS(status)) {
            WFPLAB_LOG("FwpmCalloutAdd0(layer %lu) failed: 0x%08lx\n", (unsigned long)i, (unsigned long)status);
            return status;
        }
    }
    for (i = 0; i < WFPLAB_LAYER_COUNT; i++) {
        FWPM_FILTER0 filter;
        FWPM_FILTER_CONDITION0 conditions[2];
        FWP_V4_ADDR_AND_MASK addrMask;

        RtlZeroMemory(&filter, sizeof(filter));
        filter.filterKey = *g_layers[i].filterKey;
        filter.displayData.name = g_layers[i].filterName;
        filter.layerKey = *g_layers[i].layerKey;
        filter.subLayerKey = WFPLAB_SUBLAYER;
        filter.weight.type = FWP_EMPTY; /* the engine assigns the weight */
        filter.numFilterConditions = build_conditions((enum wfplab_layer)i, cfg, conditions, &addrMask);
        filter.filterCondition = conditions;
        filter.action.type = FWP_ACTION_CALLOUT_TERMINATING;
        filter.action.calloutKey = *g_layers[i].calloutKey;
        status = FwpmFilterAdd0(g_engine, &filter, NULL, NULL);
        if (!NT_SUCCESS(status)) {
            WFPLAB_LOG("FwpmFilterAdd0(layer %lu) failed: 0x%08lx\n", (unsigned long)i, (unsigned long)status);
            return status;
        }
    }
    return STATUS_SUCCESS;
}

NTSTATUS wfplab_register_callouts(DEVICE_OBJECT *device, const struct wfplab_config *cfg, BOOLEAN midStream)
{
    FWPM_SESSION0 session;
    NTSTATUS status;
    ULONG i;

    /* 1. run-time callouts */
    for (i = 0; i < WFPLAB_LAYER_COUNT; i++) {
        FWPS_CALLOUT0 callout;
        RtlZeroMemory(&callout, sizeof(callout));
        callout.calloutKey = *g_layers[i].calloutKey;
        callout.classifyFn = g_layers[i].classifyFn;
        callout.notifyFn = notify;
        callout.flowDeleteFn = NULL; /* no flow contexts */
        if (i == WFPLAB_LAYER_STREAM && midStream) {
            /* Windows 7 and later: classify also connections that were
             * open before the callout registered. */
            callout.flags = FWP_CALLOUT_FLAG_ALLOW_MID_STREAM_INSPECTION;
        }
        status = FwpsCalloutRegister0(device, &callout, &g_callout_ids[i]);
        if (!NT_SUCCESS(status)) {
            WFPLAB_LOG("FwpsCalloutRegister0(layer %lu) failed: 0x%08lx\n", (unsigned long)i,
                       (unsigned long)status);
            unregister_runtime_callouts();
            return status;
        }
        g_callout_registered[i] = TRUE;
    }

    /* 2. dynamic session */
    RtlZeroMemory(&session, sizeof(session));
    session.flags = FWPM_SESSION_FLAG_DYNAMIC;
    status = FwpmEngineOpen0(NULL, RPC_C_AUTHN_WINNT, NULL, &session, &g_engine);
    if (!NT_SUCCESS(status)) {
        WFPLAB_LOG("FwpmEngineOpen0 failed: 0x%08lx (is the Base Filtering Engine running?)\n",
                   (unsigned long)status);
        g_engine = NULL;
        unregister_runtime_callouts();
        return status;
    }

    /* 3. one transaction for 4.-6. */
    status = FwpmTransactionBegin0(g_engine, 0);
    if (!NT_SUCCESS(status)) {
        WFPLAB_LOG("FwpmTransactionBegin0 failed: 0x%08lx\n", (unsigned long)status);
        goto fail_engine;
    }
    status = add_objects(cfg);
    if (!NT_SUCCESS(status)) {
        FwpmTransactionAbort0(g_engine);
        goto fail_engine;
    }
    /* 7. */
    status = FwpmTransactionCommit0(g_engine);
    if (!NT_SUCCESS(status)) {
        WFPLAB_LOG("FwpmTransactionCommit0 failed: 0x%08lx\n", (unsigned long)status);
        goto fail_engine;
    }
    return STATUS_SUCCESS;

fail_engine:
    FwpmEngineClose0(g_engine);
    g_engine = NULL;
    unregister_runtime_callouts();
    return status;
}

void wfplab_unregister_callouts(void)
{
    if (g_engine != NULL) {
        /* Ends the dynamic session: its filters, callouts and sublayer are
         * deleted, so no new classify reaches our callouts. */
        FwpmEngineClose0(g_engine);
        g_engine = NULL;
    }
    unregister_runtime_callouts();
}
