/* api: the HTTPS entry point of the AWS-compatible services. Every request
 * is SigV4-verified against the store's access keys; the signing scope's
 * service and the X-Amz-Target header pick the dispatcher; the answer is
 * AWS JSON 1.1 with an x-amzn-RequestId header, errors as
 * {"__type": ..., "message": ...}. Every call, whatever its outcome, gets
 * one log line and one event in the audit trail (audit.h). */
#include "server/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "common/log.h"
#include "common/sigv4.h"
#include "common/uuid.h"
#include "server/api_cloudtrail.h"
#include "server/api_iam.h"
#include "server/api_json.h"
#include "server/api_kms.h"
#include "server/api_query.h"
#include "server/api_ssm.h"
#include "server/api_sts.h"
#include "server/audit.h"
#include "server/authz.h"
#include "server/instance_principal.h"
#include "server/store.h"
#include "server/store_iam.h"

#define API_CONTENT_TYPE "application/x-amz-json-1.1"

/* JSON 1.1 services: signing name, X-Amz-Target prefix, dispatcher. IAM
 * and STS speak the query protocol and get their own branch in
 * api_handle. */
static const struct {
	const char *service;
	const char *target_prefix;
	api_json_dispatch_fn dispatch;
} api_json_services[] = {
	{ "ssm", "AmazonSSM.", api_ssm_dispatch },
	{ "kms", "TrentService.", api_kms_dispatch },
	{ "cloudtrail", API_CLOUDTRAIL_TARGET_PREFIX,
	    api_cloudtrail_dispatch },
};

/* Query-protocol services (form-encoded POST, XML answers): signing
 * name, XML namespace, dispatcher. */
static const struct {
	const char *service;
	const char *ns;
	api_query_dispatch_fn dispatch;
} api_query_services[] = {
	{ "iam", API_IAM_NAMESPACE, api_iam_dispatch },
	{ "sts", API_STS_NAMESPACE, api_sts_dispatch },
};

#define API_KMS_PREFIX "TrentService."
#define API_FORM_TYPE "application/x-www-form-urlencoded"
#define API_XML_TYPE "text/xml"

struct api_lookup {
	struct server *srv;
	struct store *st;
	struct principal p;
	int found;
	int temporary;        /* an STS key id: the principal comes later */
};

static int
api_secret_cb(void *arg, const char *akid, char *secret, size_t size)
{
	struct api_lookup *l = arg;
	int rc;

	if (api_sts_temporary(akid)) {
		l->temporary = 1;
		rc = api_sts_secret(l->srv, akid, secret, size);
		l->found = rc == 0;
		return rc;
	}
	rc = store_iam_lookup_key(l->st, akid, secret, size, &l->p);
	if (rc == 0)
		l->found = 1;
	else if (rc != PH_ERR_DENIED)
		rc = PH_ERR_NOTFOUND;
	return rc;
}

/* A request with no Authorization header, over a connection whose client
 * certificate names an active managed instance, for one of the KMS
 * actions an agent needs (Decrypt for encrypted sessions): the caller is
 * the instance acting as the role of its activation, as AWS's instance
 * credentials are "arn:aws:sts::ACCOUNT:assumed-role/ROLE/INSTANCE".
 * 1 and p filled, or 0 (the request goes through SigV4 as any other). */
static int
api_instance_principal(struct server *srv, struct http_request *req,
    struct principal *p)
{
	const char *target, *cn;

	if (http_header(req, "Authorization") != NULL || req->conn == NULL)
		return 0;
	target = http_header(req, "X-Amz-Target");
	if (target == NULL || strncmp(target, API_KMS_PREFIX,
	    sizeof(API_KMS_PREFIX) - 1) != 0 ||
	    !api_kms_instance_action(target + sizeof(API_KMS_PREFIX) - 1))
		return 0;
	cn = conn_peer_cn(req->conn);
	if (cn == NULL || !api_pat_managed_instance(cn))
		return 0;
	return instance_principal(srv, cn, conn_peer_addr(req->conn), p) == 0;
}

/* Wipe the KMS "Plaintext" member of a request or answer before the JSON
 * library frees it. */
static void
api_wipe_plaintext(json_t *o)
{
	json_t *v = json_object_get(o, "Plaintext");

	if (json_is_string(v))
		OPENSSL_cleanse((char *)json_string_value(v),
		    json_string_length(v));
}

static int64_t
api_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The session token of a verified request: temporary credentials need
 * the one issued with them (and the role session becomes the principal);
 * long-term keys take none. 0, or PH_ERR_DENIED with err as AWS answers
 * (Query services word it differently from JSON ones). */
