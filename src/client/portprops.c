/* portprops: Port session properties, version gates and printed lines. */
#include "client/portprops.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "common/err.h"

#define PP_MAX_JSON ((size_t)64 << 10)  /* as proto.c: spec 10.4 */
#define PP_MAX_VERSION_PARTS 8

/* Go's encoding/json matches a struct field to the first key equal to its
 * name without regard to case (an exact match wins). */
static json_t *
pp_get(json_t *o, const char *name)
{
	const char *k;
	json_t *v, *found;

	found = json_object_get(o, name);
	if (found != NULL)
		return found;
	json_object_foreach(o, k, v) {
		if (strcasecmp(k, name) == 0)
			return v;
	}
	return NULL;
}

static const char *
pp_string(json_t *o, const char *name, size_t *len)
{
	json_t *v = pp_get(o, name);

	if (!json_is_string(v))
		return NULL;
	*len = json_string_length(v);
	return json_string_value(v);
}

/* A decimal port 0..65535; "" is 0 (AWS's plugin: absent means any). */
static int
pp_port(const char *s, size_t n, unsigned *port)
{
	unsigned long v = 0;
	size_t i;

	if (n == 0) {
		*port = 0;
		return 0;
	}
	if (n > 5)
		return PH_ERR_INVALID;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return PH_ERR_INVALID;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return PH_ERR_INVALID;
	*port = (unsigned)v;
	return 0;
}

static int
pp_from_properties(json_t *props, struct client_port_props *pp, char *err,
    size_t errlen)
{
	const char *s;
	size_t n, i;

	if (props == NULL || json_is_null(props))
		return 0;
	if (!json_is_object(props)) {
		snprintf(err, errlen, "Port Properties is not an object");
		return PH_ERR_INVALID;
	}
	if ((s = pp_string(props, "portNumber", &n)) != NULL) {
		if (n >= sizeof(pp->port_number)) {
			snprintf(err, errlen, "portNumber is too long");
			return PH_ERR_INVALID;
		}
		/* Shown to the user only: printable ASCII. */
		for (i = 0; i < n; i++)
			pp->port_number[i] = s[i] > 0x20 && s[i] < 0x7f ?
			    s[i] : '?';
		pp->port_number[n] = '\0';
	}
	if ((s = pp_string(props, "type", &n)) != NULL)
		pp->local_forwarding = n == strlen("LocalPortForwarding") &&
		    strcmp(s, "LocalPortForwarding") == 0;
	if ((s = pp_string(props, "localConnectionType", &n)) != NULL)
		pp->unix_socket = n == 4 && strcmp(s, "unix") == 0;
	if ((s = pp_string(props, "localPortNumber", &n)) != NULL &&
	    !pp->unix_socket && pp_port(s, n, &pp->local_port) != 0) {
		snprintf(err, errlen, "localPortNumber %.16s%s is not a port "
		    "number", s, n > 16 ? "..." : "");
		return PH_ERR_INVALID;
	}
	if (!pp->unix_socket)
		return 0;
	s = pp_string(props, "localUnixSocket", &n);
	if (s == NULL || n == 0) {
		snprintf(err, errlen, "localConnectionType unix needs "
		    "localUnixSocket");
		return PH_ERR_INVALID;
	}
	if (n >= sizeof(pp->local_socket) || memchr(s, '\0', n) != NULL) {
		snprintf(err, errlen, "localUnixSocket is not a usable path "
		    "(at most %d bytes)", CLIENT_PORT_MAX_SOCKET - 1);
		return PH_ERR_INVALID;
	}
	memcpy(pp->local_socket, s, n);
	pp->local_socket[n] = '\0';
	return 0;
}

int
client_port_props_parse(const uint8_t *req, size_t n,
    struct client_port_props *pp, char *err, size_t errlen)
{
	json_t *o = NULL, *actions, *a, *params, *st;
	json_error_t jerr;
	size_t i;
	int rc = PH_ERR_INVALID;

