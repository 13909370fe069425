/*
 * `sample`: H1, then one S1 line per interval until standard input reaches
 * end of file (the lab's WinRM client sends End, or a pipe is closed) or the
 * process is terminated.
 *
 * Pool numbers come from NtQuerySystemInformation(SystemPoolTagInformation),
 * one entry per pool tag. np_bytes, np_allocs and np_frees are sums over all
 * tags. The per-tag allocation and free counts are 32-bit in that structure
 * and wrap on a busy guest; the agent widens them to 64 bits by adding each
 * interval's difference modulo 2^32, so every number it prints only grows.
 *
 * T.<tag> fields: a tag is printed when its numbers differ from what the
 * reader last saw (all zero before its first appearance, so sample 0 holds
 * every tag with non-zero nonpaged usage). A line may not exceed 8192 bytes,
 * and a guest has more tags with nonpaged usage than fit in one line; so the
 * tags with the largest byte change go first, the rest wait for the next
 * sample (the reader keeps the last value it saw, which stays correct, just
 * older), and the field tags_deferred=N counts how many waited. After a few
 * samples the backlog is gone and only real changes remain.
 */
#include "agent.h"

#define SYSTEM_POOL_TAG_INFORMATION 22
#define STATUS_SUCCESS_NT ((LONG)0)
#define STATUS_INFO_LENGTH_MISMATCH_NT ((LONG)0xC0000004)
#define STATUS_BUFFER_TOO_SMALL_NT ((LONG)0xC0000023)
#define MAX_QUERY_BYTES (256u * 1024 * 1024)
#define MAX_QUERY_TRIES 12
/* Consecutive failed samples (each reported as an E1 line) before the agent
 * gives up with exit code 2. */
#define MAX_FAILED_SAMPLES 50
/* Room kept for " tags_deferred=4294967295". */
#define DEFERRED_FIELD_ROOM 26

LONG NTAPI NtQuerySystemInformation(ULONG infoClass, PVOID info, ULONG length, PULONG returned);

/* SYSTEM_POOLTAG, in the process's own layout: 28 bytes on x86, 40 on x64. */
struct pool_tag_raw {
    ULONG tag; /* four bytes, e.g. 'N','n','b','l' */
    ULONG paged_allocs;
    ULONG paged_frees;
    SIZE_T paged_used;
    ULONG nonpaged_allocs;
    ULONG nonpaged_frees;
    SIZE_T nonpaged_used;
};

/* SYSTEM_POOLTAG_INFORMATION: a ULONG count, then the array. */
struct pool_tag_info {
    ULONG count;
    struct pool_tag_raw tags[1];
};

#if defined(_WIN64)
_Static_assert(sizeof(struct pool_tag_raw) == 40, "SYSTEM_POOLTAG is 40 bytes on x64");
_Static_assert(__builtin_offsetof(struct pool_tag_info, tags) == 8, "array at offset 8 on x64");
#else
_Static_assert(sizeof(struct pool_tag_raw) == 28, "SYSTEM_POOLTAG is 28 bytes on x86");
_Static_assert(__builtin_offsetof(struct pool_tag_info, tags) == 4, "array at offset 4 on x86");
#endif

struct tag_state {
    ULONG tag;
    ULONG raw_allocs; /* last 32-bit values, to widen the next ones */
    ULONG raw_frees;
    int present;      /* in the latest query */
    u64 allocs;       /* nonpaged, widened */
    u64 frees;
    u64 bytes;
    u64 seen_allocs;  /* what the reader last saw */
    u64 seen_frees;
    u64 seen_bytes;
};

struct tag_table {
    struct tag_state *items;
    unsigned count;
    unsigned cap;
};

static struct tag_table g_tables[2];
static unsigned g_current;
static unsigned char *g_query;
static ULONG g_query_cap;
static unsigned *g_order;
static unsigned g_order_cap;
static HANDLE g_stop;
static struct line g_line;

static int ensure_table(struct tag_table *t, unsigned n)
{
    struct tag_state *items;

    if (n <= t->cap) {
        return 1;
    }
    items = mem_alloc((SIZE_T)n * sizeof(*items));
    if (items == NULL) {
        return 0;
    }
    mem_free(t->items);
    t->items = items;
    t->cap = n;
    return 1;
}

