/* api_kms: Key Management Service actions. Each handler validates its
 * request against botocore's constraints (api_json), finds the key (key
 * id, key ARN, alias name or alias ARN where AWS accepts them), asks the
 * key policy (with authz_check as the account's IAM), checks the key's
 * state, then acts on the key store. Errors and their wording follow AWS.
 * Plaintexts and data keys are wiped from our buffers after use and never
 * logged. */
#include "server/api_kms.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "server/api_json.h"
#include "server/authz.h"
#include "server/kms.h"
#include "server/kms_policy.h"

#define KMS_DAY_MS ((int64_t)24 * 3600 * 1000)
#define KMS_ARN_MAX 512
#define KMS_DATA_KEY_MAX 1024

/* Which references to a key an action accepts. */
enum kms_ref {
	KMS_REF_KEY = 0,        /* key id or key ARN */
	KMS_REF_ANY = 1,        /* also alias name or alias ARN */
};

static const struct api_str kms_key_id_d = { "KeyId", "keyId", 1, 1, 2048,
    NULL, NULL, NULL };
static const struct api_str kms_opt_key_id_d = { "KeyId", "keyId", 0, 1,
    2048, NULL, NULL, NULL };
static const char *const kms_algs[] = { "SYMMETRIC_DEFAULT",
    "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE", NULL };
static const struct api_str kms_alg_d = { "EncryptionAlgorithm",
    "encryptionAlgorithm", 0, 0, 0, NULL, NULL, kms_algs };

/* ---- shared pieces ------------------------------------------------------ */

static int
kms_internal(struct api_error *err, const char *what, int rc)
{
	log_error("event=api_error op=kms_%s err=\"%s\"", what,
	    ph_strerror(rc));
	return api_error_set(err, 500, "KMSInternalException",
	    "An internal error occurred.");
}

static void
kms_key_arn(const struct api_call *c, const char *id, char *out,
    size_t size)
{
	snprintf(out, size, "arn:aws:kms:%s:%s:key/%s", c->srv->region,
	    c->srv->account_id, id);
}

static void
kms_alias_arn(const struct api_call *c, const char *name, char *out,
    size_t size)
{
	snprintf(out, size, "arn:aws:kms:%s:%s:%s", c->srv->region,
	    c->srv->account_id, name);
}

static int
kms_is_uuid(const char *s)
{
	return api_pat_uuid(s);
}

static int
kms_not_found_key(const struct api_call *c, const char *id,
    struct api_error *err)
{
	char arn[KMS_ARN_MAX];

	kms_key_arn(c, id, arn, sizeof(arn));
	return api_error_set(err, 400, "NotFoundException",
	    "Key '%s' does not exist", arn);
}

/* Find the key a reference names. rec is filled on success (clear it). */
static int
kms_resolve(const struct api_call *c, const char *ref, int accept,
    struct kms_key_rec *rec, struct api_error *err)
{
	char prefix[128], id[KMS_KEY_ID_SIZE], arn[KMS_ARN_MAX];
	const char *rest = ref;
	int rc, n;

	memset(rec, 0, sizeof(*rec));
	if (strncmp(ref, "arn:", 4) == 0) {
		n = snprintf(prefix, sizeof(prefix), "arn:aws:kms:%s:%s:",
		    c->srv->region, c->srv->account_id);
		if (n < 0 || strncmp(ref, prefix, (size_t)n) != 0)
			return api_error_set(err, 400, "NotFoundException",
			    "Invalid arn %.300s", ref);
		rest = ref + n;
		if (strncmp(rest, "key/", 4) == 0) {
			rest += 4;
			if (!kms_is_uuid(rest))
				return api_error_set(err, 400,
				    "NotFoundException", "Invalid arn %.300s",
				    ref);
		} else if (strncmp(rest, "alias/", 6) != 0)
			return api_error_set(err, 400, "NotFoundException",
			    "Invalid arn %.300s", ref);
	}
	if (strncmp(rest, "alias/", 6) == 0) {
		if (accept != KMS_REF_ANY)
			return api_error_set(err, 400, "NotFoundException",
			    "Invalid keyId %.300s", ref);
		rc = strlen(rest) > KMS_ALIAS_MAX ? PH_ERR_NOTFOUND :
		    kms_alias_target(c->srv->kms, rest, id);
		if (rc == PH_ERR_NOTFOUND) {
			kms_alias_arn(c, rest, arn, sizeof(arn));
			return api_error_set(err, 400, "NotFoundException",
			    "Alias %.300s is not found.", arn);
		}
		if (rc != 0)
			return kms_internal(err, "alias_target", rc);
		rest = id;
	} else if (!kms_is_uuid(rest))
		return api_error_set(err, 400, "NotFoundException",
		    "Invalid keyId %.300s", ref);
	rc = kms_key_get(c->srv->kms, rest, rec);
	if (rc == PH_ERR_NOTFOUND)
		return kms_not_found_key(c, rest, err);
	if (rc != 0)
		return kms_internal(err, "key_get", rc);
	return 0;
}

/* The request context a key policy's Conditions read. kms:ViaService is
 * never set: porthole's KMS is only ever called directly (an agent's
 * Decrypt during a Session Manager session is its own call with instance
 * credentials, for which AWS sets no ViaService either). */
#define KMS_CTX_FIXED 12
#define KMS_CTX_EC_MAX 64         /* encryption-context pairs evaluated */

struct kms_req_ctx {
	struct policy_ctx kv[KMS_CTX_FIXED + KMS_CTX_EC_MAX + 1];
	const char *one[KMS_CTX_FIXED + KMS_CTX_EC_MAX];
	const char *ec_keys[KMS_CTX_EC_MAX];
	char *names[KMS_CTX_EC_MAX];      /* "kms:EncryptionContext:KEY" */
	size_t n, nextra, nnames;
	char now[32], epoch[24];
};

static void
kms_ctx_add(struct kms_req_ctx *k, const char *key, const char *value)
{
	if (value == NULL || value[0] == '\0' ||
	    k->n >= KMS_CTX_FIXED + KMS_CTX_EC_MAX)
		return;
	k->one[k->n] = value;
	k->kv[k->n].key = key;
	k->kv[k->n].values = &k->one[k->n];
	k->kv[k->n].nvalues = 1;
	k->n++;
}

static void
kms_ctx_free(struct kms_req_ctx *k)
{
	size_t i;

	for (i = 0; i < k->nnames; i++)
		free(k->names[i]);
	k->nnames = k->n = 0;
}

/* The KMS keys first (k->nextra of them: what IAM's evaluation adds to
 * its own), then the principal's and the request's global keys. */
