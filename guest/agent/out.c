/* Line building, escaping and output (FORMAT.md "Lines"). */
#include "agent.h"

unsigned format_u64(char *buf, u64 value)
{
    char tmp[21];
    unsigned n = 0;
    unsigned i;

    do {
        tmp[n++] = (char)('0' + (unsigned)(value % 10));
        value /= 10;
    } while (value != 0);
    for (i = 0; i < n; i++) {
        buf[i] = tmp[n - 1 - i];
    }
    buf[n] = '\0';
    return n;
}

static int needs_escape(unsigned char c)
{
    return c < '!' || c > '~' || c == '%' || c == '=' || c == '/' || c == ',';
}

unsigned escape_bytes(char *out, const unsigned char *in, unsigned n)
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned o = 0;
    unsigned i;

    for (i = 0; i < n; i++) {
        unsigned char c = in[i];
        if (needs_escape(c)) {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return o;
}

void line_append(struct line *l, const char *text)
{
    while (*text != '\0') {
        if (l->len >= LINE_MAX_BYTES) {
            l->overflow = 1;
            return;
        }
        l->buf[l->len++] = *text++;
    }
}

void line_start(struct line *l, const char *kind)
{
    l->len = 0;
    l->overflow = 0;
    line_append(l, kind);
}

void line_field(struct line *l, const char *key, const char *value)
{
    line_append(l, " ");
    line_append(l, key);
    line_append(l, "=");
    line_append(l, value);
}

void line_field_u64(struct line *l, const char *key, u64 value)
{
    char num[21];
    format_u64(num, value);
    line_field(l, key, num);
}

void line_field_escaped(struct line *l, const char *key, const char *text)
{
    char esc[3 * 256 + 1];
    unsigned n = 0;

    while (text[n] != '\0' && n < 256) {
        n++; /* free text is short; a longer message is cut at 256 bytes */
    }
    escape_bytes(esc, (const unsigned char *)text, n);
    line_field(l, key, esc);
}

void line_field_list(struct line *l, const char *key, const u64 *values, unsigned n)
{
    char num[21];
    unsigned i;

    line_append(l, " ");
    line_append(l, key);
    line_append(l, "=");
    for (i = 0; i < n; i++) {
        if (i > 0) {
            line_append(l, ",");
        }
        format_u64(num, values[i]);
        line_append(l, num);
    }
}

unsigned line_mark(const struct line *l)
{
    return l->len;
}

void line_rollback(struct line *l, unsigned mark)
{
    l->len = mark;
    l->overflow = 0;
}

unsigned line_room(const struct line *l)
{
    return LINE_MAX_BYTES - l->len;
}

BOOL line_write(struct line *l)
{
    HANDLE out = GetStdHandle(STD_OUTPUT_HANDLE);
    DWORD total;
    DWORD done = 0;

    if (l->overflow || out == NULL || out == INVALID_HANDLE_VALUE) {
        return FALSE;
    }
    l->buf[l->len] = '\r';
    l->buf[l->len + 1] = '\n';
    total = l->len + 2;
    /* No CRT buffer sits in between: the line is out when this returns. A
     * pipe may take less than asked (wine's do); write the rest, and give up
     * when a write makes no progress. At most total iterations. */
    while (done < total) {
        DWORD written = 0;
        if (!WriteFile(out, l->buf + done, total - done, &written, NULL) || written == 0) {
            return FALSE;
        }
        done += written;
    }
    return TRUE;
}

void report_error(const char *where, u64 code, const char *msg)
{
    static struct line l;

    line_start(&l, "E1");
    line_field_escaped(&l, "where", where);
    line_field_u64(&l, "code", code);
    line_field_escaped(&l, "msg", msg);
    line_write(&l);
}