/* Fills g_query; returns the NTSTATUS and the number of entries. */
static LONG query_pool_tags(const struct pool_tag_info **info, ULONG *entries)
{
    int attempt;

    for (attempt = 0; attempt < MAX_QUERY_TRIES; attempt++) {
        ULONG returned = 0;
        LONG status = STATUS_INFO_LENGTH_MISMATCH_NT;
        if (g_query != NULL) {
            status = NtQuerySystemInformation(SYSTEM_POOL_TAG_INFORMATION, g_query, g_query_cap, &returned);
        }
        if (status == STATUS_SUCCESS_NT) {
            const struct pool_tag_info *p = (const struct pool_tag_info *)g_query;
            SIZE_T header = __builtin_offsetof(struct pool_tag_info, tags);
            SIZE_T avail = (g_query_cap - header) / sizeof(struct pool_tag_raw);
            if (g_query_cap < header || p->count > avail) {
                return STATUS_INFO_LENGTH_MISMATCH_NT; /* inconsistent answer */
            }
            *info = p;
            *entries = p->count;
            return status;
        }
        if (status != STATUS_INFO_LENGTH_MISMATCH_NT && status != STATUS_BUFFER_TOO_SMALL_NT) {
            return status;
        }
        {
            /* Grow past what the kernel asked for: tags may appear meanwhile. */
            ULONG want = returned > g_query_cap ? returned : g_query_cap * 2;
            if (want < 64 * 1024) want = 64 * 1024;
            want += want / 4;
            if (want > MAX_QUERY_BYTES) {
                return STATUS_INFO_LENGTH_MISMATCH_NT;
            }
            mem_free(g_query);
            g_query = mem_alloc(want);
            g_query_cap = g_query != NULL ? want : 0;
            if (g_query == NULL) {
                return STATUS_INFO_LENGTH_MISMATCH_NT;
            }
        }
    }
    return STATUS_INFO_LENGTH_MISMATCH_NT;
}

static int compare_raw(const void *a, const void *b)
{
    ULONG x = ((const struct pool_tag_raw *)a)->tag;
    ULONG y = ((const struct pool_tag_raw *)b)->tag;
    return x < y ? -1 : x > y;
}

/* Merges a sorted query into the previous table; totals over present tags. */
static int update_tags(struct pool_tag_raw *raw, ULONG n, u64 *np_bytes, u64 *np_allocs, u64 *np_frees)
{
    struct tag_table *old = &g_tables[g_current];
    struct tag_table *fresh = &g_tables[g_current ^ 1];
    unsigned i = 0;
    unsigned j = 0;
    unsigned out = 0;

    if (!ensure_table(fresh, old->count + n + 1)) {
        return 0;
    }
    *np_bytes = *np_allocs = *np_frees = 0;
    while (i < old->count || j < n) {
        struct tag_state *s = &fresh->items[out];
        if (j >= n || (i < old->count && old->items[i].tag < raw[j].tag)) {
            *s = old->items[i++]; /* not in this query: keep what the reader has */
            s->present = 0;
            out++;
            continue;
        }
        if (i < old->count && old->items[i].tag == raw[j].tag) {
            *s = old->items[i++];
        } else {
            memset(s, 0, sizeof(*s));
            s->tag = raw[j].tag;
        }
        /* Several raw entries with one tag are summed (modulo 2^32 for the
         * counts, which the widening below tolerates). */
        {
            ULONG allocs = 0;
            ULONG frees = 0;
            u64 bytes = 0;
            ULONG tag = raw[j].tag;
            for (; j < n && raw[j].tag == tag; j++) {
                allocs += raw[j].nonpaged_allocs;
                frees += raw[j].nonpaged_frees;
                bytes += raw[j].nonpaged_used;
            }
            s->allocs += (ULONG)(allocs - s->raw_allocs);
            s->frees += (ULONG)(frees - s->raw_frees);
            s->raw_allocs = allocs;
            s->raw_frees = frees;
            s->bytes = bytes;
            s->present = 1;
        }
        *np_bytes += s->bytes;
        *np_allocs += s->allocs;
        *np_frees += s->frees;
        out++;
    }
    fresh->count = out;
    g_current ^= 1;
    return 1;
}

