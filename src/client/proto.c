/* proto: JSON payloads of the client's data channel. */
#include "client/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client/kms.h"
#include "common/err.h"

/* Largest JSON payload we parse; handshake JSON is a few KiB (spec 10.4). */
#define PROTO_MAX_JSON ((size_t)64 << 10)

static int
proto_dump(json_t *o, struct buf *out)
{
	char *s;
	int rc;

	if (o == NULL)
		return PH_ERR_NOMEM;
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (s == NULL)
		return PH_ERR_NOMEM;
	rc = buf_append_str(out, s);
	free(s);
	return rc;
}

int
client_proto_open_data_channel(struct buf *out, const char *request_id,
    const char *token, const char *client_id, const char *client_version)
{
	/* spec 2.1: field order as the official plugin sends it. */
	return proto_dump(json_pack("{s:s, s:s, s:s, s:s, s:s}",
	    "MessageSchemaVersion", "1.0", "RequestId", request_id,
	    "TokenValue", token, "ClientId", client_id,
	    "ClientVersion", client_version), out);
}

int
client_proto_size(struct buf *out, unsigned cols, unsigned rows)
{
	return buf_appendf(out, "{\"cols\":%u,\"rows\":%u}", cols, rows);
}

static json_t *
proto_load(const uint8_t *p, size_t n)
{
	json_error_t jerr;
	json_t *o;

	if (p == NULL || n == 0 || n > PROTO_MAX_JSON)
		return NULL;
	o = json_loadb((const char *)p, n, 0, &jerr);
	if (o != NULL && !json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Copy text meant for the user's terminal: bounded, control characters
 * (escape sequences in particular) replaced. */
static char *
proto_sanitize(const char *s, size_t n)
{
	char *d;
	size_t i;
	unsigned char c;

	if (n > CLIENT_MAX_MESSAGE_TEXT)
		n = CLIENT_MAX_MESSAGE_TEXT;
	d = malloc(n + 1);
	if (d == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') ||
		    c == 0x7f)
			c = '?';
		d[i] = (char)c;
	}
	d[n] = '\0';
	return d;
}

void
client_closed_free(struct client_closed *c)
{
	free(c->session_id);
	free(c->output);
	memset(c, 0, sizeof(*c));
}

int
client_proto_parse_closed(struct client_closed *c, const uint8_t *p,
    size_t n)
{
	json_t *o, *v;
	const char *s;
	size_t i, len;

	memset(c, 0, sizeof(*c));
	o = proto_load(p, n);
	if (o == NULL)
		return PH_ERR_INVALID;
	v = json_object_get(o, "SessionId");
	if (json_is_string(v)) {
		s = json_string_value(v);
		len = json_string_length(v);
		for (i = 0; i < len; i++)
			if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
				break;
		if (len > 0 && i == len && len <= 256) {
			c->session_id = strdup(s);
			if (c->session_id == NULL)
				goto nomem;
		}
	}
	v = json_object_get(o, "Output");
	if (json_is_string(v))
		c->output = proto_sanitize(json_string_value(v),
		    json_string_length(v));
	else
		c->output = strdup("");
	if (c->output == NULL)
		goto nomem;
	v = json_object_get(o, "SessionStatus");
	c->failed = json_is_string(v) &&
	    strcmp(json_string_value(v), "Failed") == 0;
	json_decref(o);
	return 0;
nomem:
	json_decref(o);
	client_closed_free(c);
	return PH_ERR_NOMEM;
}

static enum client_session_type
proto_session_type(const char *s)
{
	if (strcmp(s, "Standard_Stream") == 0)
		return CLIENT_SESSION_STANDARD;
	if (strcmp(s, "InteractiveCommands") == 0)
		return CLIENT_SESSION_INTERACTIVE;
	if (strcmp(s, "NonInteractiveCommands") == 0)
		return CLIENT_SESSION_NONINTERACTIVE;
	if (strcmp(s, "Port") == 0)
		return CLIENT_SESSION_PORT;
	return CLIENT_SESSION_UNKNOWN;
}

/* KMSEncryption's ActionParameters (spec 5.2) into hs; 0 or an error
 * text for the agent. */
static const char *
proto_kms_params(json_t *params, struct client_handshake *hs)
{
	json_t *kid, *ch;
	const char *s;
	size_t i, n;

	if (!json_is_object(params))
		return "KMSEncryption has no ActionParameters object";
	kid = json_object_get(params, "KMSKeyId");
	if (!json_is_string(kid) || json_string_length(kid) == 0 ||
	    json_string_length(kid) >= sizeof(hs->kms_key_id))
		return "KMSEncryption has no usable KMSKeyId";
	s = json_string_value(kid);
	n = json_string_length(kid);
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return "KMSEncryption has no usable KMSKeyId";
	ch = json_object_get(params, "Challenge");
	if (ch != NULL && !json_is_null(ch) && (!json_is_string(ch) ||
	    json_string_length(ch) >= sizeof(hs->kms_challenge) ||
	    !client_b64_valid(json_string_value(ch), json_string_length(ch))))
		return "KMSEncryption has an unusable Challenge";
	memcpy(hs->kms_key_id, s, n);
	hs->kms_key_id[n] = '\0';
	if (json_is_string(ch))
		snprintf(hs->kms_challenge, sizeof(hs->kms_challenge), "%s",
		    json_string_value(ch));
	hs->kms_params_ok = 1;
	return NULL;
}

/* One RequestedClientAction → one ProcessedClientAction (spec 5.2). */
static json_t *
proto_process_action(json_t *action, const struct client_kms_outcome *kms,
    struct client_handshake *hs, const char *port_err, const char **errtext,
    char *ebuf, size_t elen)
{
	json_t *params, *st, *result = NULL;
	const char *type = NULL, *stype, *e;
	enum client_session_type t;
	int status;

	*errtext = "";
	if (json_is_object(action))
		type = json_string_value(json_object_get(action,
		    "ActionType"));
	if (type == NULL) {
		status = CLIENT_ACTION_UNSUPPORTED;
		*errtext = "Malformed action";
		return json_pack("{s:s, s:i, s:n, s:s}", "ActionType", "",
		    "ActionStatus", status, "ActionResult", "Error",
		    *errtext);
	}
	params = json_object_get(action, "ActionParameters");
	if (strcmp(type, "SessionType") == 0) {
		st = json_is_object(params) ?
		    json_object_get(params, "SessionType") : NULL;
		stype = json_is_string(st) ? json_string_value(st) : "";
		t = proto_session_type(stype);
		if (t == CLIENT_SESSION_STANDARD ||
		    t == CLIENT_SESSION_INTERACTIVE ||
		    t == CLIENT_SESSION_NONINTERACTIVE) {
			/* spec 5.2: all three run the shell mode. */
			hs->type = t;
			status = CLIENT_ACTION_SUCCESS;
		} else if (t == CLIENT_SESSION_PORT && port_err == NULL) {
			hs->type = t;
			status = CLIENT_ACTION_SUCCESS;
		} else {
			status = CLIENT_ACTION_FAILED;
			if (t == CLIENT_SESSION_PORT) {
				snprintf(ebuf, elen, "Invalid port session "
				    "properties: %s", port_err);
				*errtext = ebuf;
			} else {
				snprintf(ebuf, elen,
				    "Unknown session type %.64s", stype);
				*errtext = ebuf;
			}
		}
	} else if (strcmp(type, "KMSEncryption") == 0) {
		status = CLIENT_ACTION_FAILED;
		if (hs->kms_requested) {
			/* One key per session: a second request is refused
			 * rather than guessed at. */
			e = "Duplicate KMSEncryption action";
		} else {
			hs->kms_requested = 1;
			e = proto_kms_params(params, hs);
		}
		if (e != NULL) {
			*errtext = e;
		} else if (kms == NULL) {
			*errtext = "KMS encryption is not available";
		} else if (!kms->ok) {
			snprintf(ebuf, elen, "%s", kms->error != NULL &&
			    *kms->error != '\0' ? kms->error :
			    "KMS encryption failed");
			*errtext = ebuf;
		} else {
			result = json_pack("{s:s, s:n}", "KMSCipherTextKey",
			    kms->ciphertext_b64 ? kms->ciphertext_b64 : "",
			    "KMSCipherTextHash");
			if (result != NULL && kms->challenge_ack &&
			    json_object_set_new(result,
			    "ChallengeAcknowledgement", json_true()) != 0) {
				json_decref(result);
				result = NULL;
			}
			if (result == NULL)
				return NULL;
			status = CLIENT_ACTION_SUCCESS;
		}
	} else {
		status = CLIENT_ACTION_UNSUPPORTED;
		snprintf(ebuf, elen, "Unsupported action %.64s", type);
		*errtext = ebuf;
	}
	if (result == NULL)
		result = json_null();
	return json_pack("{s:s, s:i, s:o, s:s}", "ActionType", type,
	    "ActionStatus", status, "ActionResult", result, "Error",
	    *errtext);
}

/* Parse a HandshakeRequest, and build the response when out is not
 * NULL. */
static int
proto_handshake(const uint8_t *req, size_t n, const char *client_version,
    const struct client_kms_outcome *kms, struct client_handshake *hs,
    struct buf *out)
{
	json_t *o, *actions, *action, *done = NULL, *errors = NULL, *pa,
	    *resp;
	const char *errtext, *av, *perr = NULL;
	char ebuf[640], pbuf[256];
	size_t i;
	int rc = PH_ERR_NOMEM;

	memset(hs, 0, sizeof(*hs));
	o = proto_load(req, n);
	if (o == NULL)
		return PH_ERR_INVALID;
	actions = json_object_get(o, "RequestedClientActions");
	if (!json_is_array(actions) || json_array_size(actions) > 64) {
		json_decref(o);
		return PH_ERR_INVALID;
	}
	av = json_string_value(json_object_get(o, "AgentVersion"));
	if (av != NULL) {
		/* Shown in logs only; keep it printable. */
		snprintf(hs->agent_version, sizeof(hs->agent_version), "%s",
		    av);
		for (i = 0; hs->agent_version[i] != '\0'; i++)
			if ((unsigned char)hs->agent_version[i] < 0x20 ||
			    (unsigned char)hs->agent_version[i] == 0x7f ||
			    hs->agent_version[i] == '"')
				hs->agent_version[i] = '?';
	}
	/* Port Properties (spec 7.4): read from the same request; used only
	 * when the SessionType is Port. */
	if (client_port_props_parse(req, n, &hs->port, pbuf,
	    sizeof(pbuf)) != 0)
		perr = pbuf;
	done = json_array();
	errors = json_array();
	if (done == NULL || errors == NULL)
		goto fail;
	hs->ok = 1;
	json_array_foreach(actions, i, action) {
		pa = proto_process_action(action, kms, hs, perr, &errtext,
		    ebuf, sizeof(ebuf));
		if (pa == NULL || json_array_append_new(done, pa) != 0)
			goto fail;
		if (*errtext != '\0') {
			if (hs->ok)
				snprintf(hs->first_error,
				    sizeof(hs->first_error), "%s", errtext);
			hs->ok = 0;
			if (json_array_append_new(errors,
			    json_string(errtext)) != 0)
				goto fail;
		}
	}
	if (out == NULL) {
		rc = 0;
		goto fail;
	}
	resp = json_pack("{s:s, s:o, s:o}", "ClientVersion", client_version,
	    "ProcessedClientActions", done,
	    "Errors", json_array_size(errors) > 0 ? errors : json_null());
	done = NULL; /* transferred (json_pack "o" steals) */
	if (json_array_size(errors) > 0)
		errors = NULL;
	rc = proto_dump(resp, out);
fail:
	json_decref(done);
	json_decref(errors);
	json_decref(o);
	return rc;
}

int
client_proto_handshake_parse(const uint8_t *req, size_t n,
    struct client_handshake *hs)
{
	return proto_handshake(req, n, "", NULL, hs, NULL);
}

int
client_proto_handshake_response(const uint8_t *req, size_t n,
    const char *client_version, const struct client_kms_outcome *kms,
    struct client_handshake *hs, struct buf *out)
{
	return proto_handshake(req, n, client_version, kms, hs, out);
}

int
client_proto_parse_challenge(const uint8_t *p, size_t n,
    struct buf *sealed)
{
	uint8_t raw[CLIENT_MAX_CHALLENGE_BYTES];
	json_t *o, *v;
	size_t len = 0;
	int rc = PH_ERR_INVALID;

	o = proto_load(p, n);
	if (o == NULL)
		return PH_ERR_INVALID;
	v = json_object_get(o, "Challenge");
	if (json_is_string(v) && client_b64_decode(json_string_value(v),
	    json_string_length(v), raw, sizeof(raw), &len) == 0 && len > 0)
		rc = buf_append(sealed, raw, len);
	json_decref(o);
	return rc;
}

int
client_proto_challenge_response(struct buf *out, const uint8_t *sealed,
    size_t n)
{
	struct buf b;
	int rc;

	buf_init(&b, (size_t)64 << 10);
	rc = client_b64_encode(sealed, n, &b);
	if (rc == 0)
		rc = proto_dump(json_pack("{s:s%}", "Challenge",
		    (const char *)b.data, b.len), out);
	buf_free(&b);
	return rc;
}

int
client_proto_parse_handshake_complete(const uint8_t *p, size_t n,
    char **customer_message)
{
	json_t *o, *v;

	*customer_message = NULL;
	o = proto_load(p, n);
	if (o == NULL)
		return PH_ERR_INVALID;
	v = json_object_get(o, "CustomerMessage");
	if (json_is_string(v))
		*customer_message = proto_sanitize(json_string_value(v),
		    json_string_length(v));
	else
		*customer_message = strdup("");
	json_decref(o);
	return *customer_message != NULL ? 0 : PH_ERR_NOMEM;
}

int
client_proto_parse_exit_code(const uint8_t *p, size_t n, int *code)
{
	static const char prefix[] = "EXIT_CODE:";
	size_t i = sizeof(prefix) - 1;
	long v = 0;
	int neg = 0, digits = 0;

	if (p == NULL || n < i || memcmp(p, prefix, i) != 0)
		return PH_ERR_INVALID;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i < n && p[i] == '-') {
		neg = 1;
		i++;
	}
	for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
		if (v < 100000000)
			v = v * 10 + (p[i] - '0');
		digits++;
	}
	while (i < n && (p[i] == ' ' || p[i] == '\r' || p[i] == '\n'))
		i++;
	if (digits == 0 || i != n)
		return PH_ERR_INVALID;
	if (neg)
		v = -v;
	/* An exit status outside 0..255 cannot be passed on as it is. */
	*code = v >= 0 && v <= 255 ? (int)v : 1;
	return 0;
}