static int
kms_ctx_build(const struct api_call *c, json_t *ec, struct kms_req_ctx *k)
{
	const struct principal *p = c->principal;
	const char *key;
	json_t *val;
	time_t t;
	struct tm tm;
	size_t nk = 0, len;
	char *name;

	memset(k, 0, sizeof(*k));
	json_object_foreach(ec, key, val) {
		if (nk >= KMS_CTX_EC_MAX) {
			kms_ctx_free(k);
			return PH_ERR_TOOBIG;
		}
		len = strlen("kms:EncryptionContext:") + strlen(key) + 1;
		if ((name = malloc(len)) == NULL) {
			kms_ctx_free(k);
			return PH_ERR_NOMEM;
		}
		snprintf(name, len, "kms:EncryptionContext:%s", key);
		k->names[k->nnames++] = name;
		kms_ctx_add(k, name, json_string_value(val));
		k->ec_keys[nk++] = key;
	}
	if (nk > 0) {
		k->kv[k->n].key = "kms:EncryptionContextKeys";
		k->kv[k->n].values = k->ec_keys;
		k->kv[k->n].nvalues = nk;
		k->n++;
	}
	kms_ctx_add(k, "kms:CallerAccount", c->srv->account_id);
	k->nextra = k->n;
	if (p != NULL) {
		/* A role session's aws:PrincipalArn is its role's ARN. */
		kms_ctx_add(k, "aws:PrincipalArn", p->role_arn[0] != '\0' ?
		    p->role_arn : p->arn);
		kms_ctx_add(k, "aws:PrincipalType", p->kind ==
		    PRINCIPAL_USER ? "User" : "AssumedRole");
		kms_ctx_add(k, "aws:userid", p->user_id);
		if (p->kind == PRINCIPAL_USER)
			kms_ctx_add(k, "aws:username", p->name);
		kms_ctx_add(k, "aws:SourceIp", p->origin.source_ip);
	}
	kms_ctx_add(k, "aws:PrincipalAccount", c->srv->account_id);
	kms_ctx_add(k, "aws:SecureTransport", "true");
	kms_ctx_add(k, "aws:RequestedRegion", c->srv->region);
	t = (time_t)(c->now_ms / 1000);
	if (gmtime_r(&t, &tm) != NULL &&
	    strftime(k->now, sizeof(k->now), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
		kms_ctx_add(k, "aws:CurrentTime", k->now);
	snprintf(k->epoch, sizeof(k->epoch), "%lld", (long long)t);
	kms_ctx_add(k, "aws:EpochTime", k->epoch);
	return 0;
}

/* The key policy's decision, with authz_check standing for IAM; ec is
 * the request's EncryptionContext (NULL: none). */
static int
kms_allowed(const struct api_call *c, const struct kms_key_rec *rec,
    const char *action, json_t *ec, struct api_error *err)
{
	const struct principal *p = c->principal;
	struct kms_policy_who who;
	struct kms_req_ctx *k;
	char arn[KMS_ARN_MAX];
	const char *why;
	int d, rc;

	kms_key_arn(c, rec->id, arn, sizeof(arn));
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return kms_internal(err, "policy", PH_ERR_NOMEM);
	if ((rc = kms_ctx_build(c, ec, k)) != 0) {
		free(k);
		if (rc == PH_ERR_TOOBIG)
			return api_error_set(err, 400, "ValidationException",
			    "The encryption context has more than %d pairs.",
			    KMS_CTX_EC_MAX);
		return kms_internal(err, "policy", rc);
	}
	memset(&who, 0, sizeof(who));
	who.arn = p != NULL ? p->arn : NULL;
	who.role_arn = p != NULL && p->role_arn[0] != '\0' ? p->role_arn :
	    NULL;
	who.account_id = c->srv->account_id;
	/* Identity policies see the KMS keys too; authz adds the global
	 * ones itself. */
	who.iam_allows = authz_check_ctx(c->srv, p, action, arn, k->kv,
	    k->nextra) == 0;
	who.ctx = k->kv;
	who.nctx = k->n;
	d = kms_policy_eval_text(rec->policy, &who, action, arn);
	why = "no resource-based policy allows the";
	if (d == KMS_POLICY_IMPLICIT_DENY && !who.iam_allows) {
		/* The key policy leaves it to IAM, which says no. */
		who.iam_allows = 1;
		if (kms_policy_eval_text(rec->policy, &who, action, arn) ==
		    KMS_POLICY_ALLOW)
			why = "no identity-based policy allows the";
	}
	kms_ctx_free(k);
	free(k);
	if (d == KMS_POLICY_ALLOW)
		return 0;
	log_info("event=kms_policy_deny principal=%s action=%s key=%s",
	    who.arn != NULL ? who.arn : "-", action, rec->id);
	if (d == KMS_POLICY_EXPLICIT_DENY)
		return api_error_set(err, 400, "AccessDeniedException",
		    "User: %s is not authorized to perform: %s on resource: "
		    "%s with an explicit deny in a resource-based policy",
		    who.arn != NULL ? who.arn : "anonymous", action, arn);
	return api_error_set(err, 400, "AccessDeniedException",
	    "User: %s is not authorized to perform: %s on resource: %s "
	    "because %s %s action", who.arn != NULL ? who.arn : "anonymous",
	    action, arn, why, action);
}

static int
kms_allowed_action(const struct api_call *c, const struct kms_key_rec *rec,
    const char *action, struct api_error *err)
{
	return kms_allowed(c, rec, action, NULL, err);
}

/* Keys used for cryptography must be Enabled. */
static int
kms_usable(const struct api_call *c, const struct kms_key_rec *rec,
    struct api_error *err)
{
	char arn[KMS_ARN_MAX];

	kms_key_arn(c, rec->id, arn, sizeof(arn));
	if (rec->state == KMS_STATE_DISABLED)
		return api_error_set(err, 400, "DisabledException",
		    "%s is disabled.", arn);
	if (rec->state == KMS_STATE_PENDING_DELETION)
		return api_error_set(err, 400, "KMSInvalidStateException",
		    "%s is pending deletion.", arn);
	return 0;
}

static int
kms_not_pending(const struct api_call *c, const struct kms_key_rec *rec,
    struct api_error *err)
{
	char arn[KMS_ARN_MAX];

	if (rec->state != KMS_STATE_PENDING_DELETION)
		return 0;
	kms_key_arn(c, rec->id, arn, sizeof(arn));
	return api_error_set(err, 400, "KMSInvalidStateException",
	    "%s is pending deletion.", arn);
}

static const char *
kms_state_name(int state)
{
	switch (state) {
	case KMS_STATE_ENABLED: return "Enabled";
	case KMS_STATE_DISABLED: return "Disabled";
	case KMS_STATE_PENDING_DELETION: return "PendingDeletion";
	default: return "Unavailable";
	}
}

static json_t *
kms_metadata(const struct api_call *c, const struct kms_key_rec *rec)
{
	char arn[KMS_ARN_MAX];
	json_t *m;

	kms_key_arn(c, rec->id, arn, sizeof(arn));
	m = json_pack("{s:s, s:s, s:s, s:o, s:b, s:s, s:s, s:s, s:s, s:s, "
	    "s:s, s:s, s:[s], s:b}",
	    "AWSAccountId", c->srv->account_id,
	    "KeyId", rec->id,
	    "Arn", arn,
	    "CreationDate", api_json_time(rec->created_ms),
	    "Enabled", rec->state == KMS_STATE_ENABLED,
	    "Description", rec->description != NULL ? rec->description : "",
	    "KeyUsage", "ENCRYPT_DECRYPT",
	    "KeyState", kms_state_name(rec->state),
	    "Origin", "AWS_KMS",
	    "KeyManager", "CUSTOMER",
	    "CustomerMasterKeySpec", "SYMMETRIC_DEFAULT",
	    "KeySpec", "SYMMETRIC_DEFAULT",
	    "EncryptionAlgorithms", "SYMMETRIC_DEFAULT",
	    "MultiRegion", 0);
	if (m != NULL && rec->state == KMS_STATE_PENDING_DELETION)
		json_object_set_new(m, "DeletionDate",
		    api_json_time(rec->deletion_ms));
	return m;
}

/* GrantTokens (ignored: porthole has no grants yet), DryRun and
 * EncryptionAlgorithm, common to the cryptographic actions. */
static void
kms_v_common(struct api_v *v, json_t *in, const char **alg)
{
	json_t *g, *e;
	size_t i;

	g = api_v_list(v, in, "GrantTokens", "grantTokens", 0, 0, 10);
	if (g != NULL)
		json_array_foreach(g, i, e)
			if (!json_is_string(e) ||
			    json_string_length(e) > 8192)
				api_v_type(v, "grantTokens", "a list of "
				    "strings");
	*alg = api_v_str(v, in, &kms_alg_d);
	e = json_object_get(in, "DryRun");
	if (e != NULL && !json_is_null(e) && !json_is_boolean(e))
		api_v_type(v, "dryRun", "a boolean");
}

static int
kms_check_alg(const char *alg, struct api_error *err)
{
	if (alg == NULL || strcmp(alg, "SYMMETRIC_DEFAULT") == 0)
		return 0;
	return api_error_set(err, 400, "InvalidKeyUsageException",
	    "The encryption algorithm %s is not supported by a "
	    "SYMMETRIC_DEFAULT key.", alg);
}

static int
kms_dry_run(json_t *in, struct api_error *err)
{
	if (!json_is_true(json_object_get(in, "DryRun")))
		return 0;
	return api_error_set(err, 412, "DryRunOperationException",
	    "The request would have succeeded, but the DryRun option is "
	    "set.");
}

/* EncryptionContext: a map of strings. NULL if absent. */
static json_t *
kms_v_context(struct api_v *v, json_t *in)
{
	const char *key;
	json_t *o, *val;

	o = api_v_object(v, in, "EncryptionContext", "encryptionContext", 0);
	if (o == NULL)
		return NULL;
	json_object_foreach(o, key, val) {
		if (!json_is_string(val)) {
			api_v_type(v, "encryptionContext", "a map of strings");
			return NULL;
		}
		if (strlen(json_string_value(val)) !=
		    json_string_length(val)) {
			api_v_fail(v, "encryptionContext", NULL, "Member must "
			    "not contain NUL");
			return NULL;
		}
	}
	return o;
}

/* A blob member (base64 text) decoded into out; min..max bytes. */
static int
kms_v_blob(struct api_v *v, json_t *in, const char *member,
    const char *path, int required, size_t min, size_t max,
    struct buf *out)
{
	json_t *val = json_object_get(in, member);
	char c[128];
	const char *s;
	size_t len;

	if (val == NULL || json_is_null(val)) {
		if (required)
			api_v_fail(v, path, NULL, "Member must not be null");
		return required ? -1 : 0;
	}
	if (!json_is_string(val)) {
		api_v_type(v, path, "a base64-encoded blob");
		return -1;
	}
	s = json_string_value(val);
	len = json_string_length(val);
	/* Decoding more than max allows is pointless: judge by length. */
	if (len / 4 * 3 > max + 3 || len > (max + 2) / 3 * 4 + 4) {
		snprintf(c, sizeof(c), "Member must have length less than or "
		    "equal to %zu", max);
		api_v_fail(v, path, NULL, c);
		return -1;
	}
	if (kms_b64_decode(s, len, out) != 0) {
		api_v_type(v, path, "a base64-encoded blob");
		return -1;
	}
	if (out->len < min) {
		snprintf(c, sizeof(c), "Member must have length greater than "
		    "or equal to %zu", min);
		api_v_fail(v, path, NULL, c);
		return -1;
	}
	if (out->len > max) {
		snprintf(c, sizeof(c), "Member must have length less than or "
		    "equal to %zu", max);
		api_v_fail(v, path, NULL, c);
		return -1;
	}
	return 1;
}

static int
kms_set_blob(json_t *out, const char *member, const uint8_t *p, size_t n)
{
	char *s = kms_b64_encode(p, n);
	int rc;

	if (s == NULL)
		return PH_ERR_NOMEM;
	rc = json_object_set_new(out, member, json_string(s));
	OPENSSL_cleanse(s, strlen(s));
	free(s);
	return rc == 0 ? 0 : PH_ERR_NOMEM;
}

/* Tags [{TagKey, TagValue}] into tags[] (max entries). -1 on error. */
static int
kms_v_tags(struct api_v *v, json_t *list, struct kms_tag *tags, size_t max)
{
	static const struct api_str key_d = { "TagKey", NULL, 1, 1, 128, NULL,
	    NULL, NULL };
	static const struct api_str val_d = { "TagValue", NULL, 1, 0, 256,
	    NULL, NULL, NULL };
	char p[64];
	size_t i, n = 0;
	json_t *t;

	json_array_foreach(list, i, t) {
		const char *k = NULL, *val = NULL;

		if (n >= max)
			return -1;
		snprintf(p, sizeof(p), "tags.%zu.member", i + 1);
		if (!json_is_object(t)) {
			api_v_type(v, p, "a structure");
			return -1;
		}
		snprintf(p, sizeof(p), "tags.%zu.member.tagKey", i + 1);
		api_v_str_value(v, json_object_get(t, "TagKey"), p, &key_d,
		    &k);
		snprintf(p, sizeof(p), "tags.%zu.member.tagValue", i + 1);
		api_v_str_value(v, json_object_get(t, "TagValue"), p, &val_d,
		    &val);
		if (k != NULL && val != NULL) {
			tags[n].key = k;
			tags[n].value = val;
			n++;
		}
	}
	return (int)n;
}

static int
kms_check_tag_keys(const struct kms_tag *tags, int n, struct api_error *err)
{
	int i;

	for (i = 0; i < n; i++)
		if (strncmp(tags[i].key, "aws:", 4) == 0)
			return api_error_set(err, 400, "TagException",
			    "Tags beginning with aws: are reserved.");
	return 0;
}

/* Limit and Marker of a list request. */
static int
kms_paging(struct api_v *v, json_t *in, int64_t max, int64_t dflt,
    int *limit, int *offset, struct api_error *err)
{
	static const struct api_str marker_d = { "Marker", "marker", 0, 1,
	    1024, NULL, NULL, NULL };
	const char *m;
	int64_t n;

	api_v_int(v, in, "Limit", "limit", 0, 1, max, dflt, &n);
	*limit = (int)n;
	*offset = 0;
	m = api_v_str(v, in, &marker_d);
	if (m != NULL && api_token_decode(m, offset) != 0)
		return api_error_set(err, 400, "InvalidMarkerException",
		    "Invalid marker");
	return 0;
}

static void
kms_marker(json_t *out, int more, int offset)
{
	char tok[32];

	json_object_set_new(out, "Truncated", json_boolean(more));
	if (!more)
		return;
	api_token_encode(offset, tok);
	json_object_set_new(out, "NextMarker", json_string(tok));
}

/* A policy document for a key: shape and lockout safety. */
static int
kms_check_new_policy(const struct api_call *c, const char *policy,
    int bypass, const char *key_arn, struct api_error *err)
{
	const struct principal *p = c->principal;
	struct kms_policy *kp = NULL;
	struct kms_policy_who who;
	char msg[256];
	int d;

	if (kms_policy_parse(policy, &kp, msg, sizeof(msg)) != 0)
		return api_error_set(err, 400,
		    "MalformedPolicyDocumentException", "%s", msg);
	if (!bypass) {
		memset(&who, 0, sizeof(who));
		who.arn = p != NULL ? p->arn : NULL;
		who.role_arn = p != NULL && p->role_arn[0] != '\0' ?
		    p->role_arn : NULL;
		who.account_id = c->srv->account_id;
		who.iam_allows = authz_check(c->srv, p, "kms:PutKeyPolicy",
		    key_arn) == 0;
		d = kms_policy_eval(kp, &who, "kms:PutKeyPolicy", key_arn);
		if (d != KMS_POLICY_ALLOW) {
			kms_policy_free(kp);
			return api_error_set(err, 400,
			    "MalformedPolicyDocumentException", "The new key "
			    "policy will not allow you to update the key "
			    "policy in the future.");
		}
	}
	kms_policy_free(kp);
	return 0;
}

/* ---- keys --------------------------------------------------------------- */

static int
kms_unsupported(const char *what, const char *value, const char *want,
    struct api_error *err)
{
	return api_error_set(err, 400, "UnsupportedOperationException",
	    "%s %s is not supported: porthole's KMS makes %s keys only.", what,
	    value, want);
}

static int
kms_create_key(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	static const struct api_str policy_d = { "Policy", "policy", 0, 1,
	    131072, NULL, NULL, NULL };
	static const struct api_str desc_d = { "Description", "description",
	    0, 0, 8192, NULL, NULL, NULL };
	static const char *const usages[] = { "SIGN_VERIFY", "ENCRYPT_DECRYPT",
	    "GENERATE_VERIFY_MAC", "KEY_AGREEMENT", NULL };
	static const struct api_str usage_d = { "KeyUsage", "keyUsage", 0, 0,
	    0, NULL, NULL, usages };
	static const char *const specs[] = { "RSA_2048", "RSA_3072",
	    "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
	    "ECC_SECG_P256K1", "SYMMETRIC_DEFAULT", "HMAC_224", "HMAC_256",
	    "HMAC_384", "HMAC_512", "SM2", "ML_DSA_44", "ML_DSA_65",
	    "ML_DSA_87", "ECC_NIST_EDWARDS25519", NULL };
	static const struct api_str spec_d = { "KeySpec", "keySpec", 0, 0, 0,
	    NULL, NULL, specs };
	static const struct api_str cmk_d = { "CustomerMasterKeySpec",
	    "customerMasterKeySpec", 0, 0, 0, NULL, NULL, specs };
	static const char *const origins[] = { "AWS_KMS", "EXTERNAL",
	    "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE", NULL };
	static const struct api_str origin_d = { "Origin", "origin", 0, 0, 0,
	    NULL, NULL, origins };
	static const struct api_str store_d = { "CustomKeyStoreId",
	    "customKeyStoreId", 0, 1, 64, NULL, NULL, NULL };
	static const struct api_str xks_d = { "XksKeyId", "xksKeyId", 0, 1,
	    128, NULL, NULL, NULL };
	const char *policy, *desc, *usage, *spec, *cmk, *origin, *cks, *xks;
	struct kms_tag tags[KMS_TAGS_MAX];
	struct kms_key_rec rec;
	char *dflt = NULL, arn[KMS_ARN_MAX];
	json_t *list, *b, *m;
	struct api_v v;
	int rc, ntags = 0, bypass;

	memset(&rec, 0, sizeof(rec));
	api_v_init(&v);
	policy = api_v_str(&v, in, &policy_d);
	desc = api_v_str(&v, in, &desc_d);
	usage = api_v_str(&v, in, &usage_d);
	spec = api_v_str(&v, in, &spec_d);
	cmk = api_v_str(&v, in, &cmk_d);
	origin = api_v_str(&v, in, &origin_d);
	cks = api_v_str(&v, in, &store_d);
	xks = api_v_str(&v, in, &xks_d);
	b = json_object_get(in, "BypassPolicyLockoutSafetyCheck");
	if (b != NULL && !json_is_null(b) && !json_is_boolean(b))
		api_v_type(&v, "bypassPolicyLockoutSafetyCheck", "a boolean");
	bypass = json_is_true(b);
	m = json_object_get(in, "MultiRegion");
	if (m != NULL && !json_is_null(m) && !json_is_boolean(m))
		api_v_type(&v, "multiRegion", "a boolean");
	list = api_v_list(&v, in, "Tags", "tags", 0, 0, 0);
	if (list != NULL && json_array_size(list) > KMS_TAGS_MAX)
		return api_error_set(err, 400, "TagException",
		    "Too many tags: a key has at most %d.", KMS_TAGS_MAX);
	if (list != NULL)
		ntags = kms_v_tags(&v, list, tags, KMS_TAGS_MAX);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if (ntags < 0)
		return api_error_set(err, 400, "TagException",
		    "The tags are not valid.");
	if (spec != NULL && cmk != NULL)
		return api_error_set(err, 400, "ValidationException",
		    "You cannot specify KeySpec and CustomerMasterKeySpec in "
		    "the same request. CustomerMasterKeySpec is deprecated.");
	if (usage != NULL && strcmp(usage, "ENCRYPT_DECRYPT") != 0)
		return kms_unsupported("KeyUsage", usage, "ENCRYPT_DECRYPT",
		    err);
	if (spec == NULL)
		spec = cmk;
	if (spec != NULL && strcmp(spec, "SYMMETRIC_DEFAULT") != 0)
		return kms_unsupported("KeySpec", spec, "SYMMETRIC_DEFAULT",
		    err);
	if (origin != NULL && strcmp(origin, "AWS_KMS") != 0)
		return kms_unsupported("Origin", origin, "AWS_KMS", err);
	if (cks != NULL || xks != NULL)
		return kms_unsupported("A custom key store", cks != NULL ? cks :
		    xks, "AWS_KMS", err);
	if (json_is_true(m))
		return kms_unsupported("MultiRegion", "true", "single-Region",
		    err);
	if ((rc = kms_check_tag_keys(tags, ntags, err)) != 0)
		return rc;
	if (authz_check(c->srv, c->principal, "kms:CreateKey", "*") != 0)
		return api_error_set(err, 400, "AccessDeniedException",
		    "User: %s is not authorized to perform: kms:CreateKey on "
		    "resource: * because no identity-based policy allows the "
		    "kms:CreateKey action", c->principal != NULL ?
		    c->principal->arn : "anonymous");
	if (policy != NULL) {
		/* The key does not exist yet: a policy naming its ARN is
		 * judged against "*"-like matching of any key ARN. */
		kms_key_arn(c, "00000000-0000-0000-0000-000000000000", arn,
		    sizeof(arn));
		if ((rc = kms_check_new_policy(c, policy, bypass, arn,
		    err)) != 0)
			return rc;
	} else {
		if ((dflt = kms_policy_default(c->srv->account_id)) == NULL)
			return kms_internal(err, "create_key", PH_ERR_NOMEM);
		policy = dflt;
	}
	rc = kms_key_create(c->srv->kms, desc, policy, tags, (size_t)ntags,
	    c->now_ms, &rec);
	free(dflt);
	if (rc != 0)
		return kms_internal(err, "create_key", rc);
	log_info("event=kms_key_created key=%s principal=%s", rec.id,
	    c->principal != NULL ? c->principal->arn : "-");
	json_object_set_new(out, "KeyMetadata", kms_metadata(c, &rec));
	kms_key_rec_clear(&rec);
	return 0;
}

/* Validate {KeyId} only, resolve and authorise: the shape of several
 * actions. */
static int
kms_key_action(const struct api_call *c, json_t *in, int accept,
    const char *action, struct kms_key_rec *rec, struct api_error *err)
{
	const char *ref;
	struct api_v v;
	int rc;

	memset(rec, 0, sizeof(*rec));
	api_v_init(&v);
	ref = api_v_str(&v, in, &kms_key_id_d);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = kms_resolve(c, ref, accept, rec, err)) != 0)
		return rc;
	if ((rc = kms_allowed_action(c, rec, action, err)) != 0) {
		kms_key_rec_clear(rec);
		return rc;
	}
	return 0;
}

