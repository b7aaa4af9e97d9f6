/* register: POST /v1/register, agent enrolment with an activation code. */
#ifndef PORTHOLE_REGISTER_H
#define PORTHOLE_REGISTER_H

struct server;
struct http_request;

void register_handle(struct server *srv, struct http_request *req);

#endif
