/*
 * A stand-in fwpkclnt.sys for the harness (test build only, never shipped):
 * a user-mode DLL with the export names the driver imports (fwpkclnt-x64.def),
 * compiled against the driver's own wfpk.h. It keeps a small model of the
 * filter engine (run-time callouts, engine handles, one transaction per
 * engine, dynamic sessions whose objects go when the engine closes), logs
 * every call with its arguments, calls notifyFn as the engine would (add at
 * commit, delete when a filter goes), and hands the registered classifyFn to
 * the harness (stub.h). No imports: only its own memory, so it loads under
 * wine next to the real driver.
 */
#include "../driver/wfpk.h"
#include "stub.h"

/* gcc may call these for struct copies; nothing else here links a C library. */
void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}

/* --- the log ------------------------------------------------------------- */

static char g_log[64 * 1024];
static size_t g_log_len;
static unsigned int g_seq;
static char g_state[256];

static void put_char(char *buf, size_t cap, size_t *len, char c)
{
    if (*len + 1 < cap) {
        buf[(*len)++] = c;
        buf[*len] = 0;
    }
}

static void put_str(char *buf, size_t cap, size_t *len, const char *s)
{
    while (*s) put_char(buf, cap, len, *s++);
}

static void put_dec(char *buf, size_t cap, size_t *len, UINT64 v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) put_char(buf, cap, len, tmp[--n]);
}

static void put_hex(char *buf, size_t cap, size_t *len, UINT64 v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    int i;
    for (i = digits - 1; i >= 0; i--) put_char(buf, cap, len, hex[(v >> (i * 4)) & 0xF]);
}

#define LOG_STR(s) put_str(g_log, sizeof(g_log), &g_log_len, (s))
#define LOG_DEC(v) put_dec(g_log, sizeof(g_log), &g_log_len, (UINT64)(v))

static void log_hex32(UINT32 v)
{
    LOG_STR("0x");
    put_hex(g_log, sizeof(g_log), &g_log_len, v, 8);
}

static void log_guid(const GUID *g)
{
    int i;
    if (g == NULL) {
        LOG_STR("null");
        return;
    }
    put_hex(g_log, sizeof(g_log), &g_log_len, g->Data1, 8);
    LOG_STR("-");
    put_hex(g_log, sizeof(g_log), &g_log_len, g->Data2, 4);
    LOG_STR("-");
    put_hex(g_log, sizeof(g_log), &g_log_len, g->Data3, 4);
    LOG_STR("-");
    for (i = 0; i < 8; i++) {
        if (i == 2) LOG_STR("-");
        put_hex(g_log, sizeof(g_log), &g_log_len, g->Data4[i], 2);
    }
}

/* " key=value" pairs. */
#define LOG_GUID(key, g) (LOG_STR(key), log_guid(g))
#define LOG_HEX(key, v) (LOG_STR(key), log_hex32(v))
#define LOG_KV(key, v) (LOG_STR(key), LOG_DEC(v))

static void log_begin(const char *fn)
{
    LOG_KV("CALL n=", ++g_seq);
    LOG_STR(" fn=");
    LOG_STR(fn);
}

static NTSTATUS log_end(NTSTATUS status)
{
    LOG_HEX(" status=", (UINT32)status);
    LOG_STR("\n");
    return status;
}

/* --- the engine model ---------------------------------------------------- */

#define MAX_OBJECTS 16

static BOOLEAN guid_eq(const GUID *a, const GUID *b)
{
    const unsigned char *x = (const unsigned char *)a;
    const unsigned char *y = (const unsigned char *)b;
    int i;
    for (i = 0; i < 16; i++) {
        if (x[i] != y[i]) return FALSE;
    }
    return TRUE;
}

struct runtime_callout {
    BOOLEAN registered;
    UINT32 id;
    FWPS_CALLOUT0 callout;
};

struct engine {
    BOOLEAN open;
    BOOLEAN dynamic;
    BOOLEAN in_txn;
};

enum object_kind { OBJ_SUBLAYER, OBJ_CALLOUT, OBJ_FILTER };

/* A management object: sublayer, callout or filter. Added inside a
 * transaction it is pending until the commit. */
struct object {
    BOOLEAN used;
    BOOLEAN pending;
    BOOLEAN committed_now; /* set by the commit that made it live, for notify */
    enum object_kind kind;
    ULONG engine;
    GUID key;
    GUID layer;
    GUID calloutKey; /* filters: the callout their action calls */
};

