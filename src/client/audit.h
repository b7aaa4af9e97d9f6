/* audit: `porthole audit`, the audit trail of portholed (or AWS
 * CloudTrail) through CloudTrail's LookupEvents, one line per event,
 * newest first. */
#ifndef PORTHOLE_CLIENT_AUDIT_H
#define PORTHOLE_CLIENT_AUDIT_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#define CLIENT_AUDIT_TARGET "com.amazonaws.cloudtrail.v20131101." \
	"CloudTrail_20131101.LookupEvents"
/* Events printed unless --max says otherwise, and at most. */
#define CLIENT_AUDIT_DEFAULT_MAX 100
#define CLIENT_AUDIT_MAX 100000
/* Pages followed at most (a page may be empty when the server bounds
 * its work per call). */
#define CLIENT_AUDIT_MAX_PAGES 10000

/* A time on the command line: epoch seconds, ISO 8601 (2026-12-04,
 * 2026-12-04T10:00:00Z, 2026-12-04T10:00:00) in UTC, or an age before
 * now: Ns, Nm, Nh, Nd, Nw. 0 and *out, or PH_ERR_INVALID. */
int client_audit_parse_time(const char *s, time_t now, time_t *out);

/* One LookupEvents Event as a line (no newline): time, source, name,
 * caller ARN (or user name), source address, and "ok" or the error code
 * and message. Control characters become '?'. */
void client_audit_format(json_t *event, char *out, size_t size);

/* `porthole audit [options]` (argv[0] is "audit"). Exit status: 0, 2 for
 * a bad command line, 255 when a call failed. */
int client_audit_main(int argc, char **argv);

#endif
