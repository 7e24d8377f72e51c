/*
 * log — see log.h. Lines are built in a stack buffer and written with a single
 * write(2); a message longer than the buffer is cut and marked, never split.
 */
#include "log.h"
#include "clock.h"
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static struct {
    log_level_t level;
    int json;
} log_settings = {LOG_INFO, 0};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return LOG_WARN;
    return -1;
}

int log_configure(const char *level, const char *format)
{
    int lvl = level != NULL ? log_level_parse(level) : LOG_INFO;
    if (lvl < 0)
        return -1;
    int json = 0;
    if (format != NULL) {
        if (strcasecmp(format, "json") == 0)
            json = 1;
        else if (strcasecmp(format, "text") != 0)
            return -1;
    }
    log_settings.level = (log_level_t)lvl;
    log_settings.json = json;
    return 0;
}

int log_enabled(log_level_t level)
{
    return level >= log_settings.level;
}

#define LOG_LINE_BYTES 8192

static void put_field(strbuf_t *b, int json, const char *key, const char *value)
{
    if (json) {
        strbuf_append(b, ",\"");
        strbuf_append(b, key);
        strbuf_append(b, "\":");
        strbuf_append_json_string(b, value, strlen(value));
    } else {
        strbuf_append(b, " ");
        strbuf_append(b, key);
        strbuf_append(b, "=");
        /* quote values with spaces so text lines stay parseable by eye and awk */
        if (strpbrk(value, " \t\"") != NULL || *value == '\0')
            strbuf_append_json_string(b, value, strlen(value));
        else
            strbuf_append_printable(b, value, strlen(value));
    }
}

void log_emit(log_level_t level, const char *delivery, const char *job, const char *const *fields, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;

    char msg[LOG_LINE_BYTES / 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';

    char when[CLOCK_ISO_BYTES];
    clock_format_iso(clock_wall_ms(), when);

    char line[LOG_LINE_BYTES];
    strbuf_t b;
    strbuf_init_fixed(&b, line, sizeof(line) - 1); /* room for the newline */
    if (log_settings.json) {
        strbuf_append(&b, "{\"ts\":\"");
        strbuf_append(&b, when);
        strbuf_append(&b, "\",\"level\":\"");
        strbuf_append(&b, level_names[level]);
        strbuf_append(&b, "\",\"pid\":");
        strbuf_appendf(&b, "%d", (int)getpid());
        strbuf_append(&b, ",\"msg\":");
        strbuf_append_json_string(&b, msg, strlen(msg));
    } else {
        strbuf_append(&b, when);
        strbuf_append(&b, " ");
        strbuf_append(&b, level_names[level]);
        strbuf_append(&b, " ");
        strbuf_append_printable(&b, msg, strlen(msg));
    }
    if (delivery != NULL)
        put_field(&b, log_settings.json, "delivery", delivery);
    if (job != NULL)
        put_field(&b, log_settings.json, "job", job);
    for (int i = 0; fields != NULL && i < LOG_MAX_FIELDS && fields[2 * i] != NULL; i++)
        put_field(&b, log_settings.json, fields[2 * i], fields[2 * i + 1] != NULL ? fields[2 * i + 1] : "");
    if (log_settings.json)
        strbuf_append(&b, "}");
    if (b.truncated) {
        /* a cut JSON line must still be one valid object: close what we can */
        if (log_settings.json) {
            b.len = 0;
            strbuf_init_fixed(&b, line, sizeof(line) - 1);
            strbuf_appendf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", when, level_names[level]);
            strbuf_append_json_string(&b, msg, strlen(msg) > 1024 ? 1024 : strlen(msg));
            strbuf_append(&b, ",\"truncated\":true}");
        }
    }
    line[b.len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, b.len);
    (void)w;
}
