/* store_commands: Run Command's persistent state (schema version 7): one
 * row per SendCommand (commands) and one per target instance
 * (command_invocations), with each invocation's per-step results. Written
 * by api_ssm_commands.c (SendCommand, CancelCommand) and commands.c (the
 * dispatcher: delivery, replies, timeouts); read by both. SQL that
 * PostgreSQL also runs. */
#ifndef PORTHOLE_STORE_COMMANDS_H
#define PORTHOLE_STORE_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

struct store;

#define STORE_COMMAND_ID_SIZE 37      /* a UUID, as AWS's CommandId */
#define STORE_CMD_STATUS_SIZE 24      /* Status values (botocore enums) */
#define STORE_CMD_DETAILS_SIZE 32     /* StatusDetails ("Delivery Timed Out") */
#define STORE_CMD_RATE_SIZE 8         /* MaxConcurrency / MaxErrors: "50", "10%" */

/* One SendCommand. Strings owned by the record (command_rec_clear frees
 * them); NULL text fields are stored as NULL/empty. */
struct command_rec {
	char command_id[STORE_COMMAND_ID_SIZE];
	char *document_name;
	char document_version[16];    /* the version that ran, e.g. "1" */
	char *comment;
	char *parameters_json;        /* resolved Parameters: name -> [str] */
	char *targets_json;           /* Targets as given ([] if none) */
	char *instance_ids_json;      /* InstanceIds as given ([] if none) */
	char *content_json;           /* DocumentContent sent to each agent */
	char *owner_arn;              /* the caller (audit, ${aws:username}) */
	int64_t requested_ms;
	int64_t expires_ms;           /* requested_ms + TimeoutSeconds */
	int timeout_seconds;          /* delivery timeout (TimeoutSeconds) */
	char max_concurrency[STORE_CMD_RATE_SIZE];
	char max_errors[STORE_CMD_RATE_SIZE];
	char status[STORE_CMD_STATUS_SIZE];
	char status_details[STORE_CMD_DETAILS_SIZE];
	int target_count;
	int completed_count;
	int error_count;
	int delivery_timed_out_count;
	char *output_s3_bucket;
	char *output_s3_prefix;
	char *output_s3_region;
	char *service_role_arn;
	char *notification_json;      /* NotificationConfig as given, or NULL */
	char *cloudwatch_json;        /* CloudWatchOutputConfig as given, or NULL */
};

/* One target of a command. plugins_json holds the steps as
 * ListCommandInvocations --details shows them (a JSON array of
 * CommandPlugin objects: Name, Status, StatusDetails, ResponseCode,
 * ResponseStartDateTime, ResponseFinishDateTime (ms), Output,
 * StandardOutputUrl, StandardErrorUrl, OutputS3BucketName, ...). */
struct invocation_rec {
	char command_id[STORE_COMMAND_ID_SIZE];
	char instance_id[64];
	char *instance_name;          /* the computer name at SendCommand */
	int seq;                      /* target order: delivery order */
	char status[STORE_CMD_STATUS_SIZE];
	char status_details[STORE_CMD_DETAILS_SIZE];
	int64_t requested_ms;
	int64_t delivered_ms;         /* agent_job_ack received; 0: not yet */
	int64_t started_ms;           /* first step started; 0: not yet */
	int64_t ended_ms;             /* final; 0: not yet */
	int response_code;            /* -1 until the command ended */
	char *stdout_text;            /* first 24,000 characters */
	char *stderr_text;            /* first 8,000 characters */
	char *stdout_url;             /* the whole output in the bucket, or NULL */
	char *stderr_url;
	char *plugins_json;           /* "[]" until a step reported */
};

void command_rec_clear(struct command_rec *c);
void invocation_rec_clear(struct invocation_rec *v);

/* Insert a command and its n invocations in one transaction. */
int store_command_create(struct store *st, const struct command_rec *c,
    const struct invocation_rec *inv, size_t n);
/* PH_ERR_NOTFOUND if unknown. */
int store_command_get(struct store *st, const char *command_id,
    struct command_rec *out);
/* Write status, status_details and the four counts. */
int store_command_set_status(struct store *st, const struct command_rec *c);

/* Commands newest first (requested_ms, then command_id), optionally only
 * those with an invocation on instance_id, requested_ms in
 * [after_ms, before_ms) (0: unbounded) and status (NULL: any). At most
 * limit rows after skipping offset; fn returns non-zero to stop. */
struct command_query {
	const char *command_id;       /* NULL: any */
	const char *instance_id;      /* NULL: any */
	const char *status;           /* NULL: any */
	const char *document_name;    /* NULL: any */
	int64_t after_ms, before_ms;
	size_t offset, limit;
};
int store_command_query(struct store *st, const struct command_query *q,
    int (*fn)(void *arg, const struct command_rec *c), void *arg);

/* PH_ERR_NOTFOUND if unknown. */
int store_invocation_get(struct store *st, const char *command_id,
    const char *instance_id, struct invocation_rec *out);
/* Write every field but the keys, instance_name, seq and requested_ms. */
int store_invocation_update(struct store *st, const struct invocation_rec *v);
/* A command's invocations in seq order (instance_id NULL) or one
 * instance's invocations newest first (command_id NULL), or one exact
 * pair; offset/limit as above. */
int store_invocation_query(struct store *st, const char *command_id,
    const char *instance_id, size_t offset, size_t limit,
    int (*fn)(void *arg, const struct invocation_rec *v), void *arg);

/* Commands whose status is not final (Pending, InProgress, Cancelling),
 * oldest first: what the dispatcher still has to drive, also after a
 * restart. */
int store_command_foreach_active(struct store *st,
    int (*fn)(void *arg, const struct command_rec *c), void *arg);

/* SendCommand's AlarmConfiguration (JSON text as given, NULL: none),
 * kept beside the command: the command record has no field for it. */
int store_command_set_alarm(struct store *st, const char *command_id,
    const char *alarm_json);
/* *out: a new string, or NULL if the command has none. PH_ERR_NOTFOUND
 * if the command is unknown. */
int store_command_get_alarm(struct store *st, const char *command_id,
    char **out);

#endif
