/* register: POST /v1/register, agent enrolment with an activation code. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/http.h"
#include "common/log.h"
#include "server/api_json.h"
#include "server/pki.h"
#include "server/register.h"
#include "server/server.h"
#include "server/store.h"

#define REGISTER_RESP_MAX ((size_t)64 << 10)

struct reg_fields {
	const char *activation_id;
	const char *code;
	const char *csr;
	size_t csr_len;
	const char *name;       /* NULL if absent */
	const char *hostname;   /* NULL if absent */
};

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
is_uuid(const char *s, size_t len)
{
	size_t i;

	if (len != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return 0;
		} else if (!((c >= '0' && c <= '9') ||
		    (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return 0;
	}
	return 1;
}

/* Printable ASCII, no spaces. */
static int
is_token(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return 0;
	return 1;
}

/* UTF-8 (jansson has checked it) without control characters; counts
 * characters, not bytes. */
static int
is_text(const char *s, size_t len, size_t max_chars)
{
	size_t i, chars = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return 0;
		if ((c & 0xc0) != 0x80)
			chars++;
	}
	return chars <= max_chars;
}

/* Optional string member: absent or null is NULL; anything else but a
 * string is an error. */
static int
opt_string(json_t *o, const char *key, const char **out, size_t *len)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	*len = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return PH_ERR_INVALID;
	*out = json_string_value(v);
	*len = json_string_length(v);
	return 0;
}

/* Check every field; on failure the message for the client is in msg. */
static int
parse_fields(json_t *o, struct reg_fields *f, const char **type,
    char *msg, size_t msgsz)
{
	size_t n;

	*type = "ValidationException";
	if (!json_is_object(o)) {
		snprintf(msg, msgsz, "The request body must be a JSON object");
		return PH_ERR_INVALID;
	}
	if (opt_string(o, "ActivationId", &f->activation_id, &n) != 0 ||
	    f->activation_id == NULL) {
		snprintf(msg, msgsz, "ActivationId is required and must be a "
		    "string");
		return PH_ERR_INVALID;
	}
	if (!is_uuid(f->activation_id, n)) {
		*type = "InvalidActivationId";
		snprintf(msg, msgsz, "ActivationId must be a UUID such as "
		    "01234567-89ab-cdef-0123-456789abcdef");
		return PH_ERR_INVALID;
	}
	if (opt_string(o, "ActivationCode", &f->code, &n) != 0 ||
	    f->code == NULL) {
		snprintf(msg, msgsz, "ActivationCode is required and must be "
		    "a string");
		return PH_ERR_INVALID;
	}
	if (n == 0 || n > REGISTER_CODE_MAX || !is_token(f->code, n)) {
		snprintf(msg, msgsz, "ActivationCode must be 1 to %d printable "
		    "characters without spaces", REGISTER_CODE_MAX);
		return PH_ERR_INVALID;
	}
	if (opt_string(o, "Csr", &f->csr, &f->csr_len) != 0 ||
	    f->csr == NULL) {
		snprintf(msg, msgsz, "Csr is required and must be a string "
		    "holding a PEM certificate request");
		return PH_ERR_INVALID;
	}
	if (f->csr_len > PKI_CSR_PEM_MAX) {
		snprintf(msg, msgsz, "Csr is larger than %zu bytes",
		    PKI_CSR_PEM_MAX);
		return PH_ERR_INVALID;
	}
	if (opt_string(o, "Name", &f->name, &n) != 0 ||
	    (f->name != NULL && !is_text(f->name, n, REGISTER_NAME_MAX))) {
		snprintf(msg, msgsz, "Name must be a string of at most %d "
		    "characters without control characters",
		    REGISTER_NAME_MAX);
		return PH_ERR_INVALID;
	}
	if (opt_string(o, "Hostname", &f->hostname, &n) != 0 ||
	    (f->hostname != NULL && (n > REGISTER_HOSTNAME_MAX ||
	    !is_token(f->hostname, n)))) {
		snprintf(msg, msgsz, "Hostname must be a string of at most %d "
		    "printable characters without spaces",
		    REGISTER_HOSTNAME_MAX);
		return PH_ERR_INVALID;
	}
	return 0;
}

static const char *
activation_message(int rc)
{
	switch (rc) {
	case PH_ERR_DENIED:
		return "Activation code is not valid for this activation id";
	case PH_ERR_EXPIRED:
		return "Activation has expired";
	case PH_ERR_TOOBIG:
		return "Activation registration limit reached";
	}
	return "The registration could not be stored";
}

static int
success_json(struct buf *resp, const char *instance_id, const char *cert,
    const char *ca, const char *region)
{
	json_t *o;
	char *s;
	int rc;

	buf_reset(resp);
	o = json_pack("{s:s, s:s, s:s, s:s}", "InstanceId", instance_id,
	    "Certificate", cert, "CaCertificate", ca, "Region", region);
	if (o == NULL)
		return PH_ERR_NOMEM;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		return PH_ERR_NOMEM;
	rc = buf_append_str(resp, s);
	free(s);
	return rc;
}

