/* register: POST /v1/register, agent enrolment with an activation code.
 * Not SigV4-signed: the activation code is the credential (docs/decisions.md
 * "Registration is its own endpoint"). The agent sends its CSR; it gets an
 * instance id and a client certificate whose subject CN is that id. */
#ifndef PORTHOLE_REGISTER_H
#define PORTHOLE_REGISTER_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct server;
struct http_request;

#define REGISTER_BODY_MAX ((size_t)64 << 10)
#define REGISTER_CODE_MAX 250      /* AWS ActivationCode: 20..250 */
#define REGISTER_NAME_MAX 256      /* characters */
#define REGISTER_HOSTNAME_MAX 255

/* The whole exchange without HTTP: validates body, registers through the
 * store, signs the certificate. Sets *status (200, 400, 500) and fills
 * resp (its own limit is raised to fit) with the JSON answer: on 200
 * {"InstanceId","Certificate","CaCertificate","Region"}, otherwise
 * {"__type","message"}. peer is for the log only (may be NULL). Returns 0
 * once a response is in resp, or a PH_ERR_* if even that failed. */
int register_process(struct server *srv, const uint8_t *body, size_t len,
    int64_t now_ms, const char *peer, int *status, struct buf *resp);

/* POST /v1/register. */
void register_handle(struct server *srv, struct http_request *req);

#endif