static int
kms_describe_key(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct kms_key_rec rec;
	struct api_v v;
	int rc;

	api_v_init(&v);
	kms_v_common(&v, in, &(const char *){ NULL });
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = kms_key_action(c, in, KMS_REF_ANY, "kms:DescribeKey", &rec,
	    err)) != 0)
		return rc;
	json_object_set_new(out, "KeyMetadata", kms_metadata(c, &rec));
	kms_key_rec_clear(&rec);
	return 0;
}

struct kms_list {
	const struct api_call *c;
	json_t *list;
	int limit, n, more;
};

static int
kms_list_keys_cb(void *arg, const char *id)
{
	struct kms_list *l = arg;
	char arn[KMS_ARN_MAX];

	if (l->n >= l->limit) {
		l->more = 1;
		return 1;
	}
	kms_key_arn(l->c, id, arn, sizeof(arn));
	json_array_append_new(l->list, json_pack("{s:s, s:s}", "KeyId", id,
	    "KeyArn", arn));
	l->n++;
	return 0;
}

static int
kms_list_keys(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct kms_list l;
	struct api_v v;
	int rc, offset;

	memset(&l, 0, sizeof(l));
	api_v_init(&v);
	if ((rc = kms_paging(&v, in, 1000, 100, &l.limit, &offset,
	    err)) != 0)
		return rc;
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if (authz_check(c->srv, c->principal, "kms:ListKeys", "*") != 0)
		return api_error_set(err, 400, "AccessDeniedException",
		    "User: %s is not authorized to perform: kms:ListKeys on "
		    "resource: * because no identity-based policy allows the "
		    "kms:ListKeys action", c->principal != NULL ?
		    c->principal->arn : "anonymous");
	l.c = c;
	l.list = json_array();
	json_object_set_new(out, "Keys", l.list);
	if ((rc = kms_key_foreach(c->srv->kms, offset, l.limit + 1,
	    kms_list_keys_cb, &l)) != 0)
		return kms_internal(err, "list_keys", rc);
	kms_marker(out, l.more, offset + l.n);
	return 0;
}

