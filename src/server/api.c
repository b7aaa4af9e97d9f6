/* api: stub while the API is being written. */
#include "server/api.h"

void
api_handle(struct server *srv, struct http_request *req)
{
	(void)srv;
	(void)req;
}
