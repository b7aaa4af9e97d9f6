#include "agent/state.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/jsonci.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proxy.h"

int
agent_endpoint_to_ws(const char *endpoint, char *out, size_t out_len)
{
	static const char scheme[] = "https://";
	const char *host, *end;
	size_t hlen, i;
	int n;

	if (endpoint == NULL ||
	    strncasecmp(endpoint, scheme, sizeof(scheme) - 1) != 0)
		return PH_ERR_INVALID;
	host = endpoint + sizeof(scheme) - 1;
	end = host + strcspn(host, "/?#");
	hlen = (size_t)(end - host);
	if (hlen == 0 || hlen > 300)
		return PH_ERR_INVALID;
	/* host, [v6] or host:port; no credentials, spaces or controls. */
	for (i = 0; i < hlen; i++) {
		unsigned char c = (unsigned char)host[i];

		if (c <= 0x20 || c >= 0x7f || c == '@' || c == '\\')
			return PH_ERR_INVALID;
	}
	if (host[0] == ':')
		return PH_ERR_INVALID;
	n = snprintf(out, out_len, "wss://%.*s", (int)hlen, host);
	if (n < 0 || (size_t)n >= out_len)
		return PH_ERR_TOOBIG;
	return 0;
}

static int
valid_instance_id(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++) {
		if (n >= AGENT_INSTANCE_ID_MAX)
			return 0;
		if (!((s[n] >= 'a' && s[n] <= 'z') ||
		    (s[n] >= 'A' && s[n] <= 'Z') ||
		    (s[n] >= '0' && s[n] <= '9') || s[n] == '-' ||
		    s[n] == '_' || s[n] == '.'))
			return 0;
	}
	return n > 0 && s[0] != '.';
}

/* DeniedPortForwardingRemoteIPs: an array of addresses or CIDR blocks;
 * absent or null keeps the default list. */
static int
state_deny(struct agent_state *st, json_t *v, char *err, size_t errlen)
{
	json_t *e;
	size_t i;

	memset(&st->deny, 0, sizeof(st->deny));
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v)) {
		ph_errf(err, errlen, "agent.json: "
		    "DeniedPortForwardingRemoteIPs must be a list of "
		    "addresses");
		return PH_ERR_INVALID;
	}
	st->deny.set = 1;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || pf_deny_add(&st->deny,
		    json_string_value(e)) != 0) {
			ph_errf(err, errlen, "agent.json: "
			    "DeniedPortForwardingRemoteIPs[%zu] is not an IP "
			    "address or CIDR block (at most %d entries)", i,
			    PF_DENY_MAX);
			return PH_ERR_INVALID;
		}
	}
	return 0;
}

int
agent_state_proxy(struct agent_state *st, const void *obj, char *err,
    size_t errlen)
{
	const json_t *o = obj;
	struct proxy_config *cfg = NULL;
	const char *url, *np;
	json_t *v;
	char e[256];
	int rc;

	st->proxy_set = 0;
	st->proxy_url[0] = st->no_proxy[0] = '\0';
	v = agent_json_get(o, "Proxy");
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_object(v)) {
		ph_errf(err, errlen, "agent.json: Proxy must be an object "
		    "{\"Url\": \"http://host:port\", \"NoProxy\": \"...\"}");
		return PH_ERR_INVALID;
	}
	url = agent_json_str(v, "Url");
	np = agent_json_str(v, "NoProxy");
	if ((agent_json_get(v, "Url") != NULL && url == NULL) ||
	    (agent_json_get(v, "NoProxy") != NULL && np == NULL) ||
	    (url != NULL && strlen(url) >= sizeof(st->proxy_url)) ||
	    (np != NULL && strlen(np) >= sizeof(st->no_proxy))) {
		ph_errf(err, errlen, "agent.json: Proxy.Url and "
		    "Proxy.NoProxy must be strings (at most %zu and %zu "
		    "bytes)", sizeof(st->proxy_url) - 1,
		    sizeof(st->no_proxy) - 1);
		return PH_ERR_INVALID;
	}
	/* Checked now, so a bad URL stops `run` with a clear message. */
	if ((rc = proxy_config_new(&cfg, url, np, e, sizeof(e))) != 0) {
		ph_errf(err, errlen, "agent.json: Proxy.Url: %s", e);
		return rc;
	}
	proxy_config_free(cfg);
	st->proxy_set = 1;
	snprintf(st->proxy_url, sizeof(st->proxy_url), "%s", url ? url : "");
	snprintf(st->no_proxy, sizeof(st->no_proxy), "%s", np ? np : "");
	return 0;
}

