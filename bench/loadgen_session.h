/* loadgen_session: the StartSession -> first output byte cycles of
 * porthole-loadgen's session mode. The connected fake agents named with
 * lg_sess_agent_add answer interactive_shell by opening their data channel
 * and writing one output byte; the client side signs StartSession as
 * admin, opens the client data channel with the token, waits for that
 * byte and calls TerminateSession. */
#ifndef PORTHOLE_BENCH_LOADGEN_SESSION_H
#define PORTHOLE_BENCH_LOADGEN_SESSION_H

#include <jansson.h>
#include <uv.h>

#include "bench/loadgen.h"
#include "common/clientmsg.h"
#include "common/tls.h"
#include "common/ws.h"

struct lg_sessions;
struct lg_sess_agent;

/* admin is copied; ws_base is "wss://host:port". */
int lg_sess_new(struct lg_sessions **out, uv_loop_t *loop,
    const struct lg_admin *admin, const char *ws_base, char *err,
    size_t errlen);
/* An agent with an open control channel takes part (tls is its client
 * context, borrowed). NULL on failure. */
struct lg_sess_agent *lg_sess_agent_add(struct lg_sessions *s,
    const char *instance_id, struct tls_ctx *tls);
/* A frame that agent's control channel received. */
void lg_sess_control_message(struct lg_sessions *s, struct lg_sess_agent *a,
    struct ws *ctl, const struct clientmsg *m);
/* Run cycles on every added agent for seconds, then stop and call done. */
void lg_sess_run(struct lg_sessions *s, unsigned seconds,
    void (*done)(void *), void *arg);
/* Stop starting cycles and close every data channel. */
void lg_sess_stop(struct lg_sessions *s);
/* Add the figures ("session_cycles", "sessions_per_second", ...) to out. */
void lg_sess_report(struct lg_sessions *s, json_t *out);
void lg_sess_free(struct lg_sessions *s);

#endif