static int
api_session_token(struct server *srv, struct http_request *req,
    const struct sigv4_identity *id, struct api_lookup *look,
    struct api_error *err)
{
	const char *token = http_header(req, "X-Amz-Security-Token");
	int query = strcmp(id->service, "sts") == 0 ||
	    strcmp(id->service, "iam") == 0;
	int rc;

	if (look->temporary)
		rc = api_sts_principal(srv, id->access_key_id, token,
		    api_now_ms(), &look->p);
	else
		rc = token != NULL ? PH_ERR_DENIED : 0;
	if (rc == 0)
		return 0;
	if (rc == PH_ERR_EXPIRED)
		api_error_set(err, query ? 403 : 400, query ?
		    API_STS_EXPIRED_CODE : API_STS_EXPIRED_TYPE, "%s",
		    API_STS_EXPIRED_MESSAGE);
	else if (rc == PH_ERR_DENIED)
		api_error_set(err, 403, query ? API_STS_INVALID_CODE :
		    API_STS_INVALID_TYPE, "%s", API_STS_INVALID_MESSAGE);
	else
		api_error_internal(err, "session_token", rc);
	return PH_ERR_DENIED;
}

static void
api_respond_json(struct http_request *req, int status, json_t *body,
    const char *request_id)
{
	char hdr[96];
	char *text;

	snprintf(hdr, sizeof(hdr), "x-amzn-RequestId: %s\r\n", request_id);
	/* 15 digits keep millisecond timestamps exact and short. */
	text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (text == NULL) {
		static const char fallback[] =
		    "{\"__type\":\"InternalServerError\","
		    "\"message\":\"An internal error occurred.\"}";

		http_respond(req, 500, API_CONTENT_TYPE, hdr, fallback,
		    sizeof(fallback) - 1);
		return;
	}
	http_respond(req, status, API_CONTENT_TYPE, hdr, text, strlen(text));
	/* Answers may carry KMS plaintexts and data keys. */
	OPENSSL_cleanse(text, strlen(text));
	free(text);
}

static void
api_respond_error(struct http_request *req, const struct api_error *err,
    const char *request_id)
{
	json_t *o = json_pack("{s:s, s:s}", "__type", err->type, "message",
	    err->message);

	api_respond_json(req, err->status, o, request_id);
	json_decref(o);
}

/* botocore sends Query requests (IAM, STS) as a form. */
static int
api_is_form(struct http_request *req)
{
	const char *ct = http_header(req, "Content-Type");

	return ct != NULL && strncasecmp(ct, API_FORM_TYPE,
	    sizeof(API_FORM_TYPE) - 1) == 0;
}

/* The index of the Query service signed for, or -1. */
static int
api_query_service(const char *service)
{
	size_t i;

	for (i = 0; i < sizeof(api_query_services) /
	    sizeof(api_query_services[0]); i++)
		if (strcmp(service, api_query_services[i].service) == 0)
			return (int)i;
	return -1;
}

static void
api_respond_query_error(struct http_request *req, const char *ns,
    const struct api_error *err, const char *request_id)
{
	char hdr[96];
	char *xml = NULL;
	size_t len;
	int status;

	snprintf(hdr, sizeof(hdr), "x-amzn-RequestId: %s\r\n", request_id);
	if (api_query_error_xml(ns, err, request_id, &xml, &len,
	    &status) != 0) {
		static const char fallback[] =
		    "<ErrorResponse><Error><Type>Receiver</Type>"
		    "<Code>ServiceFailure</Code></Error></ErrorResponse>";

		http_respond(req, 500, API_XML_TYPE, hdr, fallback,
		    sizeof(fallback) - 1);
		return;
	}
	http_respond(req, status, API_XML_TYPE, hdr, xml, len);
	free(xml);
}

/* The call's name when it failed before its dispatcher knew it: a JSON
 * service's X-Amz-Target after the last '.', a Query service's Action
 * (the audit trail cleans either). */
static void
api_guess_action(struct http_request *req, int query, char *action,
    size_t size)
{
	const char *target = http_header(req, "X-Amz-Target"), *dot, *a;
	struct api_form *f;

	if (strcmp(action, "-") != 0)
		return;
	if (query) {
		if (api_form_parse((const char *)req->body, req->body_len,
		    &f) != 0)
			return;
		if ((a = api_form_get(f, "Action")) != NULL)
			snprintf(action, size, "%s", a);
		api_form_free(f);
		return;
	}
	if (target == NULL)
		return;
	dot = strrchr(target, '.');
	snprintf(action, size, "%s", dot != NULL ? dot + 1 : target);
}

/* The log line and the audit event of one call. p NULL: not
 * authenticated (the event names the access key the request claimed, and
 * not its parameters: an unauthenticated body is not worth parsing). in,
 * out: a JSON service's request and answer; a Query service's request is
 * its form body. */
