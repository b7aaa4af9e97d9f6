/* store_sts: temporary credentials of role sessions (STS AssumeRole).
 * Key ids look like AWS's ("ASIA" and 16 base32 characters); the session
 * token is 192 random bytes in base64, of which only a SHA-256 is
 * stored. */
#include "server/store_sts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/err.h"
#include "server/store_internal.h"

#define STS_TOKEN_RAW 192        /* bytes: 256 characters of base64 */
#define STS_HASH_LEN 32

static int
sts_hash(const char *token, uint8_t out[STS_HASH_LEN])
{
	unsigned len = 0;

	if (EVP_Digest(token, strlen(token), out, &len, EVP_sha256(),
	    NULL) != 1 || len != STS_HASH_LEN)
		return PH_ERR_CRYPTO;
	return 0;
}

static int
sts_token(char *token, size_t size)
{
	uint8_t raw[STS_TOKEN_RAW];
	int rc = 0;

	if (size < STS_TOKEN_SIZE)
		return PH_ERR_TOOBIG;
	if (st_random(raw, sizeof(raw)) != 0)
		rc = PH_ERR_CRYPTO;
	else if (EVP_EncodeBlock((unsigned char *)token, raw,
	    (int)sizeof(raw)) != STS_TOKEN_SIZE - 1)
		rc = PH_ERR_CRYPTO;
	OPENSSL_cleanse(raw, sizeof(raw));
	return rc;
}

int
store_sts_issue(struct store *st, const char *role_name,
    const char *session_name, const char *source_arn, int64_t now_ms,
    int64_t expiry_ms, struct sts_cred *out, char *token, size_t token_size)
{
	return store_sts_issue_ex(st, role_name, session_name, source_arn,
	    NULL, NULL, now_ms, expiry_ms, out, token, token_size);
}

static int sts_issue(struct store *st, const char *role_name,
    const char *user_name, const char *console_id, const char *session_name,
    const char *source_arn, const char *policy, const char *arns,
    int64_t now_ms, int64_t expiry_ms, struct sts_cred *out, char *token,
    size_t token_size);

int
store_sts_issue_ex(struct store *st, const char *role_name,
    const char *session_name, const char *source_arn, const char *policy,
    const char *arns, int64_t now_ms, int64_t expiry_ms,
    struct sts_cred *out, char *token, size_t token_size)
{
	if (role_name == NULL || role_name[0] == '\0') {
		memset(out, 0, sizeof(*out));
		return PH_ERR_INVALID;
	}
	return sts_issue(st, role_name, "", "", session_name, source_arn,
	    policy, arns, now_ms, expiry_ms, out, token, token_size);
}

int
store_sts_issue_user(struct store *st, const char *user_name,
    const char *console_id, const char *source_arn, int64_t now_ms,
    int64_t expiry_ms, struct sts_cred *out, char *token, size_t token_size)
{
	if (user_name == NULL || user_name[0] == '\0' || console_id == NULL ||
	    strlen(console_id) >= sizeof(out->console_session) ||
	    strlen(user_name) >= sizeof(out->user_name)) {
		memset(out, 0, sizeof(*out));
		return PH_ERR_INVALID;
	}
	return sts_issue(st, "", user_name, console_id, user_name, source_arn,
	    NULL, NULL, now_ms, expiry_ms, out, token, token_size);
}

static int
sts_issue(struct store *st, const char *role_name, const char *user_name,
    const char *console_id, const char *session_name, const char *source_arn,
    const char *policy, const char *arns, int64_t now_ms, int64_t expiry_ms,
    struct sts_cred *out, char *token, size_t token_size)
{
	static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	uint8_t hash[STS_HASH_LEN];
	sqlite3_stmt *s = NULL;
	int rc, tries;