static int
kms_enable_disable(const struct api_call *c, json_t *in, int enable,
    struct api_error *err)
{
	struct kms_key_rec rec;
	int rc;

	if ((rc = kms_key_action(c, in, KMS_REF_KEY, enable ?
	    "kms:EnableKey" : "kms:DisableKey", &rec, err)) != 0)
		return rc;
	if ((rc = kms_not_pending(c, &rec, err)) == 0) {
		rc = kms_key_set_state(c->srv->kms, rec.id, enable ?
		    KMS_STATE_ENABLED : KMS_STATE_DISABLED, 0, 0);
		if (rc != 0)
			rc = kms_internal(err, "set_state", rc);
	}
	kms_key_rec_clear(&rec);
	return rc;
}

static int
kms_enable_key(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	(void)out;
	return kms_enable_disable(c, in, 1, err);
}

static int
kms_disable_key(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	(void)out;
	return kms_enable_disable(c, in, 0, err);
}

static int
kms_schedule_key_deletion(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct kms_key_rec rec;
	char arn[KMS_ARN_MAX];
	struct api_v v;
	int64_t days, when;
	int rc;

	api_v_init(&v);
	/* The model allows 1-365; AWS enforces 7-30 for customer keys. */
	api_v_int(&v, in, "PendingWindowInDays", "pendingWindowInDays", 0, 7,
	    30, 30, &days);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = kms_key_action(c, in, KMS_REF_KEY,
	    "kms:ScheduleKeyDeletion", &rec, err)) != 0)
		return rc;
	if ((rc = kms_not_pending(c, &rec, err)) != 0)
		goto done;
	when = c->now_ms + days * KMS_DAY_MS;
	if ((rc = kms_key_set_state(c->srv->kms, rec.id,
	    KMS_STATE_PENDING_DELETION, when, (int)days)) != 0) {
		rc = kms_internal(err, "schedule_deletion", rc);
		goto done;
	}
	log_info("event=kms_key_deletion_scheduled key=%s days=%d", rec.id,
	    (int)days);
	kms_key_arn(c, rec.id, arn, sizeof(arn));
	json_object_set_new(out, "KeyId", json_string(arn));
	json_object_set_new(out, "DeletionDate", api_json_time(when));
	json_object_set_new(out, "KeyState", json_string("PendingDeletion"));
	json_object_set_new(out, "PendingWindowInDays",
	    json_integer(days));
