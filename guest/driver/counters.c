/*
 * Per-layer counters, updated from classifyFn at up to DISPATCH_LEVEL on any
 * processor at once, read and reset through the IOCTL. Every update is a
 * 64-bit interlocked operation on nonpaged memory (a driver image's data
 * section is nonpaged).
 */
#include "wfplab.h"

/* The Interlocked*64 family, spelled with gcc builtins because mingw's x86
 * wdm.h has none and x86 ntoskrnl exports none: these compile to lock xadd /
 * lock cmpxchg on x64 and to a lock cmpxchg8b loop on x86. The driver is
 * built with -mgeneral-regs-only, so no x87 or SSE instruction is involved. */
static inline void interlocked_add64(volatile LONG64 *target, LONG64 value)
{
    (void)__sync_fetch_and_add(target, value);
}

static inline LONG64 interlocked_read64(volatile LONG64 *target)
{
    return __sync_val_compare_and_swap(target, 0, 0); /* InterlockedCompareExchange64(t, 0, 0) */
}

static inline LONG64 interlocked_exchange64(volatile LONG64 *target, LONG64 value)
{
    return __sync_lock_test_and_set(target, value);
}

enum counter_index {
    C_CLASSIFY = 0,
    C_BLOCKED = 1,
    C_NBLS = 2,
    C_MULTI_CHAIN = 3,
    C_HIST = 4, /* six buckets: 1, 2, 3-4, 5-8, 9-16, 17+ */
    C_MULTI_BLOCKED = C_HIST + WFPLAB_HIST_BUCKETS,
    C_COUNT
};

_Static_assert(C_COUNT == WFPLAB_LAYER_FIELDS_V2, "one slot per version 2 field");

static volatile LONG64 g_counters[WFPLAB_LAYER_COUNT][C_COUNT];

/* A chain is a singly linked list of NBLs through NET_BUFFER_LIST.Next. The
 * walk stops at this many: a real chain is far shorter, and a bound keeps a
 * corrupted list from hanging the processor. */
#define WFPLAB_MAX_CHAIN_WALK 65536

static ULONG hist_bucket(UINT64 length)
{
    if (length <= 1) return 0;
    if (length == 2) return 1;
    if (length <= 4) return 2;
    if (length <= 8) return 3;
    if (length <= 16) return 4;
    return 5;
}

void wfplab_count_classify(enum wfplab_layer layer)
{
    interlocked_add64(&g_counters[layer][C_CLASSIFY], 1);
}

/* A chain of two or more NBLs blocked is what leaks on an unpatched netio.sys:
 * the analysis divides the leak rate by this one, not by chains merely seen. */
void wfplab_count_blocked(enum wfplab_layer layer, UINT64 chainLength)
{
    interlocked_add64(&g_counters[layer][C_BLOCKED], 1);
    if (chainLength > 1) {
        interlocked_add64(&g_counters[layer][C_MULTI_BLOCKED], 1);
    }
}

UINT64 wfplab_count_chain(enum wfplab_layer layer, const NET_BUFFER_LIST *chain)
{
    UINT64 length = 0;

    if (chain == NULL) {
        return 0; /* no packet data with this classify (e.g. a stream disconnect) */
    }
    for (; chain != NULL && length < WFPLAB_MAX_CHAIN_WALK; chain = chain->Next) {
        length++;
    }
    interlocked_add64(&g_counters[layer][C_NBLS], (LONG64)length);
    if (length > 1) {
        interlocked_add64(&g_counters[layer][C_MULTI_CHAIN], 1);
    }
    interlocked_add64(&g_counters[layer][C_HIST + hist_bucket(length)], 1);
    return length;
}

void wfplab_read_counters(struct wfplab_counters_v2 *out, BOOLEAN reset)
{
    ULONG layer;
    ULONG i;

    out->version = WFPLAB_COUNTERS_VERSION_2;
    out->layer_count = WFPLAB_LAYER_COUNT;
    for (layer = 0; layer < WFPLAB_LAYER_COUNT; layer++) {
        UINT64 v[C_COUNT];
        for (i = 0; i < C_COUNT; i++) {
            volatile LONG64 *slot = &g_counters[layer][i];
            v[i] = (UINT64)(reset ? interlocked_exchange64(slot, 0) : interlocked_read64(slot));
        }
        out->layer[layer].classify = v[C_CLASSIFY];
        out->layer[layer].blocked = v[C_BLOCKED];
        out->layer[layer].nbls = v[C_NBLS];
        out->layer[layer].multi_chain = v[C_MULTI_CHAIN];
        for (i = 0; i < WFPLAB_HIST_BUCKETS; i++) {
            out->layer[layer].hist[i] = v[C_HIST + i];
        }
        out->layer[layer].multi_blocked = v[C_MULTI_BLOCKED];
    }
}

void wfplab_counters_v1(const struct wfplab_counters_v2 *in, struct wfplab_counters *out)
{
    ULONG layer;
    ULONG i;

    out->version = WFPLAB_COUNTERS_VERSION;
    out->layer_count = WFPLAB_LAYER_COUNT;
    for (layer = 0; layer < WFPLAB_LAYER_COUNT; layer++) {
        out->layer[layer].classify = in->layer[layer].classify;
        out->layer[layer].blocked = in->layer[layer].blocked;
        out->layer[layer].nbls = in->layer[layer].nbls;
        out->layer[layer].multi_chain = in->layer[layer].multi_chain;
        for (i = 0; i < WFPLAB_HIST_BUCKETS; i++) {
            out->layer[layer].hist[i] = in->layer[layer].hist[i];
        }
    }
}
