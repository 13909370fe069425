/*
 * The part of the Windows Filtering Platform kernel API this driver uses,
 * written from Microsoft's documentation of fwpsk.h, fwpmk.h, fwpstypes.h,
 * fwpmtypes.h and fwptypes.h (mingw-w64 ships no kernel WFP header).
 *
 * Only version-0 types and functions: they exist from Vista SP1 on, so one
 * binary per architecture loads on Vista / 2008 through 7 / 2008 R2.
 *
 * Every structure the driver fills in or reads has its documented member
 * offsets asserted below for both x86 and x64; layout_check_mingw.c asserts
 * the same numbers against mingw-w64's user-mode fwpmtypes.h, so two
 * independent transcriptions agree. Structures only passed through by pointer
 * are left incomplete on purpose.
 */
#ifndef WFPLAB_WFPK_H
#define WFPLAB_WFPK_H

#include <ntddk.h>

/* --- fwptypes.h ---------------------------------------------------------- */

typedef UINT32 FWP_ACTION_TYPE;

#define FWP_ACTION_FLAG_TERMINATING     0x00001000
#define FWP_ACTION_FLAG_NON_TERMINATING 0x00002000
#define FWP_ACTION_FLAG_CALLOUT         0x00004000

#define FWP_ACTION_BLOCK               (0x00000001 | FWP_ACTION_FLAG_TERMINATING)
#define FWP_ACTION_PERMIT              (0x00000002 | FWP_ACTION_FLAG_TERMINATING)
#define FWP_ACTION_CALLOUT_TERMINATING (0x00000003 | FWP_ACTION_FLAG_CALLOUT | FWP_ACTION_FLAG_TERMINATING)
#define FWP_ACTION_CONTINUE            (0x00000006 | FWP_ACTION_FLAG_NON_TERMINATING)

_Static_assert(FWP_ACTION_BLOCK == 0x1001, "FWP_ACTION_BLOCK");
_Static_assert(FWP_ACTION_CALLOUT_TERMINATING == 0x5003, "FWP_ACTION_CALLOUT_TERMINATING");
_Static_assert(FWP_ACTION_CONTINUE == 0x2006, "FWP_ACTION_CONTINUE");

typedef enum FWP_DATA_TYPE_ {
    FWP_EMPTY = 0,
    FWP_UINT8 = 1,
    FWP_UINT16 = 2,
    FWP_UINT32 = 3,
    FWP_UINT64 = 4,
    FWP_V4_ADDR_MASK = 0x100
} FWP_DATA_TYPE;

typedef enum FWP_MATCH_TYPE_ {
    FWP_MATCH_EQUAL = 0
} FWP_MATCH_TYPE;

typedef struct FWP_BYTE_BLOB_ {
    UINT32 size;
    UINT8 *data;
} FWP_BYTE_BLOB;

/* Address and mask in host byte order. */
typedef struct FWP_V4_ADDR_AND_MASK_ {
    UINT32 addr;
    UINT32 mask;
} FWP_V4_ADDR_AND_MASK;

/* The documented union has more members, all at most pointer-sized; the ones
 * listed here give it the same size and alignment. */
typedef struct FWP_VALUE0_ {
    FWP_DATA_TYPE type;
    union {
        UINT8 uint8;
        UINT16 uint16;
        UINT32 uint32;
        UINT64 *uint64;
        void *pointer;
    };
} FWP_VALUE0;

typedef struct FWP_CONDITION_VALUE0_ {
    FWP_DATA_TYPE type;
    union {
        UINT8 uint8;
        UINT16 uint16;
        UINT32 uint32;
        UINT64 *uint64;
        FWP_V4_ADDR_AND_MASK *v4AddrMask;
        void *pointer;
    };
} FWP_CONDITION_VALUE0;

/* --- fwpmtypes.h --------------------------------------------------------- */

#define FWPM_SESSION_FLAG_DYNAMIC 0x00000001
#define RPC_C_AUTHN_WINNT 10

typedef struct FWPM_DISPLAY_DATA0_ {
    WCHAR *name;
    WCHAR *description;
} FWPM_DISPLAY_DATA0;

typedef struct FWPM_SESSION0_ {
    GUID sessionKey;
    FWPM_DISPLAY_DATA0 displayData;
    UINT32 flags;
    UINT32 txnWaitTimeoutInMSec;
    UINT32 processId;
    struct _SID *sid;
    WCHAR *username;
    INT32 kernelMode; /* BOOL */
} FWPM_SESSION0;

