#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum log_level log_level = LOG_INFO;
static const char *log_program = "porthole";

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
log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *names[] = { "debug", "info", "warn", "error" };
	char line[2048], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;

	if (lvl < log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s level=%s ", ts,
	    now.tv_nsec / 1000000, log_program, names[lvl]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One write per line so lines from several processes do not mix. */
	fprintf(stderr, "%s\n", line);
}
