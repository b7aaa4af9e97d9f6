/* fuzz_agent_job: the agent's Run Command parsers (spec 8.3) on any bytes:
 * an agent_job payload (then its document's steps, preconditions,
 * timeouts and scripts, and a reply built over it with the input as the
 * steps' output), an agent_job_reply_ack payload, a stored reply file,
 * and the UTF-8 repair and truncation of output. Checks: every reply is
 * JSON whose content is at most 120,000 bytes, cut text stays within its
 * limit and is valid UTF-8. Input: one payload. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/cmdjob.h"
#include "agent/cmdstore.h"
#include "fuzzin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_text(const char *s, size_t max)
{
	json_t *v;

	if (s == NULL)
		return;
	if (strlen(s) > max)
		abort();
	/* jansson refuses invalid UTF-8. */
	v = json_string(s);
	if (v == NULL)
		abort();
	json_decref(v);
}

static void
check_reply(const char *js)
{
	json_t *o;
	const char *c;

	if (js == NULL)
		return;
	o = json_loads(js, 0, NULL);
	if (o == NULL)
		abort();
	c = json_string_value(json_object_get(o, "content"));
	if (c == NULL || strlen(c) > CMDJOB_CONTENT_MAX)
		abort();
	json_decref(o);
}

static void
job(const uint8_t *data, size_t size)
{
	struct cmdjob_result r[CMDJOB_STEPS_MAX];
	struct cmdjob_reply_info info;
	struct cmdstep *steps;
	struct cmdjob j;
	char err[256], msg[2048], *script, *js;
	size_t n, i;
	int ack;

	if (cmdjob_parse(&j, data, size, &ack, err, sizeof(err)) != 0) {
		if (ack == CMDJOB_ACK_OK)
			abort();
		return;
	}
	if (j.kind == CMDJOB_SEND) {
		if (!cmdjob_valid_command_id(j.command_id) ||
		    cmdjob_steps(j.doc, &steps, &n, err, sizeof(err)) != 0)
			abort(); /* parse checked both */
		memset(r, 0, sizeof(r));
		for (i = 0; i < n; i++) {
			(void)cmdjob_step_op(&steps[i], msg, sizeof(msg));
			if (cmdjob_timeout(steps[i].inputs) < 5)
				abort();
			script = cmdjob_script(steps[i].inputs, 1 << 16);
			free(script);
			r[i].name = steps[i].name;
			r[i].plugin = steps[i].action;
			r[i].status = i % 2 ? "Failed" : "Success";
			r[i].out = (const char *)data;
			r[i].out_len = size;
			r[i].err = (const char *)data + size / 2;
			r[i].err_len = size - size / 2;
			r[i].message = i % 3 == 2 ? msg : NULL;
		}
		memset(&info, 0, sizeof(info));
		info.job_id = j.job_id;
		info.doc_status = cmdjob_doc_status(r, n);
		info.bucket = j.bucket;
		info.prefix = j.prefix;
		info.command_id = j.command_id;
		info.instance_id = "mi-0123456789abcdef0";
		js = cmdjob_reply(&info, r, n);
		if (js == NULL)
			abort();
		check_reply(js);
		free(js);
		cmdjob_steps_free(steps, n);
	}
	cmdjob_free(&j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmdstore_reply sr;
	char job_id[64], *t, *a, *b, comb[CMDJOB_OUTPUT_MAX + 1];
	uint8_t id[16];

	job(data, size);
	(void)cmdjob_parse_reply_ack(data, size, id, job_id, sizeof(job_id));
	if (cmdstore_reply_parse((const char *)data, size, &sr) == 0)
		free(sr.payload);
	t = cmdjob_text((const char *)data, size, 100, "--cut--");
	check_text(t, 100);
	free(t);
	a = cmdjob_text((const char *)data, size / 2, 4000, NULL);
	b = cmdjob_text((const char *)data + size / 2, size - size / 2, 4000,
	    NULL);
	if (a != NULL && b != NULL) {
		cmdjob_combined_output(a, strlen(a), b, strlen(b),
		    CMDJOB_OUTPUT_MAX, comb);
		check_text(comb, CMDJOB_OUTPUT_MAX);
	}
	free(a);
	free(b);
	return 0;
}