static struct runtime_callout g_runtime[MAX_OBJECTS];
static struct engine g_engines[MAX_OBJECTS];
static struct object g_objects[MAX_OBJECTS * 2];
static UINT32 g_next_callout_id = 301;
static UINT64 g_next_filter_id = 70001;

/* stub_fail_unregister's rules, applied in order. */
#define MAX_FAIL_RULES 4
static struct {
    UINT32 id;
    UINT32 count;
    NTSTATUS status;
} g_fail[MAX_FAIL_RULES];
static int g_fail_rules;

/* A handle is the engine slot + 1, so NULL is never valid. */
static struct engine *engine_of(HANDLE h)
{
    ULONG_PTR i = (ULONG_PTR)h;
    if (i == 0 || i > MAX_OBJECTS || !g_engines[i - 1].open) return NULL;
    return &g_engines[i - 1];
}

static struct runtime_callout *runtime_by_key(const GUID *key)
{
    int i;
    for (i = 0; i < MAX_OBJECTS; i++) {
        if (g_runtime[i].registered && guid_eq(&g_runtime[i].callout.calloutKey, key)) return &g_runtime[i];
    }
    return NULL;
}

/* The engine tells a callout when a filter that calls it comes or goes. */
static void notify_filter(const struct object *o, FWPS_CALLOUT_NOTIFY_TYPE type)
{
    struct runtime_callout *rc = runtime_by_key(&o->calloutKey);
    /* FWPS_FILTER0 is opaque to the driver; a zeroed block of its size. */
    UINT64 filter[16];
    NTSTATUS status;

    if (rc == NULL || rc->callout.notifyFn == NULL) return;
    memset(filter, 0, sizeof(filter));
    status = rc->callout.notifyFn(type, &o->key, (const FWPS_FILTER0 *)filter);
    LOG_STR("NOTIFY type=");
    LOG_STR(type == FWPS_CALLOUT_NOTIFY_ADD_FILTER ? "add" : "delete");
    LOG_GUID(" filter=", &o->key);
    LOG_GUID(" callout=", &o->calloutKey);
    LOG_HEX(" status=", (UINT32)status);
    LOG_STR("\n");
}

static void delete_object(struct object *o)
{
    if (o->kind == OBJ_FILTER && !o->pending) notify_filter(o, FWPS_CALLOUT_NOTIFY_DELETE_FILTER);
    o->used = FALSE;
}

static NTSTATUS add_object(HANDLE h, enum object_kind kind, const GUID *key, const GUID *layer,
                           const GUID *calloutKey)
{
    struct engine *e = engine_of(h);
    int i;

    if (e == NULL) return STATUS_INVALID_HANDLE;
    for (i = 0; i < MAX_OBJECTS * 2; i++) {
        if (g_objects[i].used && g_objects[i].kind == kind && guid_eq(&g_objects[i].key, key)) {
            return STATUS_FWP_ALREADY_EXISTS;
        }
    }
    for (i = 0; i < MAX_OBJECTS * 2; i++) {
        if (!g_objects[i].used) {
            struct object *o = &g_objects[i];
            memset(o, 0, sizeof(*o));
            o->used = TRUE;
            o->pending = e->in_txn;
            o->kind = kind;
            o->engine = (ULONG)(ULONG_PTR)h;
            o->key = *key;
            if (layer != NULL) o->layer = *layer;
            if (calloutKey != NULL) o->calloutKey = *calloutKey;
            if (kind == OBJ_FILTER && !o->pending) notify_filter(o, FWPS_CALLOUT_NOTIFY_ADD_FILTER);
            return STATUS_SUCCESS;
        }
    }
    return STATUS_INSUFFICIENT_RESOURCES;
}

static void log_txn(HANDLE h)
{
    struct engine *e = engine_of(h);
    LOG_KV(" txn=", e != NULL && e->in_txn ? 1 : 0);
}

/* --- fwpkclnt.sys exports ------------------------------------------------ */

