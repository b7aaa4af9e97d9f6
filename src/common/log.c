#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Distinct rate-limited events; the code names a handful. Keys past
 * this share the last bucket. */
#define LOG_LIMIT_KEYS 64

struct log_bucket {
	const char *key;
	uint64_t last;          /* when tokens were last refilled */
	unsigned tokens;
	unsigned long suppressed;
	enum log_level level;   /* of the lines suppressed */
};

static enum log_level log_level = LOG_INFO;
static const char *log_program = "porthole";
static FILE *log_out;
static uint64_t (*log_clock)(void);
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_bucket log_buckets[LOG_LIMIT_KEYS];
static size_t log_nbuckets;

void
log_set_level(enum log_level lvl)
{
	log_level = lvl;
}

void
log_set_program(const char *name)
{
	log_program = name;
}

void
log_init_from_env(void)
{
	const char *v = getenv("PORTHOLE_LOG");

	if (v == NULL)
		return;
	if (strcmp(v, "debug") == 0)
		log_level = LOG_DEBUG;
	else if (strcmp(v, "info") == 0)
		log_level = LOG_INFO;
	else if (strcmp(v, "warn") == 0)
		log_level = LOG_WARN;
	else if (strcmp(v, "error") == 0)
		log_level = LOG_ERROR;
}

void
log_set_output(FILE *f)
{
	pthread_mutex_lock(&log_lock);
	log_out = f;
	pthread_mutex_unlock(&log_lock);
}

void
log_set_clock(uint64_t (*now_ms)(void))
{
	pthread_mutex_lock(&log_lock);
	log_clock = now_ms;
	memset(log_buckets, 0, sizeof(log_buckets));
	log_nbuckets = 0;
	pthread_mutex_unlock(&log_lock);
}

static void
log_vwrite(enum log_level lvl, const char *suffix, const char *fmt,
    va_list ap)
{
	static const char *names[] = { "debug", "info", "warn", "error" };
	char line[2048], ts[32];
	struct timespec now;
	struct tm tm;
	size_t len;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s level=%s ", ts,
	    now.tv_nsec / 1000000, log_program, names[lvl]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (suffix != NULL) {
		len = strlen(line);
		snprintf(line + len, sizeof(line) - len, "%s", suffix);
	}
	/* One write per line so lines from several processes do not mix. */
	fprintf(log_out != NULL ? log_out : stderr, "%s\n", line);
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl < log_level)
		return;
	va_start(ap, fmt);
	log_vwrite(lvl, NULL, fmt, ap);
	va_end(ap);
}

static uint64_t
log_now_ms(void)
{
	struct timespec ts;

	if (log_clock != NULL)
		return log_clock();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Called with log_lock held. */
static struct log_bucket *
log_bucket_get(const char *key, uint64_t now)
{
	struct log_bucket *b;
	size_t i;

	for (i = 0; i < log_nbuckets; i++)
		if (log_buckets[i].key == key ||
		    strcmp(log_buckets[i].key, key) == 0)
			return &log_buckets[i];
	if (log_nbuckets == LOG_LIMIT_KEYS)
		return &log_buckets[LOG_LIMIT_KEYS - 1];
	b = &log_buckets[log_nbuckets++];
	b->key = key;
	b->last = now;
	b->tokens = LOG_LIMIT_BURST;
	return b;
}

void
log_limited(enum log_level lvl, const char *key, const char *fmt, ...)
{
	struct log_bucket *b;
	unsigned long dropped = 0;
	uint64_t now, n;
	char suffix[48];
	va_list ap;

	if (lvl < log_level)
		return;
	pthread_mutex_lock(&log_lock);
	now = log_now_ms();
	b = log_bucket_get(key, now);
	if (now > b->last) {
		n = (now - b->last) / LOG_LIMIT_INTERVAL_MS;
		if (n >= LOG_LIMIT_BURST - b->tokens) {
			b->tokens = LOG_LIMIT_BURST;
			b->last = now;
		} else {
			b->tokens += (unsigned)n;
			b->last += n * LOG_LIMIT_INTERVAL_MS;
		}
	}
	if (b->tokens == 0) {
		if (b->suppressed == 0 || lvl > b->level)
			b->level = lvl;
		b->suppressed++;
		pthread_mutex_unlock(&log_lock);
		return;
	}
	b->tokens--;
	dropped = b->suppressed;
	b->suppressed = 0;
	pthread_mutex_unlock(&log_lock);
	if (dropped > 0)
		snprintf(suffix, sizeof(suffix), " suppressed=%lu", dropped);
	va_start(ap, fmt);
	log_vwrite(lvl, dropped > 0 ? suffix : NULL, fmt, ap);
	va_end(ap);
}

static void
log_line(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(lvl, NULL, fmt, ap);
	va_end(ap);
}

void
log_flush_suppressed(void)
{
	struct {
		const char *key;
		unsigned long n;
		enum log_level level;
	} out[LOG_LIMIT_KEYS];
	size_t i, nout = 0;

	pthread_mutex_lock(&log_lock);
	for (i = 0; i < log_nbuckets; i++) {
		if (log_buckets[i].suppressed == 0)
			continue;
		out[nout].key = log_buckets[i].key;
		out[nout].n = log_buckets[i].suppressed;
		out[nout].level = log_buckets[i].level;
		nout++;
		log_buckets[i].suppressed = 0;
	}
	pthread_mutex_unlock(&log_lock);
	/* Outside the lock: writing may block. */
	for (i = 0; i < nout; i++)
		log_line(out[i].level, "event=log_suppressed key=%s count=%lu",
		    out[i].key, out[i].n);
}
