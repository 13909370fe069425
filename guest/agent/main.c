/*
 * Entry point and command line:
 *   wfplab-agent.exe sample [--interval-ms N]   H1, then S1 every N ms (default 100)
 *   wfplab-agent.exe versions                  one V1 line
 *   wfplab-agent.exe counters                  one C1 line
 *   wfplab-agent.exe reset                     one C1 line, then the counters are zeroed
 *   wfplab-agent.exe mode block|permit         one C1 line with mode=, the driver switched
 */
#include "agent.h"

#define MAX_ARGS 16
#define MIN_INTERVAL_MS 10
#define MAX_INTERVAL_MS 3600000

void *mem_alloc(SIZE_T bytes)
{
    return HeapAlloc(GetProcessHeap(), 0, bytes);
}

void mem_free(void *p)
{
    if (p != NULL) {
        HeapFree(GetProcessHeap(), 0, p);
    }
}

/* Splits the command line the way CommandLineToArgvW does (which lives in
 * shell32, a DLL this agent does not import): whitespace separates
 * arguments, double quotes group, 2n backslashes before a quote become n and
 * the quote toggles grouping, 2n+1 become n and a literal quote. Arguments
 * are narrowed to ASCII; anything else cannot be a valid argument anyway. */
static int split_args(const WCHAR *cmd, char *storage, unsigned storage_len, char **argv, int max_args)
{
    unsigned out = 0;
    int argc = 0;

    while (*cmd != L'\0') {
        int in_quotes = 0;
        while (*cmd == L' ' || *cmd == L'\t') {
            cmd++;
        }
        if (*cmd == L'\0' || argc == max_args) {
            break;
        }
        argv[argc++] = storage + out;
        while (*cmd != L'\0' && (in_quotes || (*cmd != L' ' && *cmd != L'\t'))) {
            unsigned backslashes = 0;
            while (*cmd == L'\\') {
                backslashes++;
                cmd++;
            }
            if (*cmd == L'"') {
                unsigned k;
                for (k = 0; k < backslashes / 2 && out + 1 < storage_len; k++) {
                    storage[out++] = '\\';
                }
                if (backslashes % 2 == 1) {
                    if (out + 1 < storage_len) storage[out++] = '"';
                } else {
                    in_quotes = !in_quotes;
                }
                cmd++;
                continue;
            }
            while (backslashes-- > 0 && out + 1 < storage_len) {
                storage[out++] = '\\';
            }
            if (*cmd == L'\0' || (!in_quotes && (*cmd == L' ' || *cmd == L'\t'))) {
                break;
            }
            if (out + 1 < storage_len) {
                storage[out++] = *cmd < 0x80 ? (char)*cmd : '?';
            }
            cmd++;
        }
        storage[out++] = '\0';
        if (out >= storage_len) {
            storage[storage_len - 1] = '\0';
            break;
        }
    }
    return argc;
}

static int parse_interval(const char *text, DWORD *value)
{
    u64 v = 0;
    const char *p = text;

    if (*p == '\0') {
        return 0;
    }
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || v > MAX_INTERVAL_MS) {
            return 0;
        }
        v = v * 10 + (u64)(*p - '0');
    }
    if (v < MIN_INTERVAL_MS || v > MAX_INTERVAL_MS) {
        return 0;
    }
    *value = (DWORD)v;
    return 1;
}

static int usage(const char *msg)
{
    report_error("usage", ERROR_INVALID_PARAMETER, msg);
    return EXIT_USAGE;
}

static int run(int argc, char **argv)
{
    const char *cmd;
    DWORD interval_ms = 100;
    int i;

    if (argc < 2) {
        return usage("wfplab-agent sample [--interval-ms N] | versions | counters | reset | mode block|permit");
    }
    cmd = argv[1];
    if (strcmp(cmd, "sample") == 0) {
        for (i = 2; i < argc; i++) {
            const char *value = NULL;
            if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc) {
                value = argv[++i];
            } else if (strncmp(argv[i], "--interval-ms=", 14) == 0) {
                value = argv[i] + 14;
            } else {
                return usage("sample takes only --interval-ms N");
            }
            if (!parse_interval(value, &interval_ms)) {
                return usage("--interval-ms wants a whole number of milliseconds from 10 to 3600000");
            }
        }
        return cmd_sample(interval_ms);
    }
    if (strcmp(cmd, "mode") == 0) {
        if (argc != 3) {
            return usage("mode takes block or permit");
        }
        return cmd_mode(argv[2]);
    }
    if (argc != 2) {
        return usage("this command takes no arguments");
    }
    if (strcmp(cmd, "versions") == 0) {
        return cmd_versions();
    }
    if (strcmp(cmd, "counters") == 0) {
        return cmd_counters(FALSE);
    }
    if (strcmp(cmd, "reset") == 0) {
        return cmd_counters(TRUE);
    }
    return usage("unknown command; use sample, versions, counters, reset or mode");
}

/* The process entry point (linked with --entry): no C runtime start-up. */
void WINAPI agent_start(void)
{
    static char storage[1024];
    char *argv[MAX_ARGS];
    int argc = split_args(GetCommandLineW(), storage, sizeof(storage), argv, MAX_ARGS);

    ExitProcess((UINT)run(argc, argv));
}
