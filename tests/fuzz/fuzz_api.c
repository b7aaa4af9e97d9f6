/* fuzz_api: the SSM and KMS API dispatchers on a real store: a fresh
 * SQLite database and KMS key store in a temporary directory for every
 * input, so an input replays the same way alone. The gateway is replaced
 * by stubs (no agents are connected). SigV4 and HTTP are fuzzed
 * elsewhere: this is what an authenticated caller can send.
 *
 * Input: up to 16 calls, each: a byte (bit 0: KMS, else SSM; bits 1-2:
 * the caller: admin, an IAM user without policies, a managed instance),
 * an action byte (an index into the actions below; 0xff: the action name
 * follows, length-prefixed), and the request body, length-prefixed JSON.
 * String values "$KEY", "$ACTIVATION", "$SESSION" and "$INSTANCE" become
 * the last key, activation and session created and the registered
 * instance, so calls can refer to what earlier ones made. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/err.h"
#include "server/api.h"
#include "server/api_kms.h"
#include "server/api_ssm.h"
#include "server/authz.h"
#include "server/gateway.h"
#include "server/kms.h"
#include "server/store.h"
#include "fuzzin.h"

#define ACCT "123456789012"
#define T0 ((int64_t)1767225600000)	/* 2026-01-01 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- gateway stubs (weak: the real gateway wins if linked in) ---------- */

__attribute__((weak)) int
gateway_instance_online(struct gateway *gw, const char *instance_id)
{
	(void)gw;
	return instance_id[0] != '\0';
}

__attribute__((weak)) int
gateway_start_session(struct gateway *gw, const char *instance_id,
    const char *session_id, const char *document_name,
    json_t *document_content, json_t *parameters, const char *owner_arn,
    const char *run_as_user)
{
	(void)gw;
	(void)instance_id;
	(void)session_id;
	(void)document_name;
	(void)document_content;
	(void)parameters;
	(void)owner_arn;
	(void)run_as_user;
	return 0;
}

__attribute__((weak)) int
gateway_terminate_session(struct gateway *gw, const char *session_id,
    const char *reason)
{
	(void)gw;
	(void)session_id;
	(void)reason;
	return 0;
}

__attribute__((weak)) void
gateway_disconnect_instance(struct gateway *gw, const char *instance_id)
{
	(void)gw;
	(void)instance_id;
}

/* ---- the calls --------------------------------------------------------- */

static const char *const ssm_actions[] = {
	"AddTagsToResource", "CreateActivation", "CreateDocument",
	"DeleteActivation", "DeleteDocument", "DeregisterManagedInstance",
	"DescribeActivations", "DescribeDocument",
	"DescribeInstanceInformation", "DescribeSessions",
	"GetConnectionStatus", "GetDocument", "ListDocumentVersions",
	"ListDocuments", "ListTagsForResource", "RemoveTagsFromResource",
	"ResumeSession", "StartSession", "TerminateSession", "UpdateDocument",
	"UpdateDocumentDefaultVersion",
};