NTSTATUS NTAPI FwpsCalloutRegister0(void *deviceObject, const FWPS_CALLOUT0 *callout, UINT32 *calloutId)
{
    int i;

    log_begin("FwpsCalloutRegister0");
    LOG_KV(" device=", deviceObject != NULL);
    if (callout == NULL) return log_end(STATUS_INVALID_PARAMETER);
    LOG_GUID(" key=", &callout->calloutKey);
    LOG_HEX(" flags=", callout->flags);
    LOG_KV(" classify=", callout->classifyFn != NULL);
    LOG_KV(" notify=", callout->notifyFn != NULL);
    LOG_KV(" flowdelete=", callout->flowDeleteFn != NULL);
    if (runtime_by_key(&callout->calloutKey) != NULL) return log_end(STATUS_FWP_ALREADY_EXISTS);
    for (i = 0; i < MAX_OBJECTS; i++) {
        if (!g_runtime[i].registered) {
            g_runtime[i].registered = TRUE;
            g_runtime[i].id = g_next_callout_id++;
            g_runtime[i].callout = *callout;
            if (calloutId != NULL) *calloutId = g_runtime[i].id;
            LOG_KV(" id=", g_runtime[i].id);
            return log_end(STATUS_SUCCESS);
        }
    }
    return log_end(STATUS_INSUFFICIENT_RESOURCES);
}

NTSTATUS NTAPI FwpsCalloutUnregisterById0(const UINT32 calloutId)
{
    int i;

    log_begin("FwpsCalloutUnregisterById0");
    LOG_KV(" id=", calloutId);
    for (i = 0; i < MAX_OBJECTS; i++) {
        if (g_runtime[i].registered && g_runtime[i].id == calloutId) {
            int r;
            for (r = 0; r < g_fail_rules; r++) {
                if (g_fail[r].count > 0 && (g_fail[r].id == 0 || g_fail[r].id == calloutId)) {
                    g_fail[r].count--;
                    return log_end(g_fail[r].status);
                }
            }
            g_runtime[i].registered = FALSE;
            return log_end(STATUS_SUCCESS);
        }
    }
    return log_end(STATUS_FWP_CALLOUT_NOT_FOUND);
}

NTSTATUS NTAPI FwpmEngineOpen0(const WCHAR *serverName, UINT32 authnService, void *authIdentity,
                               const FWPM_SESSION0 *session, HANDLE *engineHandle)
{
    int i;

    log_begin("FwpmEngineOpen0");
    LOG_STR(" server=");
    LOG_STR(serverName == NULL ? "null" : "set");
    LOG_KV(" authn=", authnService);
    LOG_STR(" authid=");
    LOG_STR(authIdentity == NULL ? "null" : "set");
    LOG_HEX(" session_flags=", session != NULL ? session->flags : 0);
    if (engineHandle == NULL) return log_end(STATUS_INVALID_PARAMETER);
    for (i = 0; i < MAX_OBJECTS; i++) {
        if (!g_engines[i].open) {
            g_engines[i].open = TRUE;
            g_engines[i].dynamic = session != NULL && (session->flags & FWPM_SESSION_FLAG_DYNAMIC) != 0;
            g_engines[i].in_txn = FALSE;
            *engineHandle = (HANDLE)(ULONG_PTR)(i + 1);
            LOG_KV(" engine=", i + 1);
            return log_end(STATUS_SUCCESS);
        }
    }
    return log_end(STATUS_INSUFFICIENT_RESOURCES);
}

/* Ending a dynamic session deletes what it added; an open transaction is
 * aborted. */
