/* commands_output: PUT /v1/command-output/<CommandId>/<StepName>/<stream>
 * (commands.h). The agent, over mutual TLS as its instance, sends a
 * step's whole stdout or stderr; it is kept as a local file and queued
 * through the sink for the command's OutputS3BucketName under AWS's key
 * layout, <prefix>/<CommandId>/<InstanceId>/<plugin>/<step>/<stream>,
 * the plugin without its colon (aws:runShellScript becomes
 * awsrunShellScript) and the step of a 1.2 document, named by its
 * plugin, "0.awsrunShellScript". A separate module from the dispatcher so the
 * gateway does not pull in the sink. */
#include "server/commands.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/hex.h"
#include "common/log.h"
#include "server/sink.h"
#include "server/store.h"
#include "server/store_commands.h"

#define CO_PREFIX "/v1/command-output/"
#define CO_JSON "application/x-amz-json-1.1"
#define CO_STEP_MAX 128
#define CO_DIR "command-output"

static void
co_error(struct http_request *req, int status, const char *type,
    const char *msg)
{
	json_t *o = json_pack("{s:s, s:s}", "__type", type, "message", msg);
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	if (s == NULL)
		http_respond(req, 500, CO_JSON, NULL, "{}", 2);
	else
		http_respond(req, status, CO_JSON, NULL, s, strlen(s));
	free(s);
	json_decref(o);
}

/* Percent-decode a step name of [A-Za-z0-9_.:-]{1,128}. */
static int
co_step(const char *s, size_t n, char out[CO_STEP_MAX + 1])
{
	size_t i, o = 0;
	int c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n || (c = hex_byte(s + i + 1)) < 0)
				return PH_ERR_INVALID;
			i += 2;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		    c == ':' || c == '-') || o >= CO_STEP_MAX)
			return PH_ERR_INVALID;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return o > 0 && strcmp(out, ".") != 0 && strcmp(out, "..") != 0 ?
	    0 : PH_ERR_INVALID;
}

static int
co_command_id(const char *s, size_t n, char out[STORE_COMMAND_ID_SIZE])
{
	size_t i;

	if (n != STORE_COMMAND_ID_SIZE - 1)
		return PH_ERR_INVALID;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f') || s[i] == '-'))
			return PH_ERR_INVALID;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static void
co_strip_colons(char *dst, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s != '\0' && o + 1 < size; s++)
		if (*s != ':')
			dst[o++] = *s;
	dst[o] = '\0';
}

static int
co_write_file(const char *dir, const char *path, const uint8_t *p, size_t n)
{
	char tmp[1100];
	size_t off = 0;
	ssize_t w;
	int fd;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return PH_ERR_IO;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0)
		return PH_ERR_IO;
	while (off < n) {
		w = write(fd, p + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			unlink(tmp);
			return PH_ERR_IO;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return PH_ERR_IO;
	}
	return 0;
}

/* The step's plugin (aws:runShellScript) as the agent reported it. */
static void
co_plugin_of(const char *plugins_json, const char *step, char *out,
    size_t size)
{
	json_error_t jerr;
	json_t *a, *p;
	const char *n, *pn;
	size_t i;

	snprintf(out, size, "%s", strchr(step, ':') != NULL ? step :
	    "aws:runShellScript");
	a = plugins_json != NULL ? json_loads(plugins_json, 0, &jerr) : NULL;
	json_array_foreach(a, i, p) {
		n = json_string_value(json_object_get(p, "Name"));
		pn = json_string_value(json_object_get(p, "PluginName"));
		if (n != NULL && pn != NULL && strcmp(n, step) == 0) {
			snprintf(out, size, "%s", pn);
			break;
		}
	}
	json_decref(a);
}

