/* cmdjob: the pure parts of Run Command on the agent (spec 8.3): parsing
 * agent_job and agent_job_reply_ack payloads (keys matched ignoring case,
 * spec 8.1), the steps of a Command document (schema 1.2/2.0 runtimeConfig,
 * 2.x mainSteps), step preconditions, and the agent_job_reply payload with
 * AWS's truncation of each step's output. No I/O: the fuzz harness and the
 * unit tests drive these directly. */
#ifndef PORTHOLE_AGENT_CMDJOB_H
#define PORTHOLE_AGENT_CMDJOB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define CMDJOB_TOPIC_SEND "aws.ssm.sendCommand"
#define CMDJOB_TOPIC_CANCEL "aws.ssm.cancelCommand"

/* agent_job_ack status codes (spec 8.3). */
#define CMDJOB_ACK_OK 200
#define CMDJOB_ACK_BUFFER_FULL 51402
#define CMDJOB_ACK_UNEXPECTED_TYPE 51403
#define CMDJOB_ACK_DUPLICATE 51405
#define CMDJOB_ACK_INVALID_DOCUMENT 51406
#define CMDJOB_ACK_PARSE_ERROR 51408

#define CMDJOB_ID_MAX 255        /* JobId */
#define CMDJOB_CMD_ID_MAX 64     /* CommandId: a path component */
#define CMDJOB_NAME_MAX 128      /* step names */
#define CMDJOB_STEPS_MAX 64
#define CMDJOB_BUCKET_MAX 255
#define CMDJOB_PREFIX_MAX 1024

/* Limits of the reply (spec 8.3). */
#define CMDJOB_OUTPUT_MAX 2500
#define CMDJOB_STDOUT_MAX 24000
#define CMDJOB_STDERR_MAX 8000
#define CMDJOB_CONTENT_MAX 120000

enum cmdjob_kind { CMDJOB_SEND = 1, CMDJOB_CANCEL = 2 };

struct cmdjob {
	enum cmdjob_kind kind;
	char job_id[CMDJOB_ID_MAX + 1];
	char topic[64];
	char command_id[CMDJOB_CMD_ID_MAX + 1];
	/* CMDJOB_CANCEL: the command to stop. */
	char cancel_command_id[CMDJOB_CMD_ID_MAX + 1];
	char document_name[CMDJOB_NAME_MAX + 1];
	char bucket[CMDJOB_BUCKET_MAX + 1];
	char prefix[CMDJOB_PREFIX_MAX + 1];
	json_t *doc;      /* DocumentContent (owned), NULL for a cancel */
	json_t *params;   /* Parameters (owned, an object) */
};

/* Parse an agent_job payload into j (zeroed first). On failure *ack is the
 * agent_job_ack code to answer with, err says why, and j->job_id holds
 * the JobId when it could be read. 0 or PH_ERR_INVALID. */
int cmdjob_parse(struct cmdjob *j, const uint8_t *p, size_t n, int *ack,
    char *err, size_t errlen);
void cmdjob_free(struct cmdjob *j);
/* The CommandId inside an MDS message id "aws.ssm.<CommandId>.<Instance>"
 * (the second-to-last dot component). */
int cmdjob_command_from_message_id(const char *mid, char *out, size_t len);
/* A CommandId usable as a directory name: 1..64 of [A-Za-z0-9_-]. */
int cmdjob_valid_command_id(const char *s);

/* Parse an agent_job_reply_ack payload: acknowledgedMessageId as bytes. */
int cmdjob_parse_reply_ack(const uint8_t *p, size_t n, uint8_t id[16],
    char *job_id, size_t job_id_len);

/* One step of a document. json members are borrowed from the document. */
struct cmdstep {
	char name[CMDJOB_NAME_MAX + 1];
	char action[CMDJOB_NAME_MAX + 1];
	json_t *inputs;        /* object (an empty one when absent) */
	json_t *precondition;  /* NULL when absent */
	int v22;               /* schema 2.2 or later: preconditions apply */
};

/* The steps of DocumentContent, in order. *steps is malloc'd (the inputs
 * objects it names are references owned by it: cmdjob_steps_free). */
int cmdjob_steps(json_t *doc, struct cmdstep **steps, size_t *n, char *err,
    size_t errlen);
void cmdjob_steps_free(struct cmdstep *steps, size_t n);

/* What to do with a step before running it (AWS's agent's rules). */
enum cmdjob_op { CMDJOB_RUN = 0, CMDJOB_SKIP = 1, CMDJOB_FAIL = 2 };
/* msg explains a skip or failure (it becomes the step's output). */
enum cmdjob_op cmdjob_step_op(const struct cmdstep *s, char *msg,
    size_t msglen);
/* Whether this agent runs action. */
int cmdjob_known_action(const char *action);

/* inputs.timeoutSeconds with AWS's rules: a number or a numeric string
 * from 5 to 172800, else 3600. */
unsigned cmdjob_timeout(const json_t *inputs);
/* inputs.runCommand (a string or nested lists of strings) as script
 * text, lines joined with '\n'. NULL when absent or of another type. */
char *cmdjob_script(const json_t *inputs, size_t max);

/* One step's result, for the reply. */
struct cmdjob_result {
	const char *name;       /* step name */
	const char *plugin;     /* action */
	const char *status;     /* Success, Failed, TimedOut, ... */
	int code;
	const char *out;        /* stdout (a prefix is enough) */
	size_t out_len;
	const char *err;        /* stderr */
	size_t err_len;
	const char *message;    /* replaces output when set (errors, skips) */
	uint64_t start_ms, end_ms;
};

struct cmdjob_reply_info {
	const char *job_id;
	const char *topic;
	const char *doc_status;
	const char *bucket, *prefix;
	const char *instance_id;
	const char *command_id;
	uint64_t now_ms;
};

/* The overall status from the steps' (AWS's precedence: Failed >
 * TimedOut > Cancelled > Success; Skipped counts as Success). */
const char *cmdjob_doc_status(const struct cmdjob_result *r, size_t n);
/* The agent_job_reply payload (malloc'd JSON text). Outputs are cut to
 * AWS's limits, and further when the content would exceed 120,000 bytes. */
char *cmdjob_reply(const struct cmdjob_reply_info *info,
    const struct cmdjob_result *r, size_t n);
/* AWS's `output`: stdout + "\n----------ERROR-------\n" + stderr in at
 * most cap bytes. Writes a NUL-terminated string to out (cap + 1). */
void cmdjob_combined_output(const char *out, size_t out_len, const char *err,
    size_t err_len, size_t cap, char *buf);
/* Copy n bytes of p to a NUL-terminated malloc'd string of valid UTF-8 (a
 * byte that does not start a valid sequence becomes U+FFFD), at most max
 * bytes, cutting at a character boundary and appending suffix when cut. */
char *cmdjob_text(const char *p, size_t n, size_t max, const char *suffix);

/* yyyy-MM-ddTHH:mm:ss.SSSZ */
void cmdjob_iso_time(uint64_t ms, char out[32]);

#endif