int
agent_proxy_setup(const struct agent_state *st, char *err, size_t errlen)
{
	const struct proxy *px;
	struct proxy_config *cfg = NULL;
	char e[256];
	int rc;

	if (st != NULL && st->proxy_set) {
		rc = proxy_config_new(&cfg, st->proxy_url, st->no_proxy, e,
		    sizeof(e));
		if (rc != 0) {
			ph_errf(err, errlen, "agent.json: Proxy.Url: %s", e);
			return rc;
		}
	} else if ((rc = proxy_config_from_env(&cfg, e, sizeof(e))) != 0) {
		ph_errf(err, errlen, "%s", e);
		return rc;
	}
	proxy_set_default(cfg);
	/* Which route the endpoint takes, for the operator. */
	px = st != NULL && st->endpoint[0] != '\0' ?
	    proxy_for_url(st->endpoint) : NULL;
	log_info("event=proxy_config source=%s endpoint_via=%s",
	    st != NULL && st->proxy_set ? "agent.json" : "environment",
	    px != NULL ? px->url : "direct");
	return 0;
}

int
agent_state_parse(struct agent_state *st, const char *text, size_t n,
    char *err, size_t errlen)
{
	const char *id, *ep, *region;
	json_error_t jerr;
	json_t *o, *v;
	int record, rc = PH_ERR_INVALID;

	o = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(o)) {
		ph_errf(err, errlen, "agent.json is not a JSON object (%s)",
		    o == NULL ? jerr.text : "wrong type");
		goto fail;
	}
	id = agent_json_str(o, "InstanceId");
	if (id == NULL || !valid_instance_id(id)) {
		ph_errf(err, errlen,
		    "agent.json: InstanceId is missing or invalid");
		goto fail;
	}
	ep = agent_json_str(o, "Endpoint");
	if (ep == NULL || strlen(ep) >= sizeof(st->endpoint) ||
	    agent_endpoint_to_ws(ep, st->ws_base, sizeof(st->ws_base)) != 0) {
		ph_errf(err, errlen,
		    "agent.json: Endpoint is missing or not an https:// URL");
		goto fail;
	}
	region = agent_json_str(o, "Region");
	if (agent_json_get(o, "Region") != NULL && (region == NULL ||
	    strlen(region) >= sizeof(st->region))) {
		ph_errf(err, errlen, "agent.json: Region is invalid");
		goto fail;
	}
	if (agent_json_bool(o, "SudoersEntry", 1, &st->sudoers_entry) != 0) {
		ph_errf(err, errlen,
		    "agent.json: SudoersEntry must be true or false");
		goto fail;
	}
	/* An empty string is not taken as "off": turning recording off
	 * takes an explicit false. */
	v = agent_json_get(o, "RecordSessions");
	if ((json_is_string(v) && json_string_value(v)[0] == '\0') ||
	    agent_json_bool(o, "RecordSessions", 1, &record) != 0) {
		ph_errf(err, errlen,
		    "agent.json: RecordSessions must be true or false");
		goto fail;
	}
	st->record_off = !record;
	st->record_spool_max = (unsigned long long)256 << 20;
	v = agent_json_get(o, "RecordSpoolMaxBytes");
	if (v != NULL && (!json_is_integer(v) ||
	    json_integer_value(v) < ((json_int_t)1 << 20))) {
		ph_errf(err, errlen, "agent.json: RecordSpoolMaxBytes must "
		    "be a whole number of bytes, at least 1048576");
		goto fail;
	}
	if (v != NULL)
		st->record_spool_max =
		    (unsigned long long)json_integer_value(v);
	if ((rc = state_deny(st, agent_json_get(o,
	    "DeniedPortForwardingRemoteIPs"), err, errlen)) != 0)
		goto fail;
	if ((rc = agent_state_proxy(st, o, err, errlen)) != 0)
		goto fail;
	snprintf(st->instance_id, sizeof(st->instance_id), "%s", id);
	snprintf(st->endpoint, sizeof(st->endpoint), "%s", ep);
	snprintf(st->region, sizeof(st->region), "%s", region ? region : "");
	rc = 0;
