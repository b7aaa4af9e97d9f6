/* register: POST /v1/register, agent enrolment with an activation code. */
#include "common/http.h"
#include "server/register.h"
#include "server/server.h"

void
register_handle(struct server *srv, struct http_request *req)
{
	(void)srv;
	http_respond(req, 501, "application/json", NULL, "{}", 2);
}