NTSTATUS NTAPI FwpmEngineClose0(HANDLE engineHandle)
{
    struct engine *e = engine_of(engineHandle);
    ULONG deleted[3] = {0, 0, 0};
    int i;

    log_begin("FwpmEngineClose0");
    LOG_KV(" engine=", (ULONG_PTR)engineHandle);
    if (e == NULL) return log_end(STATUS_INVALID_HANDLE);
    for (i = 0; i < MAX_OBJECTS * 2; i++) {
        struct object *o = &g_objects[i];
        if (o->used && o->engine == (ULONG)(ULONG_PTR)engineHandle && !o->pending && e->dynamic) {
            deleted[o->kind]++;
        }
    }
    LOG_KV(" deleted_sublayers=", deleted[OBJ_SUBLAYER]);
    LOG_KV(" deleted_callouts=", deleted[OBJ_CALLOUT]);
    LOG_KV(" deleted_filters=", deleted[OBJ_FILTER]);
    log_end(STATUS_SUCCESS);
    /* Then delete them: the callouts hear of each filter going (NOTIFY lines). */
    for (i = 0; i < MAX_OBJECTS * 2; i++) {
        struct object *o = &g_objects[i];
        if (o->used && o->engine == (ULONG)(ULONG_PTR)engineHandle && (o->pending || e->dynamic)) {
            delete_object(o);
        }
    }
    e->open = FALSE;
    e->in_txn = FALSE;
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI FwpmTransactionBegin0(HANDLE engineHandle, UINT32 flags)
{
    struct engine *e = engine_of(engineHandle);

    log_begin("FwpmTransactionBegin0");
    LOG_KV(" engine=", (ULONG_PTR)engineHandle);
    LOG_HEX(" flags=", flags);
    if (e == NULL) return log_end(STATUS_INVALID_HANDLE);
    if (e->in_txn) return log_end(STATUS_FWP_TXN_IN_PROGRESS);
    e->in_txn = TRUE;
    return log_end(STATUS_SUCCESS);
}

static NTSTATUS end_txn(const char *fn, HANDLE engineHandle, BOOLEAN commit)
{
    struct engine *e = engine_of(engineHandle);
    ULONG n = 0;
    int i;

    log_begin(fn);
    LOG_KV(" engine=", (ULONG_PTR)engineHandle);
    if (e == NULL) return log_end(STATUS_INVALID_HANDLE);
    if (!e->in_txn) return log_end(STATUS_FWP_NO_TXN_IN_PROGRESS);
    e->in_txn = FALSE;
    for (i = 0; i < MAX_OBJECTS * 2; i++) {
        struct object *o = &g_objects[i];
        if (o->used && o->pending && o->engine == (ULONG)(ULONG_PTR)engineHandle) {
            n++;
            if (commit) {
                o->pending = FALSE;
                o->committed_now = TRUE;
            } else {
                delete_object(o);
            }
        }
    }
    LOG_STR(commit ? " committed=" : " aborted=");
    LOG_DEC(n);
    log_end(STATUS_SUCCESS);
    if (commit) {
        for (i = 0; i < MAX_OBJECTS * 2; i++) {
            struct object *o = &g_objects[i];
            if (o->used && o->committed_now) {
                o->committed_now = FALSE;
                if (o->kind == OBJ_FILTER) notify_filter(o, FWPS_CALLOUT_NOTIFY_ADD_FILTER);
            }
        }
    }
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI FwpmTransactionCommit0(HANDLE engineHandle)
{
    return end_txn("FwpmTransactionCommit0", engineHandle, TRUE);
}

NTSTATUS NTAPI FwpmTransactionAbort0(HANDLE engineHandle)
{
    return end_txn("FwpmTransactionAbort0", engineHandle, FALSE);
}

NTSTATUS NTAPI FwpmSubLayerAdd0(HANDLE engineHandle, const FWPM_SUBLAYER0 *subLayer, PSECURITY_DESCRIPTOR sd)
{
    log_begin("FwpmSubLayerAdd0");
    log_txn(engineHandle);
    if (subLayer == NULL) return log_end(STATUS_INVALID_PARAMETER);
    LOG_GUID(" key=", &subLayer->subLayerKey);
    LOG_KV(" weight=", subLayer->weight);
    LOG_HEX(" flags=", subLayer->flags);
    LOG_STR(" sd=");
    LOG_STR(sd == NULL ? "null" : "set");
    return log_end(add_object(engineHandle, OBJ_SUBLAYER, &subLayer->subLayerKey, NULL, NULL));
}

NTSTATUS NTAPI FwpmCalloutAdd0(HANDLE engineHandle, const FWPM_CALLOUT0 *callout, PSECURITY_DESCRIPTOR sd,
                               UINT32 *id)
{
    struct runtime_callout *rc;
    NTSTATUS status;

    log_begin("FwpmCalloutAdd0");
    log_txn(engineHandle);
    if (callout == NULL) return log_end(STATUS_INVALID_PARAMETER);
    LOG_GUID(" key=", &callout->calloutKey);
    LOG_GUID(" layer=", &callout->applicableLayer);
    LOG_HEX(" flags=", callout->flags);
    status = add_object(engineHandle, OBJ_CALLOUT, &callout->calloutKey, &callout->applicableLayer, NULL);
    rc = runtime_by_key(&callout->calloutKey);
    if (NT_SUCCESS(status) && id != NULL) *id = rc != NULL ? rc->id : 0;
    return log_end(status);
}

static void log_condition_value(const FWP_CONDITION_VALUE0 *v)
{
    LOG_STR(",type:");
    LOG_DEC(v->type);
    LOG_STR(",value:");
    switch (v->type) {
    case FWP_UINT8: LOG_DEC(v->uint8); break;
    case FWP_UINT16: LOG_DEC(v->uint16); break;
    case FWP_UINT32: LOG_DEC(v->uint32); break;
    case FWP_V4_ADDR_MASK:
        if (v->v4AddrMask == NULL) {
            LOG_STR("null");
        } else {
            log_hex32(v->v4AddrMask->addr);
            LOG_STR("/");
            log_hex32(v->v4AddrMask->mask);
        }
        break;
    default: LOG_STR("?"); break;
    }
}

NTSTATUS NTAPI FwpmFilterAdd0(HANDLE engineHandle, const FWPM_FILTER0 *filter, PSECURITY_DESCRIPTOR sd, UINT64 *id)
{
    NTSTATUS status;
    UINT32 i;

    log_begin("FwpmFilterAdd0");
    log_txn(engineHandle);
    if (filter == NULL) return log_end(STATUS_INVALID_PARAMETER);
    LOG_GUID(" key=", &filter->filterKey);
    LOG_GUID(" layer=", &filter->layerKey);
    LOG_GUID(" sublayer=", &filter->subLayerKey);
    LOG_KV(" weight_type=", filter->weight.type);
    LOG_HEX(" action=", filter->action.type);
    LOG_GUID(" callout=", &filter->action.calloutKey);
    LOG_KV(" conditions=", filter->numFilterConditions);
    for (i = 0; i < filter->numFilterConditions && filter->filterCondition != NULL && i < 8; i++) {
        const FWPM_FILTER_CONDITION0 *c = &filter->filterCondition[i];
        LOG_STR(" cond");
        LOG_DEC(i);
        LOG_STR("=field:");
        log_guid(&c->fieldKey);
        LOG_STR(",match:");
        LOG_DEC(c->matchType);
        log_condition_value(&c->conditionValue);
    }
    status = add_object(engineHandle, OBJ_FILTER, &filter->filterKey, &filter->layerKey, &filter->action.calloutKey);
    if (NT_SUCCESS(status) && id != NULL) *id = g_next_filter_id++;
    return log_end(status);
}

/* --- the harness's side (stub.h) ----------------------------------------- */

const char *__stdcall stub_log(void)
{
    return g_log;
}

void __stdcall stub_fail_unregister(unsigned int id, unsigned int count, long status)
{
    if (g_fail_rules < MAX_FAIL_RULES) {
        g_fail[g_fail_rules].id = id;
        g_fail[g_fail_rules].count = count;
        g_fail[g_fail_rules].status = (NTSTATUS)status;
        g_fail_rules++;
    }
}

void *__stdcall stub_classify_for_layer(const void *layerKey)
{
    int i;
    for (i = 0; i < MAX_OBJECTS * 2; i++) {
        const struct object *o = &g_objects[i];
        if (o->used && !o->pending && o->kind == OBJ_FILTER && guid_eq(&o->layer, layerKey)) {
            struct runtime_callout *rc = runtime_by_key(&o->calloutKey);
            return rc != NULL ? (void *)rc->callout.classifyFn : NULL;
        }
    }
    return NULL;
}

const char *__stdcall stub_state(void)
{
    ULONG registered = 0, engines = 0, txn = 0, kinds[3] = {0, 0, 0};
    size_t len = 0;
    int i;

    for (i = 0; i < MAX_OBJECTS; i++) {
        registered += g_runtime[i].registered;
        engines += g_engines[i].open;
        txn += g_engines[i].open && g_engines[i].in_txn;
    }
    for (i = 0; i < MAX_OBJECTS * 2; i++) {
        if (g_objects[i].used && !g_objects[i].pending) kinds[g_objects[i].kind]++;
    }
    g_state[0] = 0;
    put_str(g_state, sizeof(g_state), &len, "STATE registered=");
    put_dec(g_state, sizeof(g_state), &len, registered);
    put_str(g_state, sizeof(g_state), &len, " engines=");
    put_dec(g_state, sizeof(g_state), &len, engines);
    put_str(g_state, sizeof(g_state), &len, " filters=");
    put_dec(g_state, sizeof(g_state), &len, kinds[OBJ_FILTER]);
    put_str(g_state, sizeof(g_state), &len, " callouts=");
    put_dec(g_state, sizeof(g_state), &len, kinds[OBJ_CALLOUT]);
    put_str(g_state, sizeof(g_state), &len, " sublayers=");
    put_dec(g_state, sizeof(g_state), &len, kinds[OBJ_SUBLAYER]);
    put_str(g_state, sizeof(g_state), &len, " txn=");
    put_dec(g_state, sizeof(g_state), &len, txn);
    return g_state;
}

int __stdcall stub_dll_entry(void *module, ULONG reason, void *reserved)
{
    (void)module;
    (void)reason;
    (void)reserved;
    return 1;
}
