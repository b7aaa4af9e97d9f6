/* audit_sink: rotated audit files to the record sink (audit_sink.h). */
#include "server/audit_sink.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "server/s3.h"
#include "server/sink.h"
#include "server/store.h"

#define AUDIT_SINK_SUFFIX ".jsonl"

void
audit_sink_config(struct audit_sink *as, struct server *srv,
    const json_t *o)
{
	const char *b, *p;
	json_t *v;
	size_t i;

	memset(as, 0, sizeof(*as));
	as->srv = srv;
	b = json_string_value(json_object_get(o, "AuditS3Bucket"));
	p = json_string_value(json_object_get(o, "AuditS3KeyPrefix"));
	if (json_object_get(o, "AuditS3Bucket") != NULL &&
	    (b == NULL || !s3_bucket_valid(b) ||
	    strlen(b) >= sizeof(as->bucket))) {
		log_warn("event=config_ignored key=AuditS3Bucket "
		    "note=\"not a bucket name; the audit trail stays local\"");
		return;
	}
	if (json_object_get(o, "AuditS3KeyPrefix") != NULL) {
		for (i = 0; p != NULL && p[i] != '\0'; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
				break;
		if (p == NULL || p[i] != '\0' || i >= sizeof(as->prefix)) {
			log_warn("event=config_ignored key=AuditS3KeyPrefix "
			    "note=\"not text of at most %zu bytes; the "
			    "audit trail stays local\"", sizeof(as->prefix) -
			    1);
			return;
		}
		snprintf(as->prefix, sizeof(as->prefix), "%s", p);
	}
	v = json_object_get(o, "AuditS3EncryptionEnabled");
	if (v != NULL && !json_is_boolean(v))
		log_warn("event=config_ignored key=AuditS3EncryptionEnabled "
		    "note=\"not true or false\"");
	as->encrypt = json_is_true(v);
	if (b != NULL)
		snprintf(as->bucket, sizeof(as->bucket), "%s", b);
}

void
audit_sink_rotated(void *arg, const char *path)
{
	struct audit_sink *as = arg;
	struct sink_item it;
	const char *base, *paths[1];
	char dir[600], link_path[700], id[SESSION_ID_MAX], url[2100];
	size_t n;
	int rc, s3 = 0;

	if (as == NULL || as->bucket[0] == '\0')
		return;
	base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	n = strlen(base);
	/* The item is the file's name without ".jsonl". */
	if (n <= sizeof(AUDIT_SINK_SUFFIX) - 1 || n - (sizeof(
	    AUDIT_SINK_SUFFIX) - 1) >= sizeof(id) || strcmp(base + n -
	    (sizeof(AUDIT_SINK_SUFFIX) - 1), AUDIT_SINK_SUFFIX) != 0) {
		rc = PH_ERR_INVALID;
		goto fail;
	}
	memcpy(id, base, n - (sizeof(AUDIT_SINK_SUFFIX) - 1));
	id[n - (sizeof(AUDIT_SINK_SUFFIX) - 1)] = '\0';
	if (as->srv == NULL || as->srv->sink == NULL) {
		rc = PH_ERR_STATE;
		goto fail;
	}
	/* Told again after a restart: queued (or delivered) already. */
	if (sink_output_url(as->srv->sink, id, url, sizeof(url), &s3) == 0 &&
	    url[0] != '\0')
		return;
	if ((size_t)snprintf(dir, sizeof(dir), "%s/" AUDIT_OUTBOX_SUBDIR,
	    as->srv->data_dir) >= sizeof(dir) ||
	    (size_t)snprintf(link_path, sizeof(link_path), "%s/%s", dir,
	    base) >= sizeof(link_path)) {
		rc = PH_ERR_TOOBIG;
		goto fail;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = PH_ERR_IO;
		goto fail;
	}
	/* A second name for the same file: the sink deletes this one after
	 * the upload; the trail's own stays. */
	if (link(path, link_path) != 0) {
		rc = errno == EEXIST ? PH_ERR_EXISTS : PH_ERR_IO;
		goto fail;
	}
	memset(&it, 0, sizeof(it));
	paths[0] = link_path;
	it.session_id = id;
	it.bucket = as->bucket;
	it.key_prefix = as->prefix;
	it.encrypt = as->encrypt;
	it.paths = paths;
	it.npaths = 1;
	if ((rc = sink_enqueue(as->srv->sink, &it)) != 0) {
		(void)unlink(link_path);
		goto fail;
	}
	log_info("event=audit_file_queued file=%s bucket=%s", base,
	    as->bucket);
	return;
fail:
	log_error("event=audit_file_not_queued path=\"%s\" err=%s "
	    "note=\"the file stays in the audit directory only\"", path,
	    ph_strerror(rc));
}