/* Point the step (and the invocation) at the object. */
static int
co_set_url(struct invocation_rec *v, const char *step, const char *plugin,
    int is_err, const char *url)
{
	json_error_t jerr;
	json_t *a, *p;
	const char *n;
	char **dst = is_err ? &v->stderr_url : &v->stdout_url;
	char *s;
	size_t i;
	int found = 0;

	if ((s = strdup(url)) == NULL)
		return PH_ERR_NOMEM;
	free(*dst);
	*dst = s;
	a = v->plugins_json != NULL ? json_loads(v->plugins_json, 0, &jerr) :
	    NULL;
	json_array_foreach(a, i, p) {
		n = json_string_value(json_object_get(p, "Name"));
		if (n != NULL && strcmp(n, step) == 0) {
			json_object_set_new(p, is_err ? "StandardErrorUrl" :
			    "StandardOutputUrl", json_string(url));
			found = 1;
		}
	}
	/* The agent uploads before its reply names the step: the step's
	 * place is kept with its URL, and the reply fills in the rest. */
	if (!found && json_is_array(a) && (p = json_pack("{s:s, s:s, s:s, "
	    "s:s, s:i, s:s, s:s}", "Name", step, "PluginName", plugin,
	    "Status", "InProgress", "StatusDetails", "InProgress",
	    "ResponseCode", -1, "StandardOutputUrl", is_err ? "" : url,
	    "StandardErrorUrl", is_err ? url : "")) != NULL)
		json_array_append_new(a, p);
	if (json_is_array(a) && (s = json_dumps(a, JSON_COMPACT)) != NULL) {
		free(v->plugins_json);
		v->plugins_json = s;
	}
	json_decref(a);
	return 0;
}