static void
api_audit(struct server *srv, struct http_request *req,
    const char *request_id, const char *service, const char *region,
    const char *action, const struct principal *p, const char *peer,
    int status, const struct api_error *err, int query, const json_t *in,
    const json_t *out, const char *xml, size_t xml_len)
{
	char akid[129], claimed[64];
	struct audit_event ev;

	log_info("event=api request_id=%s service=%s action=%s principal=%s "
	    "peer=%s status=%d%s%s", request_id, service, action,
	    p != NULL && p->arn[0] != '\0' ? p->arn : "-",
	    peer != NULL ? peer : "-", status, err ? " error=" : "",
	    err ? err->type : "");
	if (srv->audit == NULL)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.service = service;
	if (p == NULL && audit_claimed_credential(http_header(req,
	    "Authorization"), akid, sizeof(akid), claimed,
	    sizeof(claimed)) == 0) {
		ev.access_key_id = akid;
		if (strcmp(service, "-") == 0 && claimed[0] != '\0')
			ev.service = claimed;
	}
	ev.name = action;
	ev.region = region != NULL && region[0] != '\0' ? region :
	    srv->region;
	ev.account_id = srv->account_id;
	ev.source_ip = peer;
	ev.user_agent = http_header(req, "User-Agent");
	ev.principal = p;
	if (p != NULL && query) {
		ev.form = req->body;
		ev.form_len = req->body_len;
	} else if (p != NULL)
		ev.request = in;
	ev.response = out;
	ev.response_xml = xml;
	ev.response_xml_len = xml_len;
	if (err != NULL) {
		/* The code the caller saw. */
		ev.error_code = query ? api_query_error_code(err->type) :
		    err->type;
		ev.error_message = err->message;
	}
	ev.request_id = request_id;
	(void)audit_record(srv->audit, &ev);
}

