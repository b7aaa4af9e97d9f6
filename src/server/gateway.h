/* gateway: the control channel of every connected agent and the pairing of
 * client and agent data channels, relaying session frames between them
 * without reading their payloads (spec sections 2, 3.5, 8). */
#ifndef PORTHOLE_GATEWAY_H
#define PORTHOLE_GATEWAY_H

#include <stdint.h>

#include <jansson.h>

#include "common/http.h"
#include "server/server.h"

struct gateway;

int gateway_new(struct gateway **out, struct server *srv);
void gateway_free(struct gateway *gw);

/* A WebSocket upgrade for /v1/control-channel/<id> or /v1/data-channel/<id>. */
void gateway_handle_upgrade(struct gateway *gw, struct http_request *req);

/* True if the instance's agent has an open control channel on this node. */
int gateway_instance_online(struct gateway *gw, const char *instance_id);

/* Ask the agent to start a session (interactive_shell, spec 8.2). The
 * document content and parameters are borrowed. PH_ERR_NOTFOUND if the
 * agent is not connected. */
int gateway_start_session(struct gateway *gw, const char *instance_id,
    const char *session_id, const char *document_name,
    json_t *document_content, json_t *parameters, const char *owner_arn,
    const char *run_as_user);

/* Send one frame of type (spec 3.3, e.g. agent_job) with a JSON payload
 * on the instance's control channel; its MessageId is written to
 * message_id if not NULL. PH_ERR_NOTFOUND if the agent is not connected
 * to this node. */
int gateway_send_control(struct gateway *gw, const char *instance_id,
    const char *type, const char *payload, uint8_t message_id[16]);

/* End a session: channel_closed to the agent (control and data channel)
 * and to the client; the session record goes to Terminated. */
int gateway_terminate_session(struct gateway *gw, const char *session_id,
    const char *reason);

/* Close the control channel of a deregistered instance. */
void gateway_disconnect_instance(struct gateway *gw, const char *instance_id);

/* Stop: close every channel. Without drain (SIGTERM) sessions end
 * Terminated and both ends are told; with drain (SIGUSR2, a node leaving
 * for a restart or upgrade) data channels get a normal close without
 * channel_closed and the sessions stay open for the next portholed. */
void gateway_shutdown(struct gateway *gw, int drain);

#endif
