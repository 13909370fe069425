/* The callout driver's counters, read through its device (wfplab_ioctl.h). */
#include "agent.h"

static const char *const layer_keys[WFPLAB_LAYER_COUNT] = {
    [WFPLAB_LAYER_STREAM] = "L.stream",
    [WFPLAB_LAYER_FORWARD] = "L.forward",
    [WFPLAB_LAYER_TRANSPORT] = "L.transport",
};

/* One METHOD_BUFFERED call that answers struct wfplab_counters. */
static void driver_ioctl(struct drv_reading *r, DWORD code, DWORD access, void *in, DWORD in_len)
{
    DWORD returned = 0;
    HANDLE device;

    memset(r, 0, sizeof(*r));
    /* Opened for each reading and closed at once: an open handle would keep
     * `sc stop wfplabcallout` from unloading the driver. */
    device = CreateFileW(WFPLAB_WIN32_PATH, access, 0, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (device == INVALID_HANDLE_VALUE) {
        r->state = DRV_ABSENT;
        return;
    }
    if (!DeviceIoControl(device, code, in, in_len, &r->counters, sizeof(r->counters), &returned, NULL)) {
        r->state = DRV_ERROR;
        r->error = GetLastError();
    } else if (returned != sizeof(r->counters) || r->counters.version != WFPLAB_COUNTERS_VERSION ||
               r->counters.layer_count != WFPLAB_LAYER_COUNT) {
        r->state = DRV_ERROR;
        r->error = ERROR_INVALID_DATA; /* a driver of another interface version */
    } else {
        r->state = DRV_RUNNING;
    }
    CloseHandle(device);
}

void driver_read(struct drv_reading *r, BOOL reset)
{
    driver_ioctl(r, reset ? IOCTL_WFPLAB_RESET_COUNTERS : IOCTL_WFPLAB_GET_COUNTERS,
                 GENERIC_READ | (reset ? GENERIC_WRITE : 0), NULL, 0);
}

void line_driver_fields(struct line *l, const struct drv_reading *r)
{
    char state[32];
    unsigned i;

    switch (r->state) {
    case DRV_RUNNING:
        line_field(l, "drv", "running");
        for (i = 0; i < WFPLAB_LAYER_COUNT; i++) {
            const struct wfplab_layer_counters *c = &r->counters.layer[i];
            u64 v[WFPLAB_LAYER_FIELDS] = {c->classify, c->blocked, c->nbls, c->multi_chain, c->hist[0],
                                          c->hist[1], c->hist[2], c->hist[3], c->hist[4], c->hist[5]};
            line_field_list(l, layer_keys[i], v, WFPLAB_LAYER_FIELDS);
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
    line_driver_fields(&l, &r);
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
    driver_ioctl(&r, IOCTL_WFPLAB_SET_MODE, GENERIC_READ | GENERIC_WRITE, &mode, sizeof(mode));
    line_start(&l, "C1");
    line_driver_fields(&l, &r);
    if (r.state == DRV_RUNNING) {
        line_field(&l, "mode", name);
    }
    line_write(&l);
    /* Unlike counters, an absent driver is a failure here: the mode was not set. */
    return r.state == DRV_RUNNING ? EXIT_OK : EXIT_QUERY_FAILED;
}
