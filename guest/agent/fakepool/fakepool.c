/*
 * Test harness, never shipped: linked into a test build of the agent
 * (`make -C guest fakepool`) in place of ntdll's NtQuerySystemInformation,
 * so that sample.c's merge, 32-to-64-bit widening, ordering and deferral of
 * pool tags run under wine, which has no pool tag information of its own.
 *
 * The pool is synthetic and a pure function of k, the number of earlier
 * successful queries; fakepool_test.go computes the same numbers:
 *   tag i (0 <= i < FAKE_TAGS): see fake_tag
 *   rate  = i % 20 == 0 ? i + 1 : 0          (i == 0: 0x40)
 *   allocs = 1000 + 3i + k * rate            (i == 0: 0xFFFFFF00 + k * 0x40, wraps 32 bits)
 *   frees  = allocs - (100 + i)              (i == 0: allocs - 5)
 *   bytes  = 64 (i + 1) + 8 k rate
 *   i % 11 == 10: no nonpaged usage at all (all three zero)
 * The array comes in reverse tag order, tag 5 split over two entries, and the
 * first call of the process answers STATUS_INFO_LENGTH_MISMATCH.
 */
#include "../agent.h"

#define FAKE_TAGS 1500
#define STATUS_SUCCESS_NT ((LONG)0)
#define STATUS_INFO_LENGTH_MISMATCH_NT ((LONG)0xC0000004)
#define STATUS_NOT_IMPLEMENTED_NT ((LONG)0xC0000002)

struct fake_raw {
    ULONG tag;
    ULONG paged_allocs;
    ULONG paged_frees;
    SIZE_T paged_used;
    ULONG nonpaged_allocs;
    ULONG nonpaged_frees;
    SIZE_T nonpaged_used;
};

static u64 g_calls;   /* successful queries so far */
static int g_refused; /* the first call was answered with a length mismatch */

static ULONG fake_tag(unsigned i)
{
    unsigned char b[4];
    ULONG t;

    switch (i) {
    case 0: memcpy(b, "Wrap", 4); break;
    case 1: memcpy(b, "Ntf ", 4); break;
    case 2: memcpy(b, "%=/,", 4); break;
    case 3: memcpy(b, "Bad\x7f", 4); break;
    default:
        b[0] = 'F';
        b[1] = (unsigned char)('a' + (i / 676) % 26);
        b[2] = (unsigned char)('a' + (i / 26) % 26);
        b[3] = (unsigned char)('a' + i % 26);
        break;
    }
    memcpy(&t, b, 4);
    return t;
}

static void fake_values(unsigned i, u64 k, u64 *allocs, u64 *frees, u64 *bytes)
{
    u64 rate = i == 0 ? 0x40 : (i % 20 == 0 ? i + 1 : 0);

    if (i % 11 == 10) {
        *allocs = *frees = *bytes = 0;
        return;
    }
    *allocs = (i == 0 ? 0xFFFFFF00ULL : 1000 + 3ULL * i) + k * rate;
    *frees = *allocs - (i == 0 ? 5 : 100 + i);
    *bytes = 64ULL * (i + 1) + 8 * k * rate;
}

LONG NTAPI NtQuerySystemInformation(ULONG infoClass, PVOID info, ULONG length, PULONG returned)
{
    const ULONG header = (ULONG)__builtin_offsetof(struct { ULONG c; struct fake_raw t[1]; }, t);
    const ULONG need = header + (FAKE_TAGS + 1) * (ULONG)sizeof(struct fake_raw);
    struct fake_raw *out;
    unsigned n = 0;
    unsigned i;

    if (infoClass != 22) {
        return STATUS_NOT_IMPLEMENTED_NT;
    }
    if (returned != NULL) {
        *returned = need;
    }
    if (!g_refused || length < need) {
        g_refused = 1;
        return STATUS_INFO_LENGTH_MISMATCH_NT;
    }
    out = (struct fake_raw *)((unsigned char *)info + header);
    for (i = FAKE_TAGS; i-- > 0;) {
        u64 a, f, b;
        fake_values(i, g_calls, &a, &f, &b);
        memset(&out[n], 0, sizeof(out[n]));
        out[n].tag = fake_tag(i);
        out[n].paged_allocs = 7; /* paged numbers are not the agent's business */
        out[n].paged_used = 4096;
        out[n].nonpaged_allocs = (ULONG)a;
        out[n].nonpaged_frees = (ULONG)f;
        out[n].nonpaged_used = (SIZE_T)b;
        if (i == 5) {
            /* the same tag twice: the agent must add them up */
            out[n].nonpaged_allocs -= 7;
            out[n].nonpaged_frees -= 3;
            out[n].nonpaged_used -= 10;
            n++;
            memset(&out[n], 0, sizeof(out[n]));
            out[n].tag = fake_tag(i);
            out[n].nonpaged_allocs = 7;
            out[n].nonpaged_frees = 3;
            out[n].nonpaged_used = 10;
        }
        n++;
    }
    *(ULONG *)info = n;
    g_calls++;
    return STATUS_SUCCESS_NT;
}
