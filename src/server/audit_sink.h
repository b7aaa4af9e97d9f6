/* audit_sink: delivery of the audit trail's files to the record sink.
 * When config.json names AuditS3Bucket, each audit file closed by
 * rotation (audit.c) is hard-linked into DATA_DIR/audit-outbox and the
 * link queued with sink_enqueue as item "audit-YYYY-MM-DD[.N]", object
 * key PREFIX/audit-YYYY-MM-DD[.N].jsonl. The sink deletes the link once
 * the bucket has the object; the file in DATA_DIR/audit stays, so
 * LookupEvents still reads it. */
#ifndef PORTHOLE_AUDIT_SINK_H
#define PORTHOLE_AUDIT_SINK_H

#include <jansson.h>

#include "server/server.h"

#define AUDIT_OUTBOX_SUBDIR "audit-outbox"

struct audit_sink {
	struct server *srv;          /* its sink, once open */
	char bucket[64];             /* AuditS3Bucket; "": not delivered */
	char prefix[513];            /* AuditS3KeyPrefix */
	int encrypt;                 /* AuditS3EncryptionEnabled: SSE-S3 */
};

/* config.json's keys (o may be NULL); a bad value is logged and
 * ignored (the trail then stays local). */
void audit_sink_config(struct audit_sink *as, struct server *srv,
    const json_t *o);
/* audit_rotated_fn: arg is a struct audit_sink. A failure is logged; the
 * file stays in DATA_DIR/audit either way. */
void audit_sink_rotated(void *arg, const char *path);

#endif
