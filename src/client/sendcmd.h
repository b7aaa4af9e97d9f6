/* sendcmd: `porthole send-command`, Run Command's SendCommand with the
 * AWS CLI's options and, with --wait, a live progress line and the
 * per-instance results. */
#ifndef PORTHOLE_CLIENT_SENDCMD_H
#define PORTHOLE_CLIENT_SENDCMD_H

#include <stddef.h>

#include <jansson.h>

/* Exit statuses: 0 (every invocation Success, or sent without --wait),
 * 1 (an invocation did not succeed, or the wait ran out), 2 (bad
 * command line), 255 (an API call failed), as the AWS CLI uses them. */
#define CLIENT_SENDCMD_EXIT_FAILED 1
#define CLIENT_SENDCMD_EXIT_USAGE 2
#define CLIENT_SENDCMD_EXIT_API 255

/* SendCommand's limits (botocore's model). */
#define CLIENT_SENDCMD_MAX_INSTANCE_IDS 50
#define CLIENT_SENDCMD_MAX_TARGETS 5
#define CLIENT_SENDCMD_MAX_TARGET_VALUES 50
#define CLIENT_SENDCMD_TIMEOUT_MIN 30
#define CLIENT_SENDCMD_TIMEOUT_MAX 2592000
/* --wait gives up after this long unless --wait-seconds says otherwise. */
#define CLIENT_SENDCMD_WAIT_DEFAULT 3600
/* Lines of each step's output printed per instance. */
#define CLIENT_SENDCMD_OUTPUT_LINES 3

struct client_sendcmd_args {
	const char *document_name;
	const char *document_version;
	json_t *targets;            /* [{"Key","Values"}], or NULL */
	json_t *instance_ids;       /* ["mi-..."], or NULL */
	json_t *parameters;         /* {"name": ["value", ...]}, or NULL */
	const char *max_concurrency;
	const char *max_errors;
	const char *comment;
	long timeout_seconds;       /* 0: not given */
	int wait;
	long wait_seconds;
	const char *profile;
	const char *region;
	const char *endpoint;
	char err[512];
};

/* argv[0] is "send-command". 0, 1 for --help, -1 with a->err set. */
int client_sendcmd_parse(struct client_sendcmd_args *a, int argc,
    char **argv);
void client_sendcmd_args_free(struct client_sendcmd_args *a);

/* --targets: "Key=K,Values=V1,V2" (the CLI's shorthand) or a JSON list
 * of {"Key","Values"}, appended to targets. 0 or PH_ERR_INVALID. */
int client_sendcmd_add_targets(json_t *targets, const char *s, char *err,
    size_t errlen);
/* --parameters: a JSON object of name -> string or list of strings, or
 * "name=value" (one value, appended to that name's list: commas are kept,
 * commands have them). 0 or PH_ERR_INVALID. */
int client_sendcmd_add_parameters(json_t *params, const char *s, char *err,
    size_t errlen);
/* MaxConcurrency / MaxErrors as botocore's patterns allow them. */
int client_sendcmd_rate_valid(const char *s, int allow_zero);

/* The SendCommand request body (malloc'd JSON), NULL on no memory. */
char *client_sendcmd_body(const struct client_sendcmd_args *a);

/* "12 / 20 done, 2 failed (InProgress)". */
void client_sendcmd_progress(char *out, size_t size, long done, long total,
    long failed, const char *status);
/* One invocation of ListCommandInvocations (Details true) as text:
 * "INSTANCE  STATUS  code N\n" then up to CLIENT_SENDCMD_OUTPUT_LINES
 * lines of each step's output, indented; control characters become '?'.
 * Returns 1 if the invocation is Success. */
int client_sendcmd_format_result(json_t *inv, char *out, size_t size);

/* `porthole send-command ...`. */
int client_sendcmd_main(int argc, char **argv);

#endif
