/*
 * log — leveled, structured log lines on stderr.
 *
 * `LOG_FORMAT=text` gives one human line per event; `json` gives one JSON object
 * per line with ts, level, msg and, when known, delivery and job, so a line can
 * be traced from the webhook that caused it to the job that ran. Extra fields go
 * in as key/value string pairs. Each line leaves in one write(2), so lines from
 * threads and forked workers never interleave.
 *
 * Never pass a secret, a token or a private key: nothing here can tell them
 * apart from other text. The level and format are set once at start-up from the
 * loaded config (log_configure) and only read afterwards; any thread may log.
 */
#ifndef PATCHBAY_LOG_H
#define PATCHBAY_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

/* Returns 0, or -1 when level or format is not one we know. */
int log_configure(const char *level, const char *format);

/* Parses "debug" | "info" | "warn" | "error"; -1 when unknown. */
int log_level_parse(const char *s);

int log_enabled(log_level_t level);

/* delivery and job may be NULL. The message is printf-formatted; then up to
 * LOG_MAX_FIELDS key/value pairs of extra fields may follow in `fields`
 * (NULL-terminated list of const char *, alternating key and value). */
#define LOG_MAX_FIELDS 16
void log_emit(log_level_t level, const char *delivery, const char *job, const char *const *fields,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define log_debug(d, j, ...) do { if (log_enabled(LOG_DEBUG)) log_emit(LOG_DEBUG, d, j, NULL, __VA_ARGS__); } while (0)
#define log_info(d, j, ...) log_emit(LOG_INFO, d, j, NULL, __VA_ARGS__)
#define log_warn(d, j, ...) log_emit(LOG_WARN, d, j, NULL, __VA_ARGS__)
#define log_error(d, j, ...) log_emit(LOG_ERROR, d, j, NULL, __VA_ARGS__)

#endif
