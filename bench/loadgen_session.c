/* loadgen_session: not written yet; session mode reports nothing. */
#include <stdio.h>
#include <stdlib.h>

#include "bench/loadgen_session.h"
#include "common/err.h"

struct lg_sessions {
	int unused;
};

int
lg_sess_new(struct lg_sessions **out, uv_loop_t *loop,
    const struct lg_admin *admin, const char *ws_base, char *err,
    size_t errlen)
{
	*out = NULL;
	snprintf(err, errlen, "session mode is not implemented yet");
	return PH_ERR_STATE;
}

struct lg_sess_agent *
lg_sess_agent_add(struct lg_sessions *s, const char *instance_id,
    struct tls_ctx *tls)
{
	return NULL;
}

void
lg_sess_control_message(struct lg_sessions *s, struct lg_sess_agent *a,
    struct ws *ctl, const struct clientmsg *m)
{
}

void
lg_sess_run(struct lg_sessions *s, unsigned seconds, void (*done)(void *),
    void *arg)
{
	done(arg);
}

void
lg_sess_stop(struct lg_sessions *s)
{
}

void
lg_sess_report(struct lg_sessions *s, json_t *out)
{
}

void
lg_sess_free(struct lg_sessions *s)
{
	free(s);
}