done:
	kms_key_rec_clear(&rec);
	return rc;
}

static int
kms_cancel_key_deletion(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct kms_key_rec rec;
	char arn[KMS_ARN_MAX];
	int rc;

	if ((rc = kms_key_action(c, in, KMS_REF_KEY, "kms:CancelKeyDeletion",
	    &rec, err)) != 0)
		return rc;
	kms_key_arn(c, rec.id, arn, sizeof(arn));
	if (rec.state != KMS_STATE_PENDING_DELETION) {
		rc = api_error_set(err, 400, "KMSInvalidStateException",
		    "%s is not pending deletion.", arn);
		goto done;
	}
	/* As AWS: a key whose deletion is cancelled comes back Disabled. */
	if ((rc = kms_key_set_state(c->srv->kms, rec.id, KMS_STATE_DISABLED,
	    0, 0)) != 0) {
		rc = kms_internal(err, "cancel_deletion", rc);
		goto done;
	}
	json_object_set_new(out, "KeyId", json_string(arn));
done:
	kms_key_rec_clear(&rec);
	return rc;
}

/* ---- key policies ------------------------------------------------------- */

static const struct api_str kms_policy_name_d = { "PolicyName",
    "policyName", 0, 1, 128, NULL, NULL, NULL };

static int
kms_policy_name_ok(const char *name, struct api_error *err)
{
	if (name == NULL || strcmp(name, "default") == 0)
		return 0;
	return api_error_set(err, 400, "NotFoundException",
	    "No such policy exists");
}

static int
kms_get_key_policy(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct kms_key_rec rec;
	const char *name;
	struct api_v v;
	int rc;

	api_v_init(&v);
	name = api_v_str(&v, in, &kms_policy_name_d);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = kms_key_action(c, in, KMS_REF_KEY, "kms:GetKeyPolicy",
	    &rec, err)) != 0)
		return rc;
	if ((rc = kms_policy_name_ok(name, err)) == 0) {
		json_object_set_new(out, "Policy", json_string(rec.policy));
		json_object_set_new(out, "PolicyName", json_string("default"));
	}
	kms_key_rec_clear(&rec);
	return rc;
}

static int
kms_put_key_policy(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	static const struct api_str policy_d = { "Policy", "policy", 1, 1,
	    131072, NULL, NULL, NULL };
	struct kms_key_rec rec;
	const char *name, *policy;
	char arn[KMS_ARN_MAX];
	struct api_v v;
	json_t *b;
	int rc;

	(void)out;
	api_v_init(&v);
	name = api_v_str(&v, in, &kms_policy_name_d);
	policy = api_v_str(&v, in, &policy_d);
	b = json_object_get(in, "BypassPolicyLockoutSafetyCheck");
	if (b != NULL && !json_is_null(b) && !json_is_boolean(b))
		api_v_type(&v, "bypassPolicyLockoutSafetyCheck", "a boolean");
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = kms_key_action(c, in, KMS_REF_KEY, "kms:PutKeyPolicy",
	    &rec, err)) != 0)
		return rc;
	if ((rc = kms_policy_name_ok(name, err)) != 0 ||
	    (rc = kms_not_pending(c, &rec, err)) != 0)
		goto done;
	kms_key_arn(c, rec.id, arn, sizeof(arn));
	if ((rc = kms_check_new_policy(c, policy, json_is_true(b), arn,
	    err)) != 0)
		goto done;
	if ((rc = kms_key_set_policy(c->srv->kms, rec.id, policy)) != 0)
		rc = kms_internal(err, "put_key_policy", rc);
	else
		log_info("event=kms_key_policy_changed key=%s principal=%s",
		    rec.id, c->principal != NULL ? c->principal->arn : "-");
done:
	kms_key_rec_clear(&rec);
	return rc;
}

/* ---- aliases ------------------------------------------------------------ */

static int
kms_pat_alias(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr(":/_-", *s) == NULL)
			return 0;
	return 1;
}

static const struct api_str kms_alias_d = { "AliasName", "aliasName", 1, 1,
    256, kms_pat_alias, "^[a-zA-Z0-9:/_-]+$", NULL };
static const struct api_str kms_target_d = { "TargetKeyId", "targetKeyId",
    1, 1, 2048, NULL, NULL, NULL };