	memset(out, 0, sizeof(*out));
	if (token != NULL && token_size > 0)
		token[0] = '\0';
	if (role_name == NULL || session_name == NULL || source_arn == NULL ||
	    token == NULL || session_name[0] == '\0' ||
	    strlen(role_name) >= sizeof(out->role_name) ||
	    strlen(session_name) >= sizeof(out->session_name) ||
	    strlen(source_arn) >= sizeof(out->source_arn) ||
	    expiry_ms <= now_ms)
		return PH_ERR_INVALID;
	if ((rc = sts_token(token, token_size)) != 0 ||
	    (rc = sts_hash(token, hash)) != 0)
		goto fail;
	/* Opportunistic: each issue clears what expired long ago. */
	(void)store_sts_purge(st, now_ms - STS_PURGE_AFTER_MS, NULL);
	if ((rc = st_prep(st, "INSERT INTO sts_credentials (akid, secret, "
	    "token_hash, role_name, session_name, source_arn, expiry_ms, "
	    "created_ms, session_policy, session_policy_arns, user_name, "
	    "console_session) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
	    "?10, ?11, ?12)", &s)) != 0)
		goto fail;
	memcpy(out->akid, "ASIA", 4);
	/* A collision of 80 random bits is not expected; retry anyway. */
	for (tries = 0; tries < 4; tries++) {
		if ((rc = st_random_chars(out->akid + 4, 16, b32)) != 0 ||
		    (rc = st_random_chars(out->secret, 40, b64)) != 0)
			break;
		sqlite3_reset(s);
		st_text(s, 1, out->akid);
		st_text(s, 2, out->secret);
		sqlite3_bind_blob(s, 3, hash, sizeof(hash), SQLITE_STATIC);
		st_text(s, 4, role_name);
		st_text(s, 5, session_name);
		st_text(s, 6, source_arn);
		sqlite3_bind_int64(s, 7, expiry_ms);
		sqlite3_bind_int64(s, 8, now_ms);
		st_text(s, 9, policy != NULL ? policy : "");
		st_text(s, 10, arns != NULL ? arns : "");
		st_text(s, 11, user_name);
		st_text(s, 12, console_id);
		rc = st_step_done(st, s, "sts_issue");
		if (rc != PH_ERR_EXISTS)
			break;
	}
	sqlite3_finalize(s);
	if (rc != 0)
		goto fail;
	snprintf(out->role_name, sizeof(out->role_name), "%s", role_name);
	snprintf(out->session_name, sizeof(out->session_name), "%s",
	    session_name);
	snprintf(out->source_arn, sizeof(out->source_arn), "%s", source_arn);
	snprintf(out->user_name, sizeof(out->user_name), "%s", user_name);
	snprintf(out->console_session, sizeof(out->console_session), "%s",
	    console_id);
	out->expiry_ms = expiry_ms;
	out->created_ms = now_ms;
	return 0;
fail:
	OPENSSL_cleanse(out, sizeof(*out));
	OPENSSL_cleanse(token, token_size);
	token[0] = '\0';
	return rc;
}