/* Current documentation types flags as UINT32, older as UINT16: the member
 * after it is pointer-aligned either way, so the layout is the same. */
typedef struct FWPM_SUBLAYER0_ {
    GUID subLayerKey;
    FWPM_DISPLAY_DATA0 displayData;
    UINT32 flags;
    GUID *providerKey;
    FWP_BYTE_BLOB providerData;
    UINT16 weight;
} FWPM_SUBLAYER0;

typedef struct FWPM_CALLOUT0_ {
    GUID calloutKey;
    FWPM_DISPLAY_DATA0 displayData;
    UINT32 flags;
    GUID *providerKey;
    FWP_BYTE_BLOB providerData;
    GUID applicableLayer;
    UINT32 calloutId;
} FWPM_CALLOUT0;

typedef struct FWPM_ACTION0_ {
    FWP_ACTION_TYPE type;
    union {
        GUID filterType;
        GUID calloutKey;
    };
} FWPM_ACTION0;

typedef struct FWPM_FILTER_CONDITION0_ {
    GUID fieldKey;
    FWP_MATCH_TYPE matchType;
    FWP_CONDITION_VALUE0 conditionValue;
} FWPM_FILTER_CONDITION0;

typedef struct FWPM_FILTER0_ {
    GUID filterKey;
    FWPM_DISPLAY_DATA0 displayData;
    UINT32 flags;
    GUID *providerKey;
    FWP_BYTE_BLOB providerData;
    GUID layerKey;
    GUID subLayerKey;
    FWP_VALUE0 weight;
    UINT32 numFilterConditions;
    FWPM_FILTER_CONDITION0 *filterCondition;
    FWPM_ACTION0 action;
    union {
        UINT64 rawContext;
        GUID providerContextKey;
    };
    GUID *reserved;
    UINT64 filterId;
    FWP_VALUE0 effectiveWeight;
} FWPM_FILTER0;

/* --- fwpstypes.h / fwpsk.h ----------------------------------------------- */

#define FWPS_RIGHT_ACTION_WRITE 0x00000001
/* FWPS_CALLOUT0.flags; Windows 7 and later (fwpsk.h, NTDDI_WIN7). */
#define FWP_CALLOUT_FLAG_ALLOW_MID_STREAM_INSPECTION 0x00000008
/* ntstatus.h: the callout is in use (FwpsCalloutUnregister*). */
#ifndef STATUS_FWP_IN_USE
#define STATUS_FWP_IN_USE ((NTSTATUS)0xC022000AL)
#endif
#define FWPS_CLASSIFY_OUT_FLAG_ABSORB 0x00000001

/* Passed to classifyFn by pointer; this driver never looks inside. */
typedef struct FWPS_INCOMING_VALUES0_ FWPS_INCOMING_VALUES0;
typedef struct FWPS_INCOMING_METADATA_VALUES0_ FWPS_INCOMING_METADATA_VALUES0;
typedef struct FWPS_FILTER0_ FWPS_FILTER0;
typedef struct _NET_BUFFER NET_BUFFER;

/* NDIS 6 NET_BUFFER_LIST begins with a union whose first member is
 * { NET_BUFFER_LIST *Next; NET_BUFFER *FirstNetBuffer; }: Next, the link to
 * the following NBL of a chain, is the first pointer-sized field. That is
 * the only member this driver reads, so only it is declared. */
typedef struct _NET_BUFFER_LIST {
    struct _NET_BUFFER_LIST *Next;
} NET_BUFFER_LIST;

typedef struct FWPS_CLASSIFY_OUT0_ {
    FWP_ACTION_TYPE actionType;
    UINT64 outContext;
    UINT64 filterId;
    UINT32 rights;
    UINT32 flags;
    UINT32 reserved;
} FWPS_CLASSIFY_OUT0;

typedef enum FWPS_STREAM_ACTION_TYPE_ {
    FWPS_STREAM_ACTION_NONE = 0
} FWPS_STREAM_ACTION_TYPE;

typedef struct FWPS_STREAM_DATA_OFFSET0_ {
    NET_BUFFER_LIST *netBufferList;
    NET_BUFFER *netBuffer;
    MDL *mdl;
    UINT32 mdlOffset;
    UINT32 netBufferOffset;
    SIZE_T streamDataOffset;
} FWPS_STREAM_DATA_OFFSET0;