static int
kms_alias_name_ok(const char *name, struct api_error *err)
{
	if (strncmp(name, "alias/", 6) != 0 || name[6] == '\0')
		return api_error_set(err, 400, "ValidationException",
		    "Alias must start with the prefix \"alias/\". Please see "
		    "https://docs.aws.amazon.com/kms/latest/developerguide/"
		    "kms-alias.html");
	if (strncmp(name, "alias/aws/", 10) == 0 ||
	    strcmp(name, "alias/aws") == 0)
		return api_error_set(err, 400, "InvalidAliasNameException",
		    "Alias %s cannot begin with the reserved prefix "
		    "alias/aws/.", name);
	return 0;
}

static int
kms_alias_change(const struct api_call *c, json_t *in, int create,
    struct api_error *err)
{
	struct kms_key_rec rec, old;
	char arn[KMS_ARN_MAX], old_id[KMS_KEY_ID_SIZE];
	const char *name, *target, *action;
	struct api_v v;
	int rc;

	memset(&old, 0, sizeof(old));
	api_v_init(&v);
	name = api_v_str(&v, in, &kms_alias_d);
	target = api_v_str(&v, in, &kms_target_d);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = kms_alias_name_ok(name, err)) != 0)
		return rc;
	action = create ? "kms:CreateAlias" : "kms:UpdateAlias";
	kms_alias_arn(c, name, arn, sizeof(arn));
	if (!create) {
		rc = kms_alias_target(c->srv->kms, name, old_id);
		if (rc == PH_ERR_NOTFOUND)
			return api_error_set(err, 400, "NotFoundException",
			    "Alias %s is not found.", arn);
		if (rc != 0)
			return kms_internal(err, "alias_target", rc);
	}
	if ((rc = kms_resolve(c, target, KMS_REF_KEY, &rec, err)) != 0)
		return rc;
	if ((rc = kms_allowed_action(c, &rec, action, err)) != 0 ||
	    (rc = kms_not_pending(c, &rec, err)) != 0)
		goto done;
	if (!create) {
		/* The alias's current key must allow it too (AWS). */
		rc = kms_key_get(c->srv->kms, old_id, &old);
		if (rc == 0 && (rc = kms_allowed_action(c, &old, action,
		    err)) != 0)
			goto done;
		rc = kms_alias_update(c->srv->kms, name, rec.id, c->now_ms);
	} else
		rc = kms_alias_create(c->srv->kms, name, rec.id, c->now_ms);
	if (rc == PH_ERR_EXISTS)
		rc = api_error_set(err, 400, "AlreadyExistsException",
		    "An alias with the name %s already exists", arn);
	else if (rc == PH_ERR_NOTFOUND)
		rc = api_error_set(err, 400, "NotFoundException",
		    "Alias %s is not found.", arn);
	else if (rc != 0)
		rc = kms_internal(err, "alias", rc);
done:
	kms_key_rec_clear(&rec);
	kms_key_rec_clear(&old);
	return rc;
}

static int
kms_create_alias(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	(void)out;
	return kms_alias_change(c, in, 1, err);
}

static int
kms_update_alias(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	(void)out;
	return kms_alias_change(c, in, 0, err);
}

static int
kms_delete_alias(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	char arn[KMS_ARN_MAX], id[KMS_KEY_ID_SIZE];
	struct kms_key_rec rec;
	const char *name;
	struct api_v v;
	int rc;

	(void)out;
	memset(&rec, 0, sizeof(rec));
	api_v_init(&v);
	name = api_v_str(&v, in, &kms_alias_d);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = kms_alias_name_ok(name, err)) != 0)
		return rc;
	kms_alias_arn(c, name, arn, sizeof(arn));
	rc = kms_alias_target(c->srv->kms, name, id);
	if (rc == PH_ERR_NOTFOUND)
		return api_error_set(err, 400, "NotFoundException",
		    "Alias %s is not found.", arn);
	if (rc != 0)
		return kms_internal(err, "alias_target", rc);
	rc = kms_key_get(c->srv->kms, id, &rec);
	if (rc == 0 && (rc = kms_allowed_action(c, &rec, "kms:DeleteAlias",
	    err)) != 0)
		goto done;
	rc = kms_alias_delete(c->srv->kms, name);
	if (rc == PH_ERR_NOTFOUND)
		rc = api_error_set(err, 400, "NotFoundException",
		    "Alias %s is not found.", arn);
	else if (rc != 0)
		rc = kms_internal(err, "delete_alias", rc);
done:
	kms_key_rec_clear(&rec);
	return rc;
}

static int
kms_list_aliases_cb(void *arg, const struct kms_alias_rec *a)
{
	struct kms_list *l = arg;
	char arn[KMS_ARN_MAX];

	if (l->n >= l->limit) {
		l->more = 1;
		return 1;
	}
	kms_alias_arn(l->c, a->name, arn, sizeof(arn));
	json_array_append_new(l->list, json_pack("{s:s, s:s, s:s, s:o, s:o}",
	    "AliasName", a->name, "AliasArn", arn, "TargetKeyId", a->key_id,
	    "CreationDate", api_json_time(a->created_ms), "LastUpdatedDate",
	    api_json_time(a->updated_ms)));
	l->n++;
	return 0;
}

static int
kms_list_aliases(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct kms_key_rec rec;
	struct kms_list l;
	const char *ref;
	struct api_v v;
	int rc, offset;

	memset(&l, 0, sizeof(l));
	memset(&rec, 0, sizeof(rec));
	api_v_init(&v);
	ref = api_v_str(&v, in, &kms_opt_key_id_d);
	if ((rc = kms_paging(&v, in, 100, 50, &l.limit, &offset, err)) != 0)
		return rc;
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if (authz_check(c->srv, c->principal, "kms:ListAliases", "*") != 0)
		return api_error_set(err, 400, "AccessDeniedException",
		    "User: %s is not authorized to perform: kms:ListAliases on "
		    "resource: * because no identity-based policy allows the "
		    "kms:ListAliases action", c->principal != NULL ?
		    c->principal->arn : "anonymous");
	if (ref != NULL && (rc = kms_resolve(c, ref, KMS_REF_KEY, &rec,
	    err)) != 0)
		return rc;
	l.c = c;
	l.list = json_array();
	json_object_set_new(out, "Aliases", l.list);
	rc = kms_alias_foreach(c->srv->kms, ref != NULL ? rec.id : NULL,
	    offset, l.limit + 1, kms_list_aliases_cb, &l);
	kms_key_rec_clear(&rec);
	if (rc != 0)
		return kms_internal(err, "list_aliases", rc);
	kms_marker(out, l.more, offset + l.n);
	return 0;
}

/* ---- tags --------------------------------------------------------------- */

static int
kms_tag_resource(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct kms_tag tags[KMS_TAGS_MAX];
	struct kms_key_rec rec;
	struct api_v v;
	json_t *list;
	int rc, n = 0;

	(void)out;
	api_v_init(&v);
	list = api_v_list(&v, in, "Tags", "tags", 1, 0, 0);
	if (list != NULL && json_array_size(list) > KMS_TAGS_MAX)
		return api_error_set(err, 400, "LimitExceededException",
		    "A key can have at most %d tags.", KMS_TAGS_MAX);
	if (list != NULL)
		n = kms_v_tags(&v, list, tags, KMS_TAGS_MAX);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if (n < 0)
		return api_error_set(err, 400, "TagException",
		    "The tags are not valid.");
	if ((rc = kms_check_tag_keys(tags, n, err)) != 0)
		return rc;
	if ((rc = kms_key_action(c, in, KMS_REF_KEY, "kms:TagResource", &rec,
	    err)) != 0)
		return rc;
	if ((rc = kms_not_pending(c, &rec, err)) != 0)
		goto done;
	rc = kms_tags_add(c->srv->kms, rec.id, tags, (size_t)n);
	if (rc == PH_ERR_TOOBIG)
		rc = api_error_set(err, 400, "LimitExceededException",
		    "A key can have at most %d tags.", KMS_TAGS_MAX);
	else if (rc != 0)
		rc = kms_internal(err, "tag_resource", rc);
done:
	kms_key_rec_clear(&rec);
	return rc;
}