static u64 absdiff(u64 a, u64 b)
{
    return a > b ? a - b : b - a;
}

static const struct tag_state *g_sort_items;

/* Largest byte change first, then most allocations and frees, then by tag. */
static int compare_priority(const void *a, const void *b)
{
    const struct tag_state *x = &g_sort_items[*(const unsigned *)a];
    const struct tag_state *y = &g_sort_items[*(const unsigned *)b];
    u64 dx = absdiff(x->bytes, x->seen_bytes);
    u64 dy = absdiff(y->bytes, y->seen_bytes);
    if (dx != dy) return dx > dy ? -1 : 1;
    dx = (x->allocs - x->seen_allocs) + (x->frees - x->seen_frees);
    dy = (y->allocs - y->seen_allocs) + (y->frees - y->seen_frees);
    if (dx != dy) return dx > dy ? -1 : 1;
    return x->tag < y->tag ? -1 : x->tag > y->tag;
}

/* Appends T.<tag> fields for changed tags while they fit. */
static int append_tags(struct line *l, unsigned *deferred)
{
    struct tag_table *t = &g_tables[g_current];
    unsigned changed = 0;
    unsigned i;

    *deferred = 0;
    if (t->count > g_order_cap) {
        mem_free(g_order);
        g_order = mem_alloc((SIZE_T)t->count * sizeof(*g_order));
        g_order_cap = g_order != NULL ? t->count : 0;
        if (g_order == NULL) {
            return 0;
        }
    }
    for (i = 0; i < t->count; i++) {
        const struct tag_state *s = &t->items[i];
        if (s->allocs != s->seen_allocs || s->frees != s->seen_frees || s->bytes != s->seen_bytes) {
            g_order[changed++] = i;
        }
    }
    g_sort_items = t->items;
    qsort(g_order, changed, sizeof(*g_order), compare_priority);
    for (i = 0; i < changed; i++) {
        struct tag_state *s = &t->items[g_order[i]];
        unsigned char tag[4];
        char key[2 + 12 + 1];
        u64 values[3] = {s->allocs, s->frees, s->bytes};
        unsigned mark = line_mark(l);

        memcpy(tag, &s->tag, 4); /* the tag's bytes in memory order */
        key[0] = 'T';
        key[1] = '.';
        escape_bytes(key + 2, tag, 4);
        line_field_list(l, key, values, 3);
        if (l->overflow || line_room(l) < DEFERRED_FIELD_ROOM) {
            line_rollback(l, mark);
            *deferred = changed - i;
            break;
        }
        s->seen_allocs = s->allocs;
        s->seen_frees = s->frees;
        s->seen_bytes = s->bytes;
    }
    return 1;
}

static u64 filetime_ms(const FILETIME *ft)
{
    return ((((u64)ft->dwHighDateTime) << 32) | ft->dwLowDateTime) / 10000; /* 100 ns units */
}

/* One S1 line. Returns 1 written, 0 skipped after an E1, -1 stdout gone. */
static int take_sample(u64 seq)
{
    const struct pool_tag_info *info = NULL;
    ULONG entries = 0;
    u64 np_bytes;
    u64 np_allocs;
    u64 np_frees;
    FILETIME idle;
    FILETIME kernel;
    FILETIME user;
    struct drv_reading drv;
    unsigned deferred;
    u64 t_us = boot_microseconds();
    LONG status = query_pool_tags(&info, &entries);

    if (status != STATUS_SUCCESS_NT) {
        report_error("SystemPoolTagInformation", (u64)(ULONG)status, "pool tag query failed");
        return 0;
    }
    qsort((void *)info->tags, entries, sizeof(info->tags[0]), compare_raw);
    if (!update_tags((struct pool_tag_raw *)info->tags, entries, &np_bytes, &np_allocs, &np_frees)) {
        report_error("memory", ERROR_NOT_ENOUGH_MEMORY, "no memory for the tag table");
        return 0;
    }
    if (!GetSystemTimes(&idle, &kernel, &user)) {
        report_error("GetSystemTimes", GetLastError(), "cannot read CPU times");
        return 0;
    }
    driver_read(&drv, FALSE);

    line_start(&g_line, "S1");
    line_field_u64(&g_line, "seq", seq);
    line_field_u64(&g_line, "t_us", t_us);
    line_field_u64(&g_line, "np_bytes", np_bytes);
    line_field_u64(&g_line, "np_allocs", np_allocs);
    line_field_u64(&g_line, "np_frees", np_frees);
    /* GetSystemTimes' kernel time includes idle time. */
    line_field_u64(&g_line, "cpu_kernel_ms", filetime_ms(&kernel) - filetime_ms(&idle));
    line_field_u64(&g_line, "cpu_user_ms", filetime_ms(&user));
    line_field_u64(&g_line, "cpu_idle_ms", filetime_ms(&idle));
    line_driver_fields(&g_line, &drv, NULL);
    if (!append_tags(&g_line, &deferred)) {
        report_error("memory", ERROR_NOT_ENOUGH_MEMORY, "no memory to order the tags");
        return 0;
    }
    if (deferred > 0) {
        line_field_u64(&g_line, "tags_deferred", deferred);
    }
    return line_write(&g_line) ? 1 : -1;
}