	memset(pp, 0, sizeof(*pp));
	if (errlen > 0)
		err[0] = '\0';
	if (req == NULL || n == 0 || n > PP_MAX_JSON)
		goto bad;
	o = json_loadb((const char *)req, n, 0, &jerr);
	if (!json_is_object(o))
		goto bad;
	actions = json_object_get(o, "RequestedClientActions");
	if (!json_is_array(actions))
		goto bad;
	json_array_foreach(actions, i, a) {
		if (!json_is_object(a) || !json_is_string(json_object_get(a,
		    "ActionType")) || strcmp(json_string_value(
		    json_object_get(a, "ActionType")), "SessionType") != 0)
			continue;
		params = json_object_get(a, "ActionParameters");
		st = json_is_object(params) ?
		    json_object_get(params, "SessionType") : NULL;
		if (!json_is_string(st) ||
		    strcmp(json_string_value(st), "Port") != 0)
			break;
		rc = pp_from_properties(json_object_get(params,
		    "Properties"), pp, err, errlen);
		json_decref(o);
		return rc;
	}
bad:
	if (errlen > 0 && err[0] == '\0')
		snprintf(err, errlen, "no Port session type in the handshake");
	json_decref(o);
	return rc;
}

/* Split a version into numbers; -1 when it is not all digits and dots. */
static int
pp_version_parts(const char *v, unsigned long *parts, int max)
{
	int k = 0;
	int digits = 0;

	if (v == NULL)
		return -1;
	parts[0] = 0;
	for (;; v++) {
		if (*v >= '0' && *v <= '9') {
			if (parts[k] > 100000000ul)
				return -1;
			parts[k] = parts[k] * 10 + (unsigned long)(*v - '0');
			digits++;
			continue;
		}
		if (digits == 0)
			return -1;
		if (*v == '\0')
			return k + 1;
		if (*v != '.' || ++k >= max)
			return -1;
		parts[k] = 0;
		digits = 0;
	}
}

int
client_version_greater(const char *a, const char *b)
{
	unsigned long pa[PP_MAX_VERSION_PARTS], pb[PP_MAX_VERSION_PARTS];
	int na, nb, i;

	na = pp_version_parts(a, pa, PP_MAX_VERSION_PARTS);
	nb = pp_version_parts(b, pb, PP_MAX_VERSION_PARTS);
	if (na < 0 || nb < 0 || na != nb)
		return 0;
	for (i = 0; i < na; i++) {
		if (pa[i] != pb[i])
			return pa[i] > pb[i];
	}
	return 0;
}

enum client_port_mode
client_port_mode_select(const struct client_port_props *pp,
    const char *agent_version)
{
	if (!pp->local_forwarding)
		return CLIENT_PORT_STDIO;
	return client_version_greater(agent_version, "3.0.196.0") ?
	    CLIENT_PORT_MUX : CLIENT_PORT_BASIC;
}

int
client_port_smux_keepalive(const char *agent_version)
{
	return !client_version_greater(agent_version, "3.1.1511.0");
}

int
client_port_terminate_by_flag(enum client_port_mode mode,
    const char *agent_version)
{
	return mode == CLIENT_PORT_MUX ||
	    client_version_greater(agent_version, "2.3.722.0");
}

int
client_port_opened_line(char *out, size_t n,
    const struct client_port_props *pp, unsigned port,
    const char *session_id)
{
	int k;

	if (pp->unix_socket)
		k = snprintf(out, n, "Unix socket %s opened for sessionId %s.",
		    pp->local_socket, session_id);
	else
		k = snprintf(out, n, "Port %u opened for sessionId %s.", port,
		    session_id);
	return k < 0 || (size_t)k >= n ? PH_ERR_TOOBIG : 0;
}

void
client_port_flag_encode(uint32_t flag, uint8_t out[4])
{
	out[0] = (uint8_t)(flag >> 24);
	out[1] = (uint8_t)(flag >> 16);
	out[2] = (uint8_t)(flag >> 8);
	out[3] = (uint8_t)flag;
}

int
client_port_flag_decode(const uint8_t *p, size_t n, uint32_t *flag)
{
	if (p == NULL || n != 4)
		return PH_ERR_INVALID;
	*flag = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
	return 0;
}