static int
kms_untag_resource(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	static const struct api_str key_d = { "TagKey", NULL, 1, 1, 128, NULL,
	    NULL, NULL };
	const char *keys[KMS_TAGS_MAX * 2];
	struct kms_key_rec rec;
	struct api_v v;
	json_t *list, *e;
	char p[64];
	size_t i, n = 0;
	int rc;

	(void)out;
	api_v_init(&v);
	list = api_v_list(&v, in, "TagKeys", "tagKeys", 1, 0, 0);
	if (list != NULL && json_array_size(list) > KMS_TAGS_MAX * 2)
		return api_error_set(err, 400, "TagException",
		    "Too many tag keys.");
	if (list != NULL) {
		json_array_foreach(list, i, e) {
			const char *k = NULL;

			snprintf(p, sizeof(p), "tagKeys.%zu.member", i + 1);
			if (api_v_str_value(&v, e, p, &key_d, &k) > 0)
				keys[n++] = k;
		}
	}
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = kms_key_action(c, in, KMS_REF_KEY, "kms:UntagResource",
	    &rec, err)) != 0)
		return rc;
	if ((rc = kms_not_pending(c, &rec, err)) == 0 &&
	    (rc = kms_tags_remove(c->srv->kms, rec.id, keys, n)) != 0)
		rc = kms_internal(err, "untag_resource", rc);
	kms_key_rec_clear(&rec);
	return rc;
}

struct kms_tag_list {
	json_t *list;
	int offset, limit, i, more;
};

static void
kms_tag_cb(void *arg, const char *key, const char *value)
{
	struct kms_tag_list *l = arg;
	int i = l->i++;

	if (i < l->offset)
		return;
	if (i >= l->offset + l->limit) {
		l->more = 1;
		return;
	}
	json_array_append_new(l->list, json_pack("{s:s, s:s}", "TagKey", key,
	    "TagValue", value));
}

static int
kms_list_resource_tags(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct kms_tag_list l;
	struct kms_key_rec rec;
	struct api_v v;
	int rc;

	memset(&l, 0, sizeof(l));
	api_v_init(&v);
	if ((rc = kms_paging(&v, in, 50, 50, &l.limit, &l.offset,
	    err)) != 0)
		return rc;
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = kms_key_action(c, in, KMS_REF_KEY, "kms:ListResourceTags",
	    &rec, err)) != 0)
		return rc;
	l.list = json_array();
	json_object_set_new(out, "Tags", l.list);
	rc = kms_tags_foreach(c->srv->kms, rec.id, kms_tag_cb, &l);
	kms_key_rec_clear(&rec);
	if (rc != 0)
		return kms_internal(err, "list_tags", rc);
	kms_marker(out, l.more, l.offset + l.limit);
	return 0;
}

/* ---- cryptography ------------------------------------------------------- */

static int
kms_encrypt_action(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct kms_key_rec rec;
	struct buf plain, blob;
	char arn[KMS_ARN_MAX];
	const char *ref, *alg;
	json_t *ctx;
	struct api_v v;
	int rc;

	memset(&rec, 0, sizeof(rec));
	buf_init(&plain, KMS_PLAINTEXT_MAX + 8);
	buf_init(&blob, KMS_CIPHERTEXT_MAX + 64);
	api_v_init(&v);
	ref = api_v_str(&v, in, &kms_key_id_d);
	kms_v_blob(&v, in, "Plaintext", "plaintext", 1, 1, KMS_PLAINTEXT_MAX,
	    &plain);
	ctx = kms_v_context(&v, in);
	kms_v_common(&v, in, &alg);
	if ((rc = api_v_finish(&v, err)) != 0)
		goto done;
	if ((rc = kms_resolve(c, ref, KMS_REF_ANY, &rec, err)) != 0 ||
	    (rc = kms_allowed(c, &rec, "kms:Encrypt", ctx, err)) != 0 ||
	    (rc = kms_usable(c, &rec, err)) != 0 ||
	    (rc = kms_check_alg(alg, err)) != 0 ||
	    (rc = kms_dry_run(in, err)) != 0)
		goto done;
	rc = kms_encrypt(c->srv->kms, rec.id, ctx, plain.data, plain.len,
	    &blob);
	if (rc == PH_ERR_TOOBIG || rc == PH_ERR_INVALID) {
		rc = api_error_set(err, 400, "ValidationException",
		    "The encryption context is too large or not a map of "
		    "strings.");
		goto done;
	}
	if (rc != 0) {
		rc = kms_internal(err, "encrypt", rc);
		goto done;
	}
	kms_key_arn(c, rec.id, arn, sizeof(arn));
	if ((rc = kms_set_blob(out, "CiphertextBlob", blob.data,
	    blob.len)) != 0) {
		rc = kms_internal(err, "encrypt", rc);
		goto done;
	}
	json_object_set_new(out, "KeyId", json_string(arn));
	json_object_set_new(out, "EncryptionAlgorithm",
	    json_string("SYMMETRIC_DEFAULT"));
done:
	kms_buf_wipe(&plain);
	buf_free(&blob);
	kms_key_rec_clear(&rec);
	return rc;
}

static int
kms_invalid_ciphertext(struct api_error *err)
{
	return api_error_set(err, 400, "InvalidCiphertextException",
	    "The ciphertext is invalid, was made with another encryption "
	    "context or was not made by this service.");
}

static int
kms_decrypt_action(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	char id[KMS_KEY_ID_SIZE], arn[KMS_ARN_MAX];
	struct kms_key_rec rec, named;
	struct buf blob, plain;
	const char *ref, *alg;
	json_t *ctx;
	struct api_v v;
	int rc;

	memset(&rec, 0, sizeof(rec));
	memset(&named, 0, sizeof(named));
	buf_init(&blob, KMS_CIPHERTEXT_MAX + 8);
	buf_init(&plain, KMS_CIPHERTEXT_MAX + 8);
	api_v_init(&v);
	kms_v_blob(&v, in, "CiphertextBlob", "ciphertextBlob", 1, 1,
	    KMS_CIPHERTEXT_MAX, &blob);
	ctx = kms_v_context(&v, in);
	ref = api_v_str(&v, in, &kms_opt_key_id_d);
	kms_v_common(&v, in, &alg);
	if (json_object_get(in, "Recipient") != NULL &&
	    !json_is_null(json_object_get(in, "Recipient")) &&
	    !json_is_object(json_object_get(in, "Recipient")))
		api_v_type(&v, "recipient", "a structure");
	if ((rc = api_v_finish(&v, err)) != 0)
		goto done;
	if (json_is_object(json_object_get(in, "Recipient"))) {
		rc = kms_unsupported("Recipient", "(attested enclaves)",
		    "plain", err);
		goto done;
	}
	if (kms_blob_key_id(blob.data, blob.len, id) != 0) {
		rc = kms_invalid_ciphertext(err);
		goto done;
	}
	if (ref != NULL) {
		if ((rc = kms_resolve(c, ref, KMS_REF_ANY, &named, err)) != 0)
			goto done;
		if (strcmp(named.id, id) != 0) {
			rc = api_error_set(err, 400, "IncorrectKeyException",
			    "The key ID in the request does not identify a "
			    "CMK that can perform this operation.");
			goto done;
		}
	}
	rc = kms_key_get(c->srv->kms, id, &rec);
	if (rc == PH_ERR_NOTFOUND) {
		rc = kms_invalid_ciphertext(err);
		goto done;
	}
	if (rc != 0) {
		rc = kms_internal(err, "decrypt", rc);
		goto done;
	}
	if ((rc = kms_allowed(c, &rec, "kms:Decrypt", ctx, err)) != 0 ||
	    (rc = kms_usable(c, &rec, err)) != 0 ||
	    (rc = kms_check_alg(alg, err)) != 0 ||
	    (rc = kms_dry_run(in, err)) != 0)
		goto done;
	rc = kms_decrypt(c->srv->kms, blob.data, blob.len, ctx, id, &plain);
	if (rc == PH_ERR_CRYPTO || rc == PH_ERR_INVALID ||
	    rc == PH_ERR_NOTFOUND || (rc == 0 && plain.len == 0)) {
		rc = kms_invalid_ciphertext(err);
		goto done;
	}
	if (rc != 0) {
		rc = kms_internal(err, "decrypt", rc);
		goto done;
	}
	kms_key_arn(c, id, arn, sizeof(arn));
	json_object_set_new(out, "KeyId", json_string(arn));
	if ((rc = kms_set_blob(out, "Plaintext", plain.data,
	    plain.len)) != 0) {
		rc = kms_internal(err, "decrypt", rc);
		goto done;
	}
	json_object_set_new(out, "EncryptionAlgorithm",
	    json_string("SYMMETRIC_DEFAULT"));
done:
	kms_buf_wipe(&plain);
	buf_free(&blob);
	kms_key_rec_clear(&rec);
	kms_key_rec_clear(&named);
	return rc;
}

