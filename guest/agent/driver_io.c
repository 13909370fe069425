/* The callout driver's counters, read through its device (wfplab_ioctl.h). */
#include "agent.h"

static const char *const layer_keys[WFPLAB_LAYER_COUNT] = {
    [WFPLAB_LAYER_STREAM] = "L.stream",
    [WFPLAB_LAYER_FORWARD] = "L.forward",
    [WFPLAB_LAYER_TRANSPORT] = "L.transport",
};

static const char *const multi_blocked_keys[WFPLAB_LAYER_COUNT] = {
    [WFPLAB_LAYER_STREAM] = "L.stream.multi_blocked",
    [WFPLAB_LAYER_FORWARD] = "L.forward.multi_blocked",
    [WFPLAB_LAYER_TRANSPORT] = "L.transport.multi_blocked",
};

/* One METHOD_BUFFERED call; FALSE with *error set when it failed or answered
 * the wrong size. */
static BOOL ioctl_counters(HANDLE device, DWORD code, void *in, DWORD in_len, void *out, DWORD size, DWORD *error)
{
    DWORD returned = 0;

    if (!DeviceIoControl(device, code, in, in_len, out, size, &returned, NULL)) {
        *error = GetLastError();
        return FALSE;
    }
    if (returned != size) {
        *error = ERROR_INVALID_DATA;
        return FALSE;
    }
    return TRUE;
}

/* Asks code_v2 (answering struct wfplab_counters_v2) when it is not 0, and
 * code_v1 (struct wfplab_counters) when there is no code_v2 or the driver is
 * a version 1 one that does not know it. */
static void driver_ioctl(struct drv_reading *r, DWORD code_v2, DWORD code_v1, DWORD access, void *in, DWORD in_len)
{
    struct wfplab_counters v1;
    DWORD error = ERROR_INVALID_FUNCTION;
    HANDLE device;
    unsigned i;
    unsigned k;

    memset(r, 0, sizeof(*r));
    /* Opened for each reading and closed at once: an open handle would keep
     * `sc stop wfplabcallout` from unloading the driver. */
    device = CreateFileW(WFPLAB_WIN32_PATH, access, 0, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (device == INVALID_HANDLE_VALUE) {
        error = GetLastError();
        /* No device by that name: the driver is not loaded. Anything else
         * (access denied by the device's DACL, ...) is an error to report. */
        if (error == ERROR_FILE_NOT_FOUND || error == ERROR_PATH_NOT_FOUND) {
            r->state = DRV_ABSENT;
        } else {
            r->state = DRV_ERROR;
            r->error = error;
        }
        return;
    }
    r->state = DRV_ERROR;
    if (code_v2 != 0 && ioctl_counters(device, code_v2, in, in_len, &r->counters, sizeof(r->counters), &error)) {
        if (r->counters.version == WFPLAB_COUNTERS_VERSION_2 && r->counters.layer_count == WFPLAB_LAYER_COUNT) {
            r->state = DRV_RUNNING;
            r->has_multi_blocked = TRUE;
        } else {
            error = ERROR_INVALID_DATA; /* a driver of another interface version */
        }
    } else if (error == ERROR_INVALID_FUNCTION) {
        /* A version 1 driver does not know the code: ask it the old way. */
        if (ioctl_counters(device, code_v1, in, in_len, &v1, sizeof(v1), &error)) {
            if (v1.version == WFPLAB_COUNTERS_VERSION && v1.layer_count == WFPLAB_LAYER_COUNT) {
                r->state = DRV_RUNNING;
                for (i = 0; i < WFPLAB_LAYER_COUNT; i++) {
                    r->counters.layer[i].classify = v1.layer[i].classify;
                    r->counters.layer[i].blocked = v1.layer[i].blocked;
                    r->counters.layer[i].nbls = v1.layer[i].nbls;
                    r->counters.layer[i].multi_chain = v1.layer[i].multi_chain;
                    for (k = 0; k < WFPLAB_HIST_BUCKETS; k++) {
                        r->counters.layer[i].hist[k] = v1.layer[i].hist[k];
                    }
                }
            } else {
                error = ERROR_INVALID_DATA;
            }
        }
    }
    if (r->state == DRV_ERROR) {
        r->error = error;
    }
    CloseHandle(device);
}

void driver_read(struct drv_reading *r, BOOL reset)
{
    driver_ioctl(r, reset ? IOCTL_WFPLAB_RESET_COUNTERS_V2 : IOCTL_WFPLAB_GET_COUNTERS_V2,
                 reset ? IOCTL_WFPLAB_RESET_COUNTERS : IOCTL_WFPLAB_GET_COUNTERS,
                 GENERIC_READ | (reset ? GENERIC_WRITE : 0), NULL, 0);
}

void line_driver_fields(struct line *l, const struct drv_reading *r, const char *mode)
{
    char state[32];
    unsigned i;

    switch (r->state) {
    case DRV_RUNNING:
        line_field(l, "drv", "running");
        if (mode != NULL) {
            line_field(l, "mode", mode); /* right after drv=, as FORMAT.md shows */
        }
        for (i = 0; i < WFPLAB_LAYER_COUNT; i++) {
            const struct wfplab_layer_counters_v2 *c = &r->counters.layer[i];
            u64 v[WFPLAB_LAYER_FIELDS] = {c->classify, c->blocked, c->nbls, c->multi_chain, c->hist[0],
                                          c->hist[1], c->hist[2], c->hist[3], c->hist[4], c->hist[5]};
            line_field_list(l, layer_keys[i], v, WFPLAB_LAYER_FIELDS);
            if (r->has_multi_blocked) {
                line_field_u64(l, multi_blocked_keys[i], c->multi_blocked);
            }
        }
        break;
    case DRV_ABSENT:
        line_field(l, "drv", "absent");
        break;
    default:
        memcpy(state, "error:", 6);
        format_u64(state + 6, r->error);
        line_field(l, "drv", state);
        break;
    }
}

int cmd_counters(BOOL reset)
{
    static struct line l;
    struct drv_reading r;

    driver_read(&r, reset);
    line_start(&l, "C1");
    line_driver_fields(&l, &r, NULL);
    line_write(&l);
    return r.state == DRV_ERROR ? EXIT_QUERY_FAILED : EXIT_OK;
}

int cmd_mode(const char *name)
{
    static struct line l;
    struct drv_reading r;
    ULONG mode;

    if (strcmp(name, "block") == 0) {
        mode = WFPLAB_MODE_BLOCK;
    } else if (strcmp(name, "permit") == 0) {
        mode = WFPLAB_MODE_PERMIT;
    } else {
        report_error("usage", ERROR_INVALID_PARAMETER, "mode takes block or permit");
        return EXIT_USAGE;
    }
    driver_ioctl(&r, 0, IOCTL_WFPLAB_SET_MODE, GENERIC_READ | GENERIC_WRITE, &mode, sizeof(mode));
    if (r.state == DRV_RUNNING) {
        /* SET_MODE answers version 1 counters: print a full reading, as
         * `counters` does. */
        driver_read(&r, FALSE);
    }
    line_start(&l, "C1");
    line_driver_fields(&l, &r, name);
    line_write(&l);
    /* Unlike counters, an absent driver is a failure here: the mode was not set. */
    return r.state == DRV_RUNNING ? EXIT_OK : EXIT_QUERY_FAILED;
}