static const char *const kms_actions[] = {
	"CancelKeyDeletion", "CreateAlias", "CreateKey", "Decrypt",
	"DeleteAlias", "DescribeKey", "DisableKey", "EnableKey", "Encrypt",
	"GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GetKeyPolicy",
	"ListAliases", "ListKeys", "ListResourceTags", "PutKeyPolicy",
	"ScheduleKeyDeletion", "TagResource", "UntagResource", "UpdateAlias",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct fx {
	char dir[256];
	struct server srv;
	struct principal who[3];
	char key[128], activation[64], session[SESSION_ID_MAX];
	char instance[21];
};

static void
replace_refs(struct fx *f, json_t *j, int depth)
{
	static const char *const names[] = { "$KEY", "$ACTIVATION",
	    "$SESSION", "$INSTANCE" };
	const char *vals[] = { f->key, f->activation, f->session,
	    f->instance };
	const char *k;
	json_t *v;
	size_t i, n;

	if (depth > 16)
		return;
	if (json_is_object(j)) {
		json_object_foreach(j, k, v) {
			if (!json_is_string(v)) {
				replace_refs(f, v, depth + 1);
				continue;
			}
			for (n = 0; n < NELEM(names); n++)
				if (strcmp(json_string_value(v), names[n]) ==
				    0) {
					json_object_set_new(j, k,
					    json_string(vals[n]));
					break;	/* v is gone */
				}
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v) {
			if (!json_is_string(v)) {
				replace_refs(f, v, depth + 1);
				continue;
			}
			for (n = 0; n < NELEM(names); n++)
				if (strcmp(json_string_value(v), names[n]) ==
				    0) {
					json_array_set_new(j, i,
					    json_string(vals[n]));
					break;	/* v is gone */
				}
		}
	}
}

static void
remember(char *dst, size_t size, json_t *v)
{
	if (json_is_string(v))
		snprintf(dst, size, "%s", json_string_value(v));
}

static void
rm_dir(const char *dir)
{
	char p[512];
	struct dirent *e;
	DIR *d;

	if ((d = opendir(dir)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

static int
fx_open(struct fx *f)
{
	struct kms_root_opts o = { NULL, 1 };
	struct activation_new a;
	char id[STORE_ACTIVATION_ID_SIZE], code[STORE_ACTIVATION_CODE_LEN + 1];
	char role[STORE_IAM_ROLE_SIZE], path[300];
	const char *tmp = getenv("TMPDIR");

	/* tmpfs when there is one: SQLite syncs cost most of an input. */
	if ((tmp == NULL || tmp[0] == '\0') && access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "%s/ph-fuzz-api-XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/porthole.db", f->dir);
	if (store_open(&f->srv.store, path) != 0 ||
	    kms_open(&f->srv.kms, f->dir, &o) != 0)
		return -1;
	f->srv.gw = NULL;
	snprintf(f->srv.region, sizeof(f->srv.region), "us-east-1");
	snprintf(f->srv.account_id, sizeof(f->srv.account_id), ACCT);
	/* One registered instance, for StartSession and friends. */
	memset(&a, 0, sizeof(a));
	a.iam_role = "porthole-role";
	a.registration_limit = 5;
	a.expiration_ms = T0 + 86400000;
	if (store_activation_create(f->srv.store, &a, T0, id, code) != 0 ||
	    store_activation_register(f->srv.store, id, code, T0, "fuzz",
	    "fp", f->instance, role) != 0)
		return -1;
	snprintf(f->who[0].name, sizeof(f->who[0].name), "admin");
	snprintf(f->who[0].arn, sizeof(f->who[0].arn),
	    "arn:aws:iam::" ACCT ":user/admin");
	f->who[0].is_root_admin = 1;
	f->who[0].active = 1;
	snprintf(f->who[1].name, sizeof(f->who[1].name), "bob");
	snprintf(f->who[1].arn, sizeof(f->who[1].arn),
	    "arn:aws:iam::" ACCT ":user/bob");
	f->who[1].active = 1;
	f->who[2].active = 1;
	f->who[2].is_instance = 1;
	snprintf(f->who[2].instance_id, sizeof(f->who[2].instance_id), "%s",
	    f->instance);
	snprintf(f->who[2].arn, sizeof(f->who[2].arn),
	    "arn:aws:sts::" ACCT ":assumed-role/porthole-role/%s",
	    f->instance);
	snprintf(f->who[2].role_arn, sizeof(f->who[2].role_arn),
	    "arn:aws:iam::" ACCT ":role/porthole-role");
	return 0;
}

static void
fx_close(struct fx *f)
{
	if (f->srv.kms != NULL)
		kms_close(f->srv.kms);
	authz_free(&f->srv);
	if (f->srv.store != NULL)
		store_close(f->srv.store);
	if (f->dir[0] != '\0')
		rm_dir(f->dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzzin in = { data, size };
	struct api_error err;
	struct api_call call;
	struct fx f;
	json_t *body, *out;
	const uint8_t *p;
	char action[64], *dump;
	size_t n, step;
	uint8_t sel, a;
	int rc, kms;

	if (fx_open(&f) != 0) {
		fx_close(&f);
		abort();	/* the machine, not the input: say so */
	}
	for (step = 0; step < 16 && in.n > 0; step++) {
		sel = fuzzin_u8(&in);
		a = fuzzin_u8(&in);
		kms = sel & 1;
		if (a == 0xff) {
			p = fuzzin_bytes(&in, sizeof(action) - 1, &n);
			memcpy(action, p, n);
			action[n] = '\0';
		} else
			snprintf(action, sizeof(action), "%s", kms ?
			    kms_actions[a % NELEM(kms_actions)] :
			    ssm_actions[a % NELEM(ssm_actions)]);
		p = fuzzin_bytes(&in, 16384, &n);
		body = json_loadb((const char *)p, n, 0, NULL);
		if (!json_is_object(body)) {
			json_decref(body);
			continue;	/* api.c refuses it before dispatch */
		}
		replace_refs(&f, body, 0);
		memset(&call, 0, sizeof(call));
		call.srv = &f.srv;
		call.principal = &f.who[(sel >> 1) % 3];
		call.host = "127.0.0.1:8443";
		call.request_id = "fuzz";
		call.now_ms = T0 + (int64_t)step * 1000;
		memset(&err, 0, sizeof(err));
		out = NULL;
		rc = kms ? api_kms_dispatch(&call, action, body, &out, &err) :
		    api_ssm_dispatch(&call, action, body, &out, &err);
		if (rc == 0) {
			if (!json_is_object(out))
				abort();
			if ((dump = json_dumps(out, JSON_COMPACT)) == NULL)
				abort();
			free(dump);
			remember(f.key, sizeof(f.key), json_object_get(
			    json_object_get(out, "KeyMetadata"), "KeyId"));
			remember(f.activation, sizeof(f.activation),
			    json_object_get(out, "ActivationId"));
			remember(f.session, sizeof(f.session),
			    json_object_get(out, "SessionId"));
		} else if (out != NULL || err.status < 400 ||
		    err.status > 599 || err.type[0] == '\0')
			abort();	/* a failure is one AWS error */
		json_decref(out);
		json_decref(body);
	}
	fx_close(&f);
	return 0;
}