fail:
	json_decref(o);
	return rc;
}

int
agent_state_set_dir(struct agent_state *st, const char *dir)
{
	size_t n = strlen(dir);

	/* dir is 32 shorter than the paths: room for "/agent.json". */
	if (n == 0 || n >= sizeof(st->dir))
		return PH_ERR_TOOBIG;
	while (n > 1 && dir[n - 1] == '/')
		n--;
	snprintf(st->dir, sizeof(st->dir), "%.*s", (int)n, dir);
	snprintf(st->key_path, sizeof(st->key_path), "%s/key.pem", st->dir);
	snprintf(st->cert_path, sizeof(st->cert_path), "%s/cert.pem",
	    st->dir);
	snprintf(st->ca_path, sizeof(st->ca_path), "%s/ca.pem", st->dir);
	snprintf(st->config_path, sizeof(st->config_path), "%s/agent.json",
	    st->dir);
	return 0;
}

int
agent_read_file(const char *path, size_t max, char **out, size_t *len)
{
	char *data = NULL;
	size_t have = 0;
	struct stat sb;
	ssize_t r;
	int fd, rc = PH_ERR_IO;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? PH_ERR_NOTFOUND : PH_ERR_IO;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		goto fail;
	if ((size_t)sb.st_size > max) {
		rc = PH_ERR_TOOBIG;
		goto fail;
	}
	data = malloc(max + 1);
	if (data == NULL) {
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	/* Read to EOF but never past max, whatever st_size said. */
	for (;;) {
		if (have == max + 1)
			break;
		r = read(fd, data + have, max + 1 - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		have += (size_t)r;
	}
	if (have > max) {
		rc = PH_ERR_TOOBIG;
		goto fail;
	}
	data[have] = '\0';
	*out = data;
	data = NULL; /* transferred */
	if (len != NULL)
		*len = have;
	rc = 0;
fail:
	free(data);
	close(fd);
	return rc;
}

int
agent_state_load(struct agent_state *st, const char *dir, char *err,
    size_t errlen)
{
	const char *need[3];
	char *text = NULL;
	size_t n, i;
	int rc;

	memset(st, 0, sizeof(*st));
	if (agent_state_set_dir(st, dir) != 0) {
		ph_errf(err, errlen, "state directory path too long");
		return PH_ERR_TOOBIG;
	}
	rc = agent_read_file(st->config_path, AGENT_STATE_FILE_MAX, &text, &n);
	if (rc != 0) {
		ph_errf(err, errlen, "cannot read %s: %s%s", st->config_path,
		    rc == PH_ERR_NOTFOUND ? "no such file" : ph_strerror(rc),
		    rc == PH_ERR_NOTFOUND ?
		    " (run `porthole-agent register` first)" : "");
		return rc;
	}
	rc = agent_state_parse(st, text, n, err, errlen);
	free(text);
	if (rc != 0)
		return rc;
	need[0] = st->key_path;
	need[1] = st->cert_path;
	need[2] = st->ca_path;
	for (i = 0; i < 3; i++) {
		if (access(need[i], R_OK) != 0) {
			ph_errf(err, errlen, "cannot read %s: %s", need[i],
			    strerror(errno));
			return PH_ERR_NOTFOUND;
		}
	}
	return 0;
}

int
agent_write_file_atomic(const char *path, const void *p, size_t n,
    unsigned mode)
{
	char tmp[AGENT_PATH_MAX + 16];
	const char *c = p;
	size_t off = 0;
	ssize_t w;
	int fd, len, rc = PH_ERR_IO;

	len = snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path);
	if (len < 0 || (size_t)len >= sizeof(tmp))
		return PH_ERR_TOOBIG;
	/* mkstemp creates the file 0600; fchmod only ever narrows or sets
	 * the final mode before any byte is written. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return PH_ERR_IO;
	if (fchmod(fd, (mode_t)mode) != 0)
		goto fail;
	while (off < n) {
		w = write(fd, c + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}
