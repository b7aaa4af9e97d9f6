/* api_stubs: what api_handle calls outside the API when no socket and no
 * agent is there: header lookup, the peer's address (loopback) and a
 * gateway with no instance online. Weak: real definitions win when
 * linked in. For the tests that drive api_handle (tests/CMakeLists.txt). */
#include <stddef.h>
#include <stdint.h>
#include <strings.h>

#include <jansson.h>

#include "common/err.h"
#include "common/http.h"
#include "server/gateway.h"

__attribute__((weak)) const char *
http_header(const struct http_request *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

__attribute__((weak)) const char *
conn_peer_addr(const struct conn *c)
{
	(void)c;
	return "127.0.0.1";
}

/* Run Command's dispatcher (linked through api_ssm) sends on the control
 * channel; no agent is connected here. */
__attribute__((weak)) int
gateway_send_control(struct gateway *gw, const char *instance_id,
    const char *type, const char *payload, uint8_t message_id[16])
{
	(void)gw;
	(void)instance_id;
	(void)type;
	(void)payload;
	(void)message_id;
	return PH_ERR_NOTFOUND;
}

__attribute__((weak)) int
gateway_instance_online(struct gateway *gw, const char *instance_id)
{
	(void)gw;
	(void)instance_id;
	return 0;
}

__attribute__((weak)) int
gateway_start_session(struct gateway *gw, const char *instance_id,
    const char *session_id, const char *document_name,
    json_t *document_content, json_t *parameters, const char *owner_arn,
    const char *run_as_user)
{
	(void)gw; (void)instance_id; (void)session_id; (void)document_name;
	(void)document_content; (void)parameters; (void)owner_arn;
	(void)run_as_user;
	return PH_ERR_NOTFOUND;
}

__attribute__((weak)) int
gateway_terminate_session(struct gateway *gw, const char *session_id,
    const char *reason)
{
	(void)gw; (void)session_id; (void)reason;
	return 0;
}

__attribute__((weak)) void
gateway_disconnect_instance(struct gateway *gw, const char *instance_id)
{
	(void)gw;
	(void)instance_id;
}