void
commands_handle_output(struct commands *cm, struct http_request *req)
{
	char cmd_id[STORE_COMMAND_ID_SIZE], step[CO_STEP_MAX + 1];
	char plugin[CO_STEP_MAX + 1], pdir[CO_STEP_MAX + 1];
	char sdir[CO_STEP_MAX + 3], sfile[CO_STEP_MAX + 1];
	char dir[700], path[1024], key[1100], url[2048], id[128];
	const char *cn, *rest, *s1, *s2, *stream, *prefix;
	struct invocation_rec v;
	struct command_rec c;
	struct server *srv;
	size_t plen, i;
	json_t *o;
	char *body;
	int rc, is_err, n;

	memset(&v, 0, sizeof(v));
	memset(&c, 0, sizeof(c));
	if (cm == NULL) {
		co_error(req, 503, "ServiceUnavailable",
		    "Run Command is not available");
		return;
	}
	srv = commands_server(cm);
	if (strcmp(req->method, "PUT") != 0) {
		co_error(req, 405, "MethodNotAllowed", "Use PUT");
		return;
	}
	rest = req->path + sizeof(CO_PREFIX) - 1;
	if (strncmp(req->path, CO_PREFIX, sizeof(CO_PREFIX) - 1) != 0 ||
	    (s1 = strchr(rest, '/')) == NULL ||
	    (s2 = strchr(s1 + 1, '/')) == NULL ||
	    co_command_id(rest, (size_t)(s1 - rest), cmd_id) != 0 ||
	    co_step(s1 + 1, (size_t)(s2 - s1 - 1), step) != 0 ||
	    (strcmp(s2 + 1, "stdout") != 0 && strcmp(s2 + 1, "stderr") != 0)) {
		co_error(req, 400, "ValidationException", "The path must be "
		    "/v1/command-output/COMMAND-ID/STEP-NAME/stdout|stderr");
		return;
	}
	stream = s2 + 1;
	is_err = strcmp(stream, "stderr") == 0;
	if (req->body_len > COMMANDS_OUTPUT_MAX) {
		co_error(req, 413, "ValidationException", "The output is too "
		    "large");
		return;
	}
	/* Only the invocation's instance sends its output; an unknown
	 * command looks the same as somebody else's. */
	cn = req->conn != NULL ? conn_peer_cn(req->conn) : NULL;
	/* A deregistered instance's certificate delivers nothing. */
	rc = cn != NULL && store_instance_active(srv->store, cn) == 0 ?
	    store_invocation_get(srv->store, cmd_id, cn, &v) :
	    PH_ERR_NOTFOUND;
	if (rc == PH_ERR_NOTFOUND) {
		log_limited(LOG_WARN, "command_output_refused",
		    "event=command_output_refused command=%s instance=%.64s",
		    cmd_id, cn != NULL ? cn : "-");
		co_error(req, 403, "AccessDeniedException", "The certificate "
		    "is not a target's of the command");
		goto done;
	}
	if (rc != 0 || (rc = store_command_get(srv->store, cmd_id, &c)) != 0) {
		co_error(req, 503, "ServiceUnavailable", "The command cannot "
		    "be looked up now");
		goto done;
	}
	if (c.output_s3_bucket == NULL || c.output_s3_bucket[0] == '\0') {
		co_error(req, 400, "ValidationException", "The command has no "
		    "OutputS3BucketName");
		goto done;
	}
	if (srv->sink == NULL) {
		co_error(req, 503, "ServiceUnavailable", "The bucket delivery "
		    "queue is not running");
		goto done;
	}
	co_plugin_of(v.plugins_json, step, plugin, sizeof(plugin));
	co_strip_colons(pdir, sizeof(pdir), plugin);
	/* A schemaVersion 1.2 document's steps are its plugins: AWS files
	 * them as "0.awsrunShellScript" (the property's index); a 2.x
	 * step goes under its name. */
	if (strchr(step, ':') != NULL) {
		co_strip_colons(sfile, sizeof(sfile), step);
		snprintf(sdir, sizeof(sdir), "0.%s", sfile);
	} else
		snprintf(sdir, sizeof(sdir), "%s", step);
	snprintf(sfile, sizeof(sfile), "%s", step);
	for (i = 0; sfile[i] != '\0'; i++)
		if (sfile[i] == ':')
			sfile[i] = '_';
	prefix = c.output_s3_prefix != NULL ? c.output_s3_prefix : "";
	plen = strlen(prefix);
	n = snprintf(key, sizeof(key), "%s%s%s/%s/%s/%s/%s", prefix,
	    plen > 0 && prefix[plen - 1] != '/' ? "/" : "", cmd_id, v.instance_id,
	    pdir, sdir, stream);
	if (n < 0 || (size_t)n >= sizeof(key) || n > 1024) {
		co_error(req, 400, "ValidationException", "The object key is "
		    "too long");
		goto done;
	}
	snprintf(dir, sizeof(dir), "%s/%s", srv->data_dir, CO_DIR);
	n = snprintf(path, sizeof(path), "%s/%s.%s.%s.%s", dir, cmd_id,
	    v.instance_id, sfile, stream);
	snprintf(id, sizeof(id), "%s.%s", cmd_id, v.instance_id);
	if (n < 0 || (size_t)n >= sizeof(path) ||
	    co_write_file(dir, path, req->body, req->body_len) != 0) {
		log_warn("event=command_output_write_failed command=%s "
		    "instance=%s errno=%d", cmd_id, v.instance_id, errno);
		co_error(req, 503, "ServiceUnavailable", "The output cannot be "
		    "stored now");
		goto done;
	}
	rc = sink_enqueue_object(srv->sink, id, c.output_s3_bucket, key, path,
	    url, sizeof(url));
	if (rc == 0)
		rc = co_set_url(&v, step, plugin, is_err, url);
	if (rc == 0)
		rc = store_invocation_update(srv->store, &v);
	if (rc != 0) {
		log_warn("event=command_output_queue_failed command=%s "
		    "instance=%s err=\"%s\"", cmd_id, v.instance_id,
		    ph_strerror(rc));
		co_error(req, rc == PH_ERR_INVALID ? 400 : 503, rc ==
		    PH_ERR_INVALID ? "ValidationException" :
		    "ServiceUnavailable", "The output cannot be queued");
		goto done;
	}
	log_info("event=command_output command=%s instance=%s step=%s "
	    "stream=%s bytes=%zu", cmd_id, v.instance_id, step, stream,
	    req->body_len);
	o = json_pack("{s:s, s:s}", "Url", url, "Key", key);
	body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	if (body != NULL)
		http_respond(req, 200, CO_JSON, NULL, body, strlen(body));
	else
		http_respond(req, 200, CO_JSON, NULL, "{}", 2);
	free(body);
	json_decref(o);
done:
	invocation_rec_clear(&v);
	command_rec_clear(&c);
}
