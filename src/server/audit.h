/* audit: the audit trail of portholed's control plane. Every API call,
 * allowed or denied, and every channel the gateway opens or refuses
 * becomes one event shaped like a CloudTrail record (eventVersion 1.08),
 * written as one JSON line to DATA_DIR/audit/audit-YYYY-MM-DD.jsonl (UTC
 * day of the event; audit-YYYY-MM-DD.N.jsonl once a file reaches the size
 * limit). The directory is 0700, the files 0600, opened O_APPEND; nothing
 * in the API deletes or rewrites them. Each event is one writev(2), no
 * fsync: a crash of portholed loses nothing already written, a crash of
 * the machine what the kernel had not written back.
 *
 * Request members whose names say they are secret (passwords, secret
 * keys, tokens, plaintexts, ...) are written as AUDIT_HIDDEN, never their
 * values; answers contribute only an allowlist of identifiers
 * (responseElements).
 *
 * Single-threaded: call from portholed's event loop only. */
#ifndef PORTHOLE_AUDIT_H
#define PORTHOLE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "server/server.h"

struct principal;

#define AUDIT_SUBDIR "audit"
#define AUDIT_EVENT_VERSION "1.08"
#define AUDIT_HIDDEN "HIDDEN_DUE_TO_SECURITY_REASONS"
#define AUDIT_MAX_FILE_BYTES_DEFAULT ((uint64_t)100 << 20)
#define AUDIT_MIN_FILE_BYTES ((uint64_t)4096)
/* An event longer than this loses its requestParameters and
 * responseElements (additionalEventData says so); readers rely on it. */
#define AUDIT_MAX_LINE ((size_t)64 * 1024)
/* Events of requests that failed authentication: at most this many at
 * once, then this many a second; the next one written counts the rest
 * (additionalEventData.unauthenticatedEventsSuppressed). */
#define AUDIT_UNAUTH_BURST 200
#define AUDIT_UNAUTH_PER_SEC 50
/* Longest user agent kept, in bytes. */
#define AUDIT_MAX_USER_AGENT 1024

struct audit;

/* A file was closed by rotation (the day changed, or it reached the size
 * limit) and gets no more events: its path. */
typedef void (*audit_rotated_fn)(void *arg, const char *path);

struct audit_config {
	uint64_t max_file_bytes;  /* rotate past this; 0: the default */
	int syslog;               /* also syslog(3) each line (AUTHPRIV) */
	audit_rotated_fn rotated; /* NULL: nothing to tell */
	void *rotated_arg;
};

/* Create DATA_DIR/audit (0700) if needed and get ready to append. The
 * first event opens (or continues) today's newest file. 0, PH_ERR_IO if
 * the directory cannot be made or is not a directory, PH_ERR_NOMEM. */
int audit_open(struct audit **out, const char *data_dir,
    const struct audit_config *cfg);
void audit_close(struct audit *a);
/* The directory the files are in. */
const char *audit_dir(const struct audit *a);
/* Events that could not be written since audit_open (disk full, ...). */
uint64_t audit_failures(const struct audit *a);

/* One event. Every pointer may be NULL. */
struct audit_event {
	int64_t time_ms;            /* 0: now */
	const char *service;        /* signing name: "ssm" -> ssm.amazonaws.com */
	const char *name;           /* eventName, e.g. "StartSession" */
	const char *region;         /* awsRegion */
	const char *account_id;     /* recipientAccountId (and identities') */
	const char *source_ip;
	const char *user_agent;
	/* Who called; NULL: not authenticated (type "Unknown", with
	 * access_key_id if the request claimed one). */
	const struct principal *principal;
	const char *access_key_id;
	/* The request's members: a JSON service's body, or a Query
	 * service's form body (form, form_len; Action and Version left
	 * out). Copied with secrets hidden. */
	const json_t *request;
	const void *form;
	size_t form_len;
	/* A JSON service's answer: only allowlisted identifiers are kept.
	 * extra_response: members to add as they are (the caller vouches
	 * they hold no secret). */
	const json_t *response;
	const json_t *extra_response;
	/* A Query service's XML answer: likewise only identifiers (the
	 * Arn, ids and AccessKeyId of what was made or assumed, never a
	 * secret key or session token). */
	const char *response_xml;
	size_t response_xml_len;
	const char *error_code;     /* NULL: the call succeeded */
	const char *error_message;
	const char *request_id;     /* requestID; NULL: none */
	const char *event_type;     /* eventType; NULL: "AwsApiCall" */
};

