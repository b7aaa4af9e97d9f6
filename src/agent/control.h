/* control: the agent's one permanent connection, the control channel
 * (spec 2.3, 8): dialled out with mutual TLS, reconnected forever with
 * back-off, it starts and ends sessions and carries their results. */
#ifndef PORTHOLE_AGENT_CONTROL_H
#define PORTHOLE_AGENT_CONTROL_H

#include <stdint.h>

#include <uv.h>

#include "agent/record_upload.h"
#include "agent/state.h"
#include "common/tls.h"

struct agent_control;

/* tls is the client context built from the state directory (borrowed,
 * like st; both must outlive the control channel). */
int agent_control_new(struct agent_control **out, uv_loop_t *loop,
    struct tls_ctx *tls, const struct agent_state *st);
/* Sessions' records go to u (record_upload.h; borrowed, outlives c). */
void agent_control_set_recorder(struct agent_control *c,
    struct rec_uploader *u);
struct runcommand;
/* Run Command (runcommand.h) gets agent_job frames and channel-up
 * notices; NULL detaches it (it stopped). Borrowed. */
void agent_control_set_runcommand(struct agent_control *c,
    struct runcommand *rc);
/* runcommand_send_fn for runcommand_new: ud is the agent_control. */
int agent_control_send_frame(void *ud, const char *type,
    const char *payload, uint8_t message_id[16]);
/* Dial now (and keep redialling). */
void agent_control_start(struct agent_control *c);
/* SIGTERM: end every session cleanly, report them, close the channel and
 * release every handle; on_stopped(arg) runs when all is closed (c is
 * freed by then), or after a few seconds if something hangs (c stays
 * allocated; the caller stops the loop and exits). */
void agent_control_shutdown(struct agent_control *c,
    void (*on_stopped)(void *arg), void *arg);

#endif
