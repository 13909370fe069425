/*
 * wfplab-agent.exe: the lab's in-guest sampler. Output format: FORMAT.md.
 *
 * Built without the C runtime's startup code (entry agent_start in main.c):
 * it imports only kernel32, ntdll, advapi32, version and msvcrt (memset,
 * memcpy, qsort), all present on Vista, and writes with WriteFile so every
 * line reaches the pipe as soon as it is complete.
 */
#ifndef WFPLAB_AGENT_H
#define WFPLAB_AGENT_H

#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <stdlib.h>
#include <string.h>

#include "../common/wfplab_ioctl.h"

#define AGENT_VERSION "0.1.0"

/* FORMAT.md: at most 8192 bytes per line, not counting CRLF. */
#define LINE_MAX_BYTES 8192

/* Exit codes (FORMAT.md). */
#define EXIT_OK 0
#define EXIT_USAGE 1
#define EXIT_QUERY_FAILED 2

typedef unsigned long long u64;

/* --- out.c: building and writing lines ---------------------------------- */

struct line {
    char buf[LINE_MAX_BYTES + 2]; /* + CRLF */
    unsigned len;
    int overflow; /* something did not fit: the line is not written */
};

void line_start(struct line *l, const char *kind);
/* Appends " key=value"; value is written as given (callers escape). */
void line_field(struct line *l, const char *key, const char *value);
void line_field_u64(struct line *l, const char *key, u64 value);
/* Appends " key=" followed by text escaped per FORMAT.md. */
void line_field_escaped(struct line *l, const char *key, const char *text);
/* Appends raw text; the caller built a whole " key=value". */
void line_append(struct line *l, const char *text);
/* Appends " key=a,b,c" from n numbers. */
void line_field_list(struct line *l, const char *key, const u64 *values, unsigned n);
/* Checkpoint and rollback, for optional fields that may not fit. */
unsigned line_mark(const struct line *l);
void line_rollback(struct line *l, unsigned mark);
/* Room left on the line. */
unsigned line_room(const struct line *l);
/* Writes the line with CRLF; FALSE when stdout is gone or the line overflowed. */
BOOL line_write(struct line *l);

/* Formats value in decimal into buf (>= 21 bytes); returns the length. */
unsigned format_u64(char *buf, u64 value);
/* Escapes bytes per FORMAT.md into out (>= 3*n+1 bytes); returns the length. */
unsigned escape_bytes(char *out, const unsigned char *in, unsigned n);

/* Writes "E1 where=... code=... msg=..." */
void report_error(const char *where, u64 code, const char *msg);

/* --- clock.c --------------------------------------------------------------- */

/* Microseconds since boot from QueryPerformanceCounter. */
u64 boot_microseconds(void);
/* "x86" or "x64" for the OS (not the process); NULL for anything else. */
const char *os_arch(void);

/* --- driver_io.c: the callout driver's counters --------------------------- */

enum drv_state { DRV_RUNNING, DRV_ABSENT, DRV_ERROR };

struct drv_reading {
    enum drv_state state;
    DWORD error; /* Win32 error when DRV_ERROR */
    /* A version 1 driver has no multi_blocked: its counters are widened and
     * has_multi_blocked stays FALSE. */
    BOOL has_multi_blocked;
    struct wfplab_counters_v2 counters;
};

void driver_read(struct drv_reading *r, BOOL reset);
/* Appends drv=... and, when running, the L.<layer> fields (and, from a
 * version 2 driver, L.<layer>.multi_blocked after each); mode, when not
 * NULL, as mode=<mode> right after drv=running. */
void line_driver_fields(struct line *l, const struct drv_reading *r, const char *mode);

/* --- commands ------------------------------------------------------------- */

int cmd_sample(DWORD interval_ms);
int cmd_versions(void);
int cmd_counters(BOOL reset);
int cmd_mode(const char *name);

/* --- heap ------------------------------------------------------------------ */

void *mem_alloc(SIZE_T bytes);
void mem_free(void *p);

#endif