static int
kms_generate(const struct api_call *c, json_t *in, json_t *out,
    int with_plaintext, struct api_error *err)
{
	static const char *const specs[] = { "AES_256", "AES_128", NULL };
	static const struct api_str spec_d = { "KeySpec", "keySpec", 0, 0, 0,
	    NULL, NULL, specs };
	uint8_t key[KMS_DATA_KEY_MAX];
	struct kms_key_rec rec;
	char arn[KMS_ARN_MAX];
	const char *ref, *spec, *alg;
	struct buf blob;
	struct api_v v;
	json_t *ctx;
	int64_t nbytes;
	int rc, has_n;
	size_t n;

	memset(&rec, 0, sizeof(rec));
	buf_init(&blob, KMS_CIPHERTEXT_MAX + 64);
	api_v_init(&v);
	ref = api_v_str(&v, in, &kms_key_id_d);
	ctx = kms_v_context(&v, in);
	has_n = api_v_int(&v, in, "NumberOfBytes", "numberOfBytes", 0, 1,
	    KMS_DATA_KEY_MAX, 0, &nbytes);
	spec = api_v_str(&v, in, &spec_d);
	kms_v_common(&v, in, &alg);
	if ((rc = api_v_finish(&v, err)) != 0)
		goto done;
	if ((has_n == 1) == (spec != NULL)) {
		rc = api_error_set(err, 400, "ValidationException",
		    "Please specify either number of bytes or key spec.");
		goto done;
	}
	n = spec == NULL ? (size_t)nbytes : strcmp(spec, "AES_128") == 0 ?
	    16 : 32;
	if (json_is_object(json_object_get(in, "Recipient"))) {
		rc = kms_unsupported("Recipient", "(attested enclaves)",
		    "plain", err);
		goto done;
	}
	if ((rc = kms_resolve(c, ref, KMS_REF_ANY, &rec, err)) != 0 ||
	    (rc = kms_allowed(c, &rec, with_plaintext ?
	    "kms:GenerateDataKey" : "kms:GenerateDataKeyWithoutPlaintext",
	    ctx, err)) != 0 ||
	    (rc = kms_usable(c, &rec, err)) != 0 ||
	    (rc = kms_dry_run(in, err)) != 0)
		goto done;
	if (RAND_bytes(key, (int)n) != 1) {
		rc = kms_internal(err, "generate", PH_ERR_CRYPTO);
		goto done;
	}
	rc = kms_encrypt(c->srv->kms, rec.id, ctx, key, n, &blob);
	if (rc == PH_ERR_TOOBIG || rc == PH_ERR_INVALID) {
		rc = api_error_set(err, 400, "ValidationException",
		    "The encryption context is too large or not a map of "
		    "strings.");
		goto done;
	}
	if (rc != 0 ||
	    (rc = kms_set_blob(out, "CiphertextBlob", blob.data,
	    blob.len)) != 0 ||
	    (with_plaintext && (rc = kms_set_blob(out, "Plaintext", key,
	    n)) != 0)) {
		rc = kms_internal(err, "generate", rc);
		goto done;
	}
	kms_key_arn(c, rec.id, arn, sizeof(arn));
	json_object_set_new(out, "KeyId", json_string(arn));
done:
	OPENSSL_cleanse(key, sizeof(key));
	buf_free(&blob);
	kms_key_rec_clear(&rec);
	return rc;
}

static int
kms_generate_data_key(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	return kms_generate(c, in, out, 1, err);
}

static int
kms_generate_data_key_wp(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	return kms_generate(c, in, out, 0, err);
}

/* ---- dispatch ----------------------------------------------------------- */

static const struct api_json_action kms_actions[] = {
	{ "CancelKeyDeletion", kms_cancel_key_deletion },
	{ "CreateAlias", kms_create_alias },
	{ "CreateKey", kms_create_key },
	{ "Decrypt", kms_decrypt_action },
	{ "DeleteAlias", kms_delete_alias },
	{ "DescribeKey", kms_describe_key },
	{ "DisableKey", kms_disable_key },
	{ "EnableKey", kms_enable_key },
	{ "Encrypt", kms_encrypt_action },
	{ "GenerateDataKey", kms_generate_data_key },
	{ "GenerateDataKeyWithoutPlaintext", kms_generate_data_key_wp },
	{ "GetKeyPolicy", kms_get_key_policy },
	{ "ListAliases", kms_list_aliases },
	{ "ListKeys", kms_list_keys },
	{ "ListResourceTags", kms_list_resource_tags },
	{ "PutKeyPolicy", kms_put_key_policy },
	{ "ScheduleKeyDeletion", kms_schedule_key_deletion },
	{ "TagResource", kms_tag_resource },
	{ "UntagResource", kms_untag_resource },
	{ "UpdateAlias", kms_update_alias },
};

int
api_kms_instance_action(const char *action)
{
	return action != NULL && (strcmp(action, "Decrypt") == 0 ||
	    strcmp(action, "DescribeKey") == 0);
}

int
api_kms_dispatch(const struct api_call *call, const char *action,
    json_t *in, json_t **out, struct api_error *err)
{
	const struct api_json_action *a;
	json_t *o;
	int rc;

	*out = NULL;
	a = api_json_action_find(kms_actions, sizeof(kms_actions) /
	    sizeof(kms_actions[0]), action, in, err);
	if (a == NULL)
		return PH_ERR_INVALID;
	if (call->srv == NULL || call->srv->kms == NULL)
		return api_error_set(err, 500, "KMSInternalException",
		    "The key store is not available.");
	/* An instance principal does only what api_kms_instance_action
	 * names, whatever authz_check would say. */
	if (call->principal != NULL && call->principal->is_instance &&
	    !api_kms_instance_action(action))
		return api_error_set(err, 400, "AccessDeniedException",
		    "User: %s is not authorized to perform: kms:%s",
		    call->principal->arn, action);
	/* Keys past their deletion date go before anything looks. */
	if ((rc = kms_purge(call->srv->kms, call->now_ms)) < 0)
		return kms_internal(err, "purge", rc);
	if ((o = json_object()) == NULL)
		return kms_internal(err, action, PH_ERR_NOMEM);
	rc = a->fn(call, in, o, err);
	if (rc != 0) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return 0;
}
