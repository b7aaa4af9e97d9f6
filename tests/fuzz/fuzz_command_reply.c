/* fuzz_command_reply: portholed's side of agent_job_reply (spec 8.3) on
 * any bytes: the SendReplyPayload content applied to an invocation
 * twice (the second merging into the steps of the first), the JobId
 * parser and the MaxConcurrency / MaxErrors rates. Checks: a refused
 * content leaves the invocation as it was; an accepted one leaves
 * plugins_json a JSON array, outputs within 24,000 / 8,000 characters
 * and valid UTF-8, and a final Status only with an end time. Input: one
 * content. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "server/commands.h"
#include "server/store_commands.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static void
check_text(const char *s, size_t max)
{
	json_t *v;

	if (s == NULL)
		return;
	if (chars(s) > max)
		abort();
	if ((v = json_string(s)) == NULL)   /* not UTF-8 */
		abort();
	json_decref(v);
}

static void
apply(struct invocation_rec *v, const char *text, size_t n)
{
	char before[STORE_CMD_STATUS_SIZE];
	json_error_t jerr;
	json_t *a;
	int rc;

	memcpy(before, v->status, sizeof(before));
	rc = commands_apply_reply(v, NULL, text, n, 1000);
	if (rc != 0) {
		if (strcmp(before, v->status) != 0)
			abort();
		return;
	}
	a = json_loads(v->plugins_json, 0, &jerr);
	if (!json_is_array(a))
		abort();
	json_decref(a);
	check_text(v->stdout_text, 24000);
	check_text(v->stderr_text, 8000);
	if (commands_status_final(v->status) && v->ended_ms == 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char cmd[STORE_COMMAND_ID_SIZE], inst[64], *text;
	struct invocation_rec v;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&v, 0, sizeof(v));
	memcpy(v.status, "InProgress", sizeof("InProgress"));
	v.response_code = -1;
	v.plugins_json = strdup("[]");
	apply(&v, text, size);
	apply(&v, text, size);
	invocation_rec_clear(&v);
	(void)commands_parse_job_id(text, cmd, inst);
	(void)commands_rate_value(text, (int)(size % 2000), (int)(size & 1));
	free(text);
	return 0;
}