/* Append ev. 0, or a negative code (the failure is logged, rate-limited,
 * and counted; the caller goes on: an audit failure never fails a call). */
int audit_record(struct audit *a, const struct audit_event *ev);

/* The gateway's channel opens (eventSource ssmmessages.amazonaws.com,
 * eventName OpenControlChannel or OpenDataChannel): an agent is named by
 * instance_id (its certificate) and becomes its instance principal; a
 * client data channel is the session's owner. error_code NULL: opened.
 * Does nothing if srv has no audit trail. */
void audit_channel(struct server *srv, const char *event_name,
    const char *instance_id, const char *session_id, const char *source_ip,
    const char *user_agent, const char *error_code,
    const char *error_message);

/* ---- pieces, exposed for tests and the reader ------------------------- */

/* Is a request member with this name written as AUDIT_HIDDEN? Matched
 * without regard to case: names containing secret, password, passphrase,
 * token, plaintext, privatekey, credential, activationcode, keymaterial,
 * or the CiphertextBlob (not secret, but large and useless here). */
int audit_hidden_member(const char *name);
/* A deep copy of v with hidden members' values replaced, bounded in depth
 * and size (deeper or larger parts become "..."). NULL: out of memory. */
json_t *audit_redact(const json_t *v);
/* The event as written (without the newline); event_id NULL: a new one. */
json_t *audit_event_json(const struct audit_event *ev, const char *event_id);
/* Is an event of this name read-only (Get*, List*, Describe*, ...)? */
int audit_read_only(const char *event_name);
/* eventSource of a signing name: "kms" -> "kms.amazonaws.com"; anything
 * not a plausible name -> "unknown". */
void audit_event_source(const char *service, char *out, size_t size);
/* From an Authorization header, the access key id and service a request
 * claims (for events of requests that failed authentication). 0 or
 * PH_ERR_INVALID. */
int audit_claimed_credential(const char *authorization, char *akid,
    size_t akid_size, char *service, size_t service_size);

/* ---- reading ---------------------------------------------------------- */

/* A place in the trail: the file (day, index) and a byte offset in it;
 * lines before the offset are older. */
struct audit_pos {
	char day[11];      /* YYYY-MM-DD */
	unsigned idx;      /* 0: audit-DAY.jsonl, N: audit-DAY.N.jsonl */
	uint64_t off;
};

/* As an opaque NextToken, and back (PH_ERR_INVALID on anything else). */
void audit_pos_format(const struct audit_pos *p, char *out, size_t size);
int audit_pos_parse(const char *s, struct audit_pos *p);

/* fn sees each line (no newline; not NUL-terminated), newest first;
 * returns 1 to stop after this line, 0 to go on, negative to fail. */
typedef int (*audit_line_fn)(void *arg, const char *line, size_t len);

struct audit_scan {
	const struct audit_pos *from;  /* NULL: from the newest event */
	int64_t min_ms, max_ms;        /* files wholly outside are skipped */
	size_t max_bytes;              /* work bounds of one call */
	size_t max_lines;
};

/* Walk the trail newest first. 0 with *more 0 when every line was seen,
 * or *more 1 and *next where to go on (fn stopped, or a bound was
 * reached). Garbage lines are handed to fn as they are. */
int audit_scan(struct audit *a, const struct audit_scan *s,
    audit_line_fn fn, void *arg, struct audit_pos *next, int *more);

#endif
