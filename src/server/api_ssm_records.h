/* api_ssm_records: the SSM API's side of session records: the recording
 * preferences StartSession snapshots (and strict mode's refusal),
 * DescribeSessions' OutputUrl, and GetSessionLog, porthole's own action
 * (AmazonSSM.GetSessionLog) that pages through a session's record:
 *   in:  SessionId, Format "log" (default) | "cast" | "rec", Offset
 *        (default 0), MaxBytes (1..4194304, default 1048576)
 *   out: SessionId, Format, Content (base64), Length (bytes in Content),
 *        TotalLength, Complete (the agent delivered all of it), and
 *        NextOffset while more follows.
 * Authorised as ssm:GetSessionLog on the session's ARN.
 * GetRecordDeliveryStatus (AmazonSSM.GetRecordDeliveryStatus, porthole's
 * own, no input) shows the sink's queue:
 *   out: QueueDepth (files waiting for upload), OldestQueuedTime (epoch
 *        seconds; only while QueueDepth > 0), Healthy (the last upload
 *        attempt succeeded), LastError (the last failure, while any).
 * Authorised as ssm:GetRecordDeliveryStatus on "*". */
#ifndef PORTHOLE_API_SSM_RECORDS_H
#define PORTHOLE_API_SSM_RECORDS_H

#include <jansson.h>

#include "server/api.h"
#include "server/store_records.h"

#define API_SESSION_LOG_MAX ((int64_t)4 << 20)
#define API_SESSION_LOG_DEFAULT ((int64_t)1 << 20)

/* StartSession, before the session exists: the recording preferences of
 * the resolved document, or strict mode's InvalidDocument while the
 * sink is unhealthy and they name a bucket. */
int api_ssm_records_prefs(const struct api_call *c, json_t *rdoc,
    struct record_prefs *p, struct api_error *err);
/* StartSession, once the session exists: keep the preferences with it.
 * A failure is logged; the record then goes to the local store only. */
void api_ssm_records_created(const struct api_call *c, const char *sid,
    const struct record_prefs *p);
/* DescribeSessions: OutputUrl {S3OutputUrl} of one session, when it has
 * a record: the S3 object's URL once queued for a bucket, otherwise
 * file://DATA_DIR/records/SESSION-ID.log (.rec while the record is not
 * complete). */
void api_ssm_records_output_url(const struct api_call *c, const char *sid,
    json_t *session);
int api_ssm_get_session_log(const struct api_call *c, json_t *in,
    json_t *out, struct api_error *err);
int api_ssm_get_record_delivery_status(const struct api_call *c,
    json_t *in, json_t *out, struct api_error *err);

#endif