/* Sets g_stop when standard input ends. ReadFile blocks, so it has a thread
 * of its own; the loop ends at end of file or on any read error. */
static DWORD WINAPI watch_stdin(void *arg)
{
    HANDLE in = arg;
    char buf[256];
    DWORD got;

    for (;;) {
        got = 0;
        if (!ReadFile(in, buf, sizeof(buf), &got, NULL) || got == 0) {
            break;
        }
    }
    SetEvent(g_stop);
    return 0;
}

int cmd_sample(DWORD interval_ms)
{
    const char *arch = os_arch();
    HANDLE in = GetStdHandle(STD_INPUT_HANDLE);
    u64 interval_us = (u64)interval_ms * 1000;
    u64 start_us;
    u64 tick = 0;
    u64 seq = 0;
    unsigned failures = 0;

    if (arch == NULL) {
        report_error("GetNativeSystemInfo", 0, "the OS is neither x86 nor x64");
        return EXIT_QUERY_FAILED;
    }
    g_stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (g_stop == NULL) {
        report_error("CreateEvent", GetLastError(), "cannot create the stop event");
        return EXIT_QUERY_FAILED;
    }
    /* No standard input (a detached process): run until terminated. */
    if (in != NULL && in != INVALID_HANDLE_VALUE) {
        HANDLE thread = CreateThread(NULL, 64 * 1024, watch_stdin, in, 0, NULL);
        if (thread == NULL) {
            report_error("CreateThread", GetLastError(), "cannot watch standard input");
            return EXIT_QUERY_FAILED;
        }
        CloseHandle(thread);
    }

    line_start(&g_line, "H1");
    line_field(&g_line, "agent", "wfplab-agent");
    line_field_escaped(&g_line, "ver", AGENT_VERSION);
    line_field_u64(&g_line, "interval_ms", interval_ms);
    line_field(&g_line, "arch", arch);
    line_field_u64(&g_line, "pid", GetCurrentProcessId());
    if (!line_write(&g_line)) {
        return EXIT_OK; /* nobody is reading */
    }

    start_us = boot_microseconds();
    for (;;) {
        u64 next_us;
        u64 now_us;
        DWORD wait_ms;
        int r = take_sample(seq);

        if (r < 0) {
            return EXIT_OK; /* stdout closed: the reader is done */
        }
        if (r > 0) {
            seq++;
            failures = 0;
        } else if (++failures >= MAX_FAILED_SAMPLES) {
            /* It keeps failing: the E1 lines above say why. */
            return EXIT_QUERY_FAILED;
        }

        /* Fixed schedule from the start, so the interval does not drift;
         * after a stall, skip the missed ticks instead of bursting. */
        tick++;
        next_us = start_us + tick * interval_us;
        now_us = boot_microseconds();
        if (now_us >= next_us) {
            tick = (now_us - start_us) / interval_us + 1;
            next_us = start_us + tick * interval_us;
        }
        wait_ms = (DWORD)((next_us - now_us + 999) / 1000);
        if (WaitForSingleObject(g_stop, wait_ms) == WAIT_OBJECT_0) {
            return EXIT_OK;
        }
    }
}