typedef struct FWPS_STREAM_DATA0_ {
    UINT32 flags;
    FWPS_STREAM_DATA_OFFSET0 dataOffset;
    SIZE_T dataLength;
    NET_BUFFER_LIST *netBufferListChain;
} FWPS_STREAM_DATA0;

/* layerData at the stream layer. */
typedef struct FWPS_STREAM_CALLOUT_IO_PACKET0_ {
    FWPS_STREAM_DATA0 *streamData;
    SIZE_T missedBytes;
    UINT32 countBytesRequired;
    SIZE_T countBytesEnforced;
    FWPS_STREAM_ACTION_TYPE streamAction;
} FWPS_STREAM_CALLOUT_IO_PACKET0;

typedef enum FWPS_CALLOUT_NOTIFY_TYPE_ {
    FWPS_CALLOUT_NOTIFY_ADD_FILTER = 0,
    FWPS_CALLOUT_NOTIFY_DELETE_FILTER = 1
} FWPS_CALLOUT_NOTIFY_TYPE;

/* classifyFn0 has no classifyContext parameter (that came with classifyFn1). */
typedef void(NTAPI *FWPS_CALLOUT_CLASSIFY_FN0)(
    const FWPS_INCOMING_VALUES0 *inFixedValues,
    const FWPS_INCOMING_METADATA_VALUES0 *inMetaValues,
    void *layerData,
    const FWPS_FILTER0 *filter,
    UINT64 flowContext,
    FWPS_CLASSIFY_OUT0 *classifyOut);

typedef NTSTATUS(NTAPI *FWPS_CALLOUT_NOTIFY_FN0)(
    FWPS_CALLOUT_NOTIFY_TYPE notifyType,
    const GUID *filterKey,
    const FWPS_FILTER0 *filter);

typedef void(NTAPI *FWPS_CALLOUT_FLOW_DELETE_NOTIFY_FN0)(
    UINT16 layerId,
    UINT32 calloutId,
    UINT64 flowContext);

typedef struct FWPS_CALLOUT0_ {
    GUID calloutKey;
    UINT32 flags;
    FWPS_CALLOUT_CLASSIFY_FN0 classifyFn;
    FWPS_CALLOUT_NOTIFY_FN0 notifyFn;
    FWPS_CALLOUT_FLOW_DELETE_NOTIFY_FN0 flowDeleteFn;
} FWPS_CALLOUT0;

/* --- fwpkclnt.sys exports (import library built from fwpkclnt-*.def) ----- */

NTSTATUS NTAPI FwpsCalloutRegister0(void *deviceObject, const FWPS_CALLOUT0 *callout,
                                    UINT32 *calloutId);
NTSTATUS NTAPI FwpsCalloutUnregisterById0(const UINT32 calloutId);

/* authIdentity is a SEC_WINNT_AUTH_IDENTITY_W*; always NULL here. */
NTSTATUS NTAPI FwpmEngineOpen0(const WCHAR *serverName, UINT32 authnService,
                               void *authIdentity, const FWPM_SESSION0 *session,
                               HANDLE *engineHandle);
NTSTATUS NTAPI FwpmEngineClose0(HANDLE engineHandle);
NTSTATUS NTAPI FwpmTransactionBegin0(HANDLE engineHandle, UINT32 flags);
NTSTATUS NTAPI FwpmTransactionCommit0(HANDLE engineHandle);
NTSTATUS NTAPI FwpmTransactionAbort0(HANDLE engineHandle);
NTSTATUS NTAPI FwpmSubLayerAdd0(HANDLE engineHandle, const FWPM_SUBLAYER0 *subLayer,
                                PSECURITY_DESCRIPTOR sd);
NTSTATUS NTAPI FwpmCalloutAdd0(HANDLE engineHandle, const FWPM_CALLOUT0 *callout,
                               PSECURITY_DESCRIPTOR sd, UINT32 *id);
NTSTATUS NTAPI FwpmFilterAdd0(HANDLE engineHandle, const FWPM_FILTER0 *filter,
                              PSECURITY_DESCRIPTOR sd, UINT64 *id);

/* --- documented layouts -------------------------------------------------- */

#define WFPLAB_OFF(type, member) __builtin_offsetof(type, member)

#if defined(_WIN64)
_Static_assert(sizeof(FWP_VALUE0) == 16, "FWP_VALUE0");
_Static_assert(sizeof(FWP_CONDITION_VALUE0) == 16, "FWP_CONDITION_VALUE0");
_Static_assert(WFPLAB_OFF(FWPM_SESSION0, flags) == 32 && WFPLAB_OFF(FWPM_SESSION0, sid) == 48 &&
               WFPLAB_OFF(FWPM_SESSION0, kernelMode) == 64 && sizeof(FWPM_SESSION0) == 72,
               "FWPM_SESSION0");
