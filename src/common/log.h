/* log: one line per event, key=value, to stderr. Never pass secrets. */
#ifndef PORTHOLE_LOG_H
#define PORTHOLE_LOG_H

#include <stdint.h>
#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level lvl);
void log_set_program(const char *name);
/* Levels from PORTHOLE_LOG=debug|info|warn|error, if set. */
void log_init_from_env(void);
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Rate-limited lines, for events a peer can make happen at will (one per
 * connection in a flood). Each key (a string literal naming the event)
 * has a token bucket: LOG_LIMIT_BURST lines at once, then one more each
 * LOG_LIMIT_INTERVAL_MS. Lines over the limit are counted; the next line
 * of that key that is written ends in " suppressed=N", and
 * log_flush_suppressed writes "event=log_suppressed key=K count=N" for
 * keys whose count was not reported yet. Thread-safe. */
#define LOG_LIMIT_BURST 10
#define LOG_LIMIT_INTERVAL_MS 1000
void log_limited(enum log_level lvl, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_flush_suppressed(void);

/* For tests: where lines go (NULL: stderr) and the clock the limiter
 * reads, in milliseconds (NULL: CLOCK_MONOTONIC). Forgets every key. */
void log_set_output(FILE *f);
void log_set_clock(uint64_t (*now_ms)(void));

#endif