void
api_handle(struct server *srv, struct http_request *req)
{
	char request_id[UUID_STR_LEN], action[128];
	struct sigv4_request sreq;
	struct sigv4_identity id;
	struct sigv4_error serr;
	struct api_lookup look;
	struct api_error err;
	struct api_call call;
	const char *target, *peer;
	json_t *in = NULL, *out = NULL;
	json_error_t jerr;
	size_t i, plen;
	int rc, authed = 0, query, qi = -1;

	uuid_v4_str(request_id);
	memset(&err, 0, sizeof(err));
	memset(&look, 0, sizeof(look));
	memset(&id, 0, sizeof(id));
	peer = req->conn != NULL ? conn_peer_addr(req->conn) : NULL;
	/* An IPv4 peer of a dual-stack socket is its IPv4 address. */
	if (peer != NULL && strncmp(peer, "::ffff:", 7) == 0 &&
	    strchr(peer, '.') != NULL)
		peer += 7;
	snprintf(action, sizeof(action), "-");
	query = api_is_form(req);

	if (strcmp(req->method, "POST") != 0 || strcmp(req->path, "/") != 0) {
		api_error_set(&err, 404, "UnknownOperationException",
		    "No API at %s %s.", req->method, req->path);
		goto fail;
	}

	memset(&sreq, 0, sizeof(sreq));
	sreq.method = req->method;
	sreq.path = req->path;
	sreq.query = req->query;
	sreq.headers = req->headers;
	sreq.nheaders = req->nheaders;
	sreq.body = req->body;
	sreq.body_len = req->body_len;
	look.srv = srv;
	look.st = srv->store;
	memset(&serr, 0, sizeof(serr));
	if (api_instance_principal(srv, req, &look.p)) {
		look.found = 1;
		snprintf(id.service, sizeof(id.service), "kms");
		rc = 0;
	} else
		rc = sigv4_verify(&sreq, time(NULL), api_secret_cb, &look,
		    &id, &serr);
	if (rc == 0 && look.found && (rc = api_session_token(srv, req, &id,
	    &look, &err)) != 0)
		goto fail;
	if (rc != 0 || !look.found || !look.p.active) {
		if (rc == 0) {
			api_error_set(&err, 403, "UnrecognizedClientException",
			    "The security token included in the request is "
			    "invalid.");
		} else {
			err.status = serr.http_status ? serr.http_status : 403;
			snprintf(err.type, sizeof(err.type), "%s",
			    serr.type ? serr.type :
			    "InvalidSignatureException");
			snprintf(err.message, sizeof(err.message), "%s",
			    serr.message);
		}
		goto fail;
	}
	authed = 1;
	conn_set_authenticated(req->conn);
	/* The request-level condition keys; every request comes over
	 * TLS. */
	snprintf(look.p.origin.source_ip, sizeof(look.p.origin.source_ip),
	    "%s", peer != NULL ? peer : "");
	look.p.origin.secure_transport = 1;
	snprintf(look.p.origin.region, sizeof(look.p.origin.region), "%s",
	    id.region[0] != '\0' ? id.region : srv->region);

	if (look.p.kind == PRINCIPAL_USER && look.p.access_key_id[0] != '\0')
		store_iam_key_used(srv->store, look.p.access_key_id,
		    id.service, id.region, api_now_ms());

	if (query) {
		char *xml = NULL;
		size_t xlen;
		char hdr[96];

		if ((qi = api_query_service(id.service)) < 0) {
			api_error_set(&err, 400, "InvalidAction",
			    "Service %s does not speak the query protocol.",
			    id.service);
			goto fail;
		}
		memset(&call, 0, sizeof(call));
		call.srv = srv;
		call.principal = &look.p;
		call.host = http_header(req, "Host");
		call.request_id = request_id;
		call.now_ms = api_now_ms();
		if (api_query_run(&call, api_query_services[qi].ns,
		    api_query_services[qi].dispatch, req->body, req->body_len,
		    action, sizeof(action), &xml, &xlen, &err) != 0)
			goto fail;
		api_audit(srv, req, request_id, id.service, id.region, action,
		    &look.p, peer, 200, NULL, 1, NULL, NULL, xml, xlen);
		snprintf(hdr, sizeof(hdr), "x-amzn-RequestId: %s\r\n",
		    request_id);
		http_respond(req, 200, API_XML_TYPE, hdr, xml, xlen);
		/* Answers may carry new secret access keys. */
		OPENSSL_cleanse(xml, xlen);
		free(xml);
		return;
	}

	target = http_header(req, "X-Amz-Target");
	for (i = 0; i < sizeof(api_json_services) /
	    sizeof(api_json_services[0]); i++)
		if (strcmp(id.service, api_json_services[i].service) == 0)
			break;
	if (i == sizeof(api_json_services) / sizeof(api_json_services[0])) {
		api_error_set(&err, 400, "UnknownOperationException",
		    "Service %s is not supported.", id.service);
		goto fail;
	}
	plen = strlen(api_json_services[i].target_prefix);
	if (target == NULL ||
	    strncmp(target, api_json_services[i].target_prefix, plen) != 0 ||
	    target[plen] == '\0' || strlen(target + plen) >= sizeof(action)) {
		api_error_set(&err, 400, "UnknownOperationException",
		    "Missing or unknown X-Amz-Target for service %s.",
		    id.service);
		goto fail;
	}
	snprintf(action, sizeof(action), "%s", target + plen);

	/* botocore always sends at least "{}"; an empty body means the
	 * same. NUL characters in strings are refused by the parser. */
	if (req->body_len == 0)
		in = json_object();
	else
		in = json_loadb((const char *)req->body, req->body_len, 0,
		    &jerr);
	if (in == NULL || !json_is_object(in)) {
		api_error_set(&err, 400, "SerializationException",
		    "The request body is not a JSON object%s%s.",
		    in == NULL ? ": " : "", in == NULL ? jerr.text : "");
		goto fail;
	}

	memset(&call, 0, sizeof(call));
	call.srv = srv;
	call.principal = &look.p;
	call.host = http_header(req, "Host");
	call.request_id = request_id;
	call.now_ms = api_now_ms();
	rc = api_json_services[i].dispatch(&call, action, in, &out, &err);
	if (rc != 0 || out == NULL) {
		if (err.status == 0)
			api_error_set(&err, 500, "InternalServerError",
			    "An internal error occurred.");
		goto fail;
	}
	api_audit(srv, req, request_id, id.service, id.region, action,
	    &look.p, peer, 200, NULL, 0, in, out, NULL, 0);
	api_respond_json(req, 200, out, request_id);
	api_wipe_plaintext(in);
	api_wipe_plaintext(out);
	json_decref(in);
	json_decref(out);
	return;
fail:
	api_guess_action(req, query, action, sizeof(action));
	api_audit(srv, req, request_id, id.service[0] != '\0' ? id.service :
	    "-", id.region, action, authed ? &look.p : NULL, peer, err.status,
	    &err, query, in, NULL, NULL, 0);
	if (query) {
		if (qi < 0)
			qi = api_query_service(id.service);
		api_respond_query_error(req, qi >= 0 ?
		    api_query_services[qi].ns : API_IAM_NAMESPACE, &err,
		    request_id);
	} else
		api_respond_error(req, &err, request_id);
	api_wipe_plaintext(in);
	json_decref(in);
	json_decref(out);
}