_Static_assert(WFPLAB_OFF(FWPM_SUBLAYER0, flags) == 32 && WFPLAB_OFF(FWPM_SUBLAYER0, providerKey) == 40 &&
               WFPLAB_OFF(FWPM_SUBLAYER0, weight) == 64 && sizeof(FWPM_SUBLAYER0) == 72,
               "FWPM_SUBLAYER0");
_Static_assert(WFPLAB_OFF(FWPM_CALLOUT0, applicableLayer) == 64 && WFPLAB_OFF(FWPM_CALLOUT0, calloutId) == 80 &&
               sizeof(FWPM_CALLOUT0) == 88,
               "FWPM_CALLOUT0");
_Static_assert(WFPLAB_OFF(FWPM_FILTER_CONDITION0, conditionValue) == 24 && sizeof(FWPM_FILTER_CONDITION0) == 40,
               "FWPM_FILTER_CONDITION0");
_Static_assert(WFPLAB_OFF(FWPM_FILTER0, layerKey) == 64 && WFPLAB_OFF(FWPM_FILTER0, subLayerKey) == 80 &&
               WFPLAB_OFF(FWPM_FILTER0, weight) == 96 && WFPLAB_OFF(FWPM_FILTER0, numFilterConditions) == 112 &&
               WFPLAB_OFF(FWPM_FILTER0, filterCondition) == 120 && WFPLAB_OFF(FWPM_FILTER0, action) == 128 &&
               WFPLAB_OFF(FWPM_FILTER0, rawContext) == 152 && WFPLAB_OFF(FWPM_FILTER0, reserved) == 168 &&
               WFPLAB_OFF(FWPM_FILTER0, filterId) == 176 && WFPLAB_OFF(FWPM_FILTER0, effectiveWeight) == 184 &&
               sizeof(FWPM_FILTER0) == 200,
               "FWPM_FILTER0");
_Static_assert(WFPLAB_OFF(FWPS_CALLOUT0, classifyFn) == 24 && WFPLAB_OFF(FWPS_CALLOUT0, notifyFn) == 32 &&
               WFPLAB_OFF(FWPS_CALLOUT0, flowDeleteFn) == 40 && sizeof(FWPS_CALLOUT0) == 48,
               "FWPS_CALLOUT0");
_Static_assert(sizeof(FWPS_STREAM_DATA_OFFSET0) == 40, "FWPS_STREAM_DATA_OFFSET0");
_Static_assert(WFPLAB_OFF(FWPS_STREAM_DATA0, dataOffset) == 8 && WFPLAB_OFF(FWPS_STREAM_DATA0, dataLength) == 48 &&
               WFPLAB_OFF(FWPS_STREAM_DATA0, netBufferListChain) == 56 && sizeof(FWPS_STREAM_DATA0) == 64,
               "FWPS_STREAM_DATA0");
_Static_assert(WFPLAB_OFF(FWPS_STREAM_CALLOUT_IO_PACKET0, missedBytes) == 8 &&
               WFPLAB_OFF(FWPS_STREAM_CALLOUT_IO_PACKET0, countBytesRequired) == 16 &&
               WFPLAB_OFF(FWPS_STREAM_CALLOUT_IO_PACKET0, countBytesEnforced) == 24 &&
               WFPLAB_OFF(FWPS_STREAM_CALLOUT_IO_PACKET0, streamAction) == 32 &&
               sizeof(FWPS_STREAM_CALLOUT_IO_PACKET0) == 40,
               "FWPS_STREAM_CALLOUT_IO_PACKET0");
#else
_Static_assert(sizeof(FWP_VALUE0) == 8, "FWP_VALUE0");
_Static_assert(sizeof(FWP_CONDITION_VALUE0) == 8, "FWP_CONDITION_VALUE0");
_Static_assert(WFPLAB_OFF(FWPM_SESSION0, flags) == 24 && WFPLAB_OFF(FWPM_SESSION0, sid) == 36 &&
               WFPLAB_OFF(FWPM_SESSION0, kernelMode) == 44 && sizeof(FWPM_SESSION0) == 48,
               "FWPM_SESSION0");