int
store_sts_get(struct store *st, const char *akid, struct sts_cred *out)
{
	sqlite3_stmt *s = NULL;
	const char *v;
	int rc;

	memset(out, 0, sizeof(*out));
	if (akid == NULL || strlen(akid) >= STS_AKID_SIZE)
		return PH_ERR_NOTFOUND;
	if ((rc = st_prep(st, "SELECT secret, role_name, session_name, "
	    "source_arn, expiry_ms, created_ms, user_name, console_session "
	    "FROM sts_credentials WHERE akid = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, akid);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
		goto out;
	}
	v = (const char *)sqlite3_column_text(s, 0);
	if (v == NULL || strlen(v) >= sizeof(out->secret)) {
		rc = PH_ERR_INVALID;
		goto out;
	}
	memcpy(out->secret, v, strlen(v) + 1);
	snprintf(out->akid, sizeof(out->akid), "%s", akid);
	st_col(s, 1, out->role_name, sizeof(out->role_name));
	st_col(s, 2, out->session_name, sizeof(out->session_name));
	st_col(s, 3, out->source_arn, sizeof(out->source_arn));
	out->expiry_ms = sqlite3_column_int64(s, 4);
	out->created_ms = sqlite3_column_int64(s, 5);
	st_col(s, 6, out->user_name, sizeof(out->user_name));
	st_col(s, 7, out->console_session, sizeof(out->console_session));
	rc = 0;
out:
	sqlite3_finalize(s);
	if (rc != 0)
		OPENSSL_cleanse(out, sizeof(*out));
	return rc;
}

int
store_sts_session_policies(struct store *st, const char *akid,
    char **policy, char **arns)
{
	sqlite3_stmt *s = NULL;
	const char *v;
	int rc;

	*policy = NULL;
	*arns = NULL;
	if (akid == NULL || strlen(akid) >= STS_AKID_SIZE)
		return PH_ERR_NOTFOUND;
	if ((rc = st_prep(st, "SELECT session_policy, session_policy_arns "
	    "FROM sts_credentials WHERE akid = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, akid);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
		goto out;
	}
	v = (const char *)sqlite3_column_text(s, 0);
	*policy = strdup(v != NULL ? v : "");
	v = (const char *)sqlite3_column_text(s, 1);
	*arns = strdup(v != NULL ? v : "");
	rc = *policy != NULL && *arns != NULL ? 0 : PH_ERR_NOMEM;
out:
	sqlite3_finalize(s);
	if (rc != 0) {
		free(*policy);
		free(*arns);
		*policy = NULL;
		*arns = NULL;
	}
	return rc;
}

int
store_sts_check_token(struct store *st, const char *akid, const char *token)
{
	uint8_t want[STS_HASH_LEN], got[STS_HASH_LEN];
	sqlite3_stmt *s = NULL;
	const void *blob;
	int rc, n, same;

	/* Hash whatever came (or nothing) so that every path costs the
	 * same work. */
	if ((rc = sts_hash(token != NULL ? token : "", got)) != 0)
		return rc;
	if (akid == NULL || strlen(akid) >= STS_AKID_SIZE)
		return PH_ERR_DENIED;
	if ((rc = st_prep(st, "SELECT token_hash FROM sts_credentials WHERE "
	    "akid = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, akid);
	memset(want, 0, sizeof(want));
	rc = PH_ERR_DENIED;
	if (sqlite3_step(s) == SQLITE_ROW) {
		blob = sqlite3_column_blob(s, 0);
		n = sqlite3_column_bytes(s, 0);
		if (blob != NULL && n == STS_HASH_LEN) {
			memcpy(want, blob, STS_HASH_LEN);
			same = CRYPTO_memcmp(want, got, STS_HASH_LEN) == 0;
			if (same && token != NULL && token[0] != '\0')
				rc = 0;
		}
	}
	sqlite3_finalize(s);
	return rc;
}

int
store_sts_purge(struct store *st, int64_t cutoff_ms, int64_t *n)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (n != NULL)
		*n = 0;
	if ((rc = st_prep(st, "DELETE FROM sts_credentials WHERE "
	    "expiry_ms < ?1", &s)) != 0)
		return rc;
	sqlite3_bind_int64(s, 1, cutoff_ms);
	rc = st_step_done(st, s, "sts_purge");
	if (rc == 0 && n != NULL)
		*n = sqlite3_changes(st->db);
	sqlite3_finalize(s);
	return rc;
}

int
store_sts_revoke_role(struct store *st, const char *role_name)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (role_name == NULL)
		return PH_ERR_INVALID;
	if ((rc = st_prep(st, "DELETE FROM sts_credentials WHERE "
	    "lower(role_name) = lower(?1)", &s)) != 0)
		return rc;
	st_text(s, 1, role_name);
	rc = st_step_done(st, s, "sts_revoke_role");
	sqlite3_finalize(s);
	return rc;
}