int
register_process(struct server *srv, const uint8_t *body, size_t len,
    int64_t now_ms, const char *peer, int *status, struct buf *resp)
{
	char msg[256], instance_id[21], role[STORE_IAM_ROLE_SIZE];
	char fp[PKI_FINGERPRINT_SIZE], serial[PKI_SERIAL_SIZE];
	char *cert_pem = NULL, *ca_pem = NULL;
	struct reg_fields f;
	json_error_t jerr;
	const char *type;
	json_t *o = NULL;
	X509_REQ *req = NULL;
	X509 *ca = NULL, *cert = NULL;
	EVP_PKEY *ca_key = NULL;
	int rc, src;

	memset(&f, 0, sizeof(f));
	if (peer == NULL)
		peer = "-";
	if (resp->max < REGISTER_RESP_MAX)
		resp->max = REGISTER_RESP_MAX;
	if (len > REGISTER_BODY_MAX) {
		rc = api_json_error_body(resp, status, 400, "ValidationException",
		    "The request body is larger than 65536 bytes");
		goto done;
	}
	/* No NUL escapes (jansson's default), no duplicate keys. */
	o = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL) {
		rc = api_json_error_body(resp, status, 400, "ValidationException",
		    "The request body is not valid JSON");
		goto done;
	}
	if (parse_fields(o, &f, &type, msg, sizeof(msg)) != 0) {
		rc = api_json_error_body(resp, status, 400, type, msg);
		goto done;
	}
	/* Check the CSR before the store counts a registration. */
	if (pki_csr_parse(f.csr, f.csr_len, &req, msg, sizeof(msg)) != 0) {
		log_info("event=register_refused peer=%s activation=%s "
		    "reason=\"%s\"", peer, f.activation_id, msg);
		rc = api_json_error_body(resp, status, 400, "ValidationException", msg);
		goto done;
	}
	if (pki_load_ca(srv->data_dir, &ca_key, &ca) != 0 ||
	    pki_cert_pem(ca, &ca_pem, NULL) != 0) {
		rc = api_json_error_body(resp, status, 500, "InternalServerError",
		    "The server cannot issue certificates");
		goto done;
	}

	src = store_activation_register(srv->store, f.activation_id, f.code,
	    now_ms, f.name, NULL, instance_id, role);
	if (src != 0) {
		log_info("event=register_refused peer=%s activation=%s "
		    "error=%s", peer, f.activation_id, ph_strerror(src));
		if (src == PH_ERR_DENIED || src == PH_ERR_EXPIRED ||
		    src == PH_ERR_TOOBIG)
			rc = api_json_error_body(resp, status, 400,
			    store_activation_error_type(src),
			    activation_message(src));
		else
			rc = api_json_error_body(resp, status, 500,
			    "InternalServerError", activation_message(src));
		goto done;
	}

	if (pki_client_cert_issue(ca_key, ca, req, instance_id, &cert) != 0 ||
	    pki_cert_fingerprint(cert, fp) != 0 ||
	    pki_cert_serial(cert, serial) != 0 ||
	    pki_cert_pem(cert, &cert_pem, NULL) != 0 ||
	    store_instance_set_cert(srv->store, instance_id, serial,
	    fp) != 0) {
		/* No certificate, no usable instance: take it back. */
		log_error("event=register_failed peer=%s instance=%s "
		    "reason=issue_certificate", peer, instance_id);
		store_instance_deregister(srv->store, instance_id, now_ms);
		rc = api_json_error_body(resp, status, 500, "InternalServerError",
		    "The certificate could not be issued");
		goto done;
	}
	log_info("event=register instance=%s activation=%s peer=%s "
	    "hostname=%s role=%s cert_sha256=%s", instance_id,
	    f.activation_id, peer, f.hostname != NULL ? f.hostname : "-",
	    role, fp);
	*status = 200;
	rc = success_json(resp, instance_id, cert_pem, ca_pem, srv->region);
done:
	free(cert_pem);
	free(ca_pem);
	X509_free(cert);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	X509_REQ_free(req);
	json_decref(o);
	return rc;
}

void
register_handle(struct server *srv, struct http_request *req)
{
	struct buf resp;
	const char *peer;
	int status = 500, rc;

	buf_init(&resp, REGISTER_RESP_MAX);
	peer = req->conn != NULL ? conn_peer_addr(req->conn) : NULL;
	rc = register_process(srv, req->body, req->body_len, wall_ms(), peer,
	    &status, &resp);
	if (rc != 0) {
		static const char oom[] = "{\"__type\":\"InternalServerError\","
		    "\"message\":\"Out of memory\"}";

		http_respond(req, 500, "application/x-amz-json-1.1", NULL, oom,
		    sizeof(oom) - 1);
	} else
		http_respond(req, status, status == 200 ? "application/json" :
		    "application/x-amz-json-1.1", NULL, resp.data, resp.len);
	buf_free(&resp);
}