_Static_assert(WFPLAB_OFF(FWPM_SUBLAYER0, flags) == 24 && WFPLAB_OFF(FWPM_SUBLAYER0, providerKey) == 28 &&
               WFPLAB_OFF(FWPM_SUBLAYER0, weight) == 40 && sizeof(FWPM_SUBLAYER0) == 44,
               "FWPM_SUBLAYER0");
_Static_assert(WFPLAB_OFF(FWPM_CALLOUT0, applicableLayer) == 40 && WFPLAB_OFF(FWPM_CALLOUT0, calloutId) == 56 &&
               sizeof(FWPM_CALLOUT0) == 60,
               "FWPM_CALLOUT0");
_Static_assert(WFPLAB_OFF(FWPM_FILTER_CONDITION0, conditionValue) == 20 && sizeof(FWPM_FILTER_CONDITION0) == 28,
               "FWPM_FILTER_CONDITION0");
_Static_assert(WFPLAB_OFF(FWPM_FILTER0, layerKey) == 40 && WFPLAB_OFF(FWPM_FILTER0, subLayerKey) == 56 &&
               WFPLAB_OFF(FWPM_FILTER0, weight) == 72 && WFPLAB_OFF(FWPM_FILTER0, numFilterConditions) == 80 &&
               WFPLAB_OFF(FWPM_FILTER0, filterCondition) == 84 && WFPLAB_OFF(FWPM_FILTER0, action) == 88 &&
               WFPLAB_OFF(FWPM_FILTER0, rawContext) == 112 && WFPLAB_OFF(FWPM_FILTER0, reserved) == 128 &&
               WFPLAB_OFF(FWPM_FILTER0, filterId) == 136 && WFPLAB_OFF(FWPM_FILTER0, effectiveWeight) == 144 &&
               sizeof(FWPM_FILTER0) == 152,
               "FWPM_FILTER0");
_Static_assert(WFPLAB_OFF(FWPS_CALLOUT0, classifyFn) == 20 && WFPLAB_OFF(FWPS_CALLOUT0, notifyFn) == 24 &&
               WFPLAB_OFF(FWPS_CALLOUT0, flowDeleteFn) == 28 && sizeof(FWPS_CALLOUT0) == 32,
               "FWPS_CALLOUT0");
_Static_assert(sizeof(FWPS_STREAM_DATA_OFFSET0) == 24, "FWPS_STREAM_DATA_OFFSET0");
_Static_assert(WFPLAB_OFF(FWPS_STREAM_DATA0, dataOffset) == 4 && WFPLAB_OFF(FWPS_STREAM_DATA0, dataLength) == 28 &&
               WFPLAB_OFF(FWPS_STREAM_DATA0, netBufferListChain) == 32 && sizeof(FWPS_STREAM_DATA0) == 36,
               "FWPS_STREAM_DATA0");
_Static_assert(WFPLAB_OFF(FWPS_STREAM_CALLOUT_IO_PACKET0, missedBytes) == 4 &&
               WFPLAB_OFF(FWPS_STREAM_CALLOUT_IO_PACKET0, countBytesRequired) == 8 &&
               WFPLAB_OFF(FWPS_STREAM_CALLOUT_IO_PACKET0, countBytesEnforced) == 12 &&
               WFPLAB_OFF(FWPS_STREAM_CALLOUT_IO_PACKET0, streamAction) == 16 &&
               sizeof(FWPS_STREAM_CALLOUT_IO_PACKET0) == 20,
               "FWPS_STREAM_CALLOUT_IO_PACKET0");
#endif

/* Same on both architectures: UINT64 members are 8-aligned on x86 too. */
_Static_assert(WFPLAB_OFF(FWPS_CLASSIFY_OUT0, outContext) == 8 && WFPLAB_OFF(FWPS_CLASSIFY_OUT0, filterId) == 16 &&
               WFPLAB_OFF(FWPS_CLASSIFY_OUT0, rights) == 24 && WFPLAB_OFF(FWPS_CLASSIFY_OUT0, flags) == 28 &&
               sizeof(FWPS_CLASSIFY_OUT0) == 40,
               "FWPS_CLASSIFY_OUT0");
_Static_assert(WFPLAB_OFF(FWPM_ACTION0, calloutKey) == 4 && sizeof(FWPM_ACTION0) == 20, "FWPM_ACTION0");
_Static_assert(WFPLAB_OFF(NET_BUFFER_LIST, Next) == 0, "NET_BUFFER_LIST.Next is the first field");

#endif
