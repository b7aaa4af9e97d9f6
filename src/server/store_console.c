/* store_console: web console sessions. The cookie token is 32 random
 * bytes in base64url; the row is keyed by its SHA-256 in hex, so a copy
 * of the database names no live cookie. */
#include "server/store_console.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/err.h"
#include "server/store_internal.h"

#define CONSOLE_TOKEN_RAW 32
#define CONSOLE_PURGE_AFTER_MS ((int64_t)24 * 3600 * 1000)

/* base64url without padding of 32 random bytes: 43 characters. */
static int
console_random_token(char *out, size_t size)
{
	unsigned char raw[CONSOLE_TOKEN_RAW], b64[64];
	int n, i, rc = 0;

	if (size < CONSOLE_TOKEN_SIZE)
		return PH_ERR_TOOBIG;
	if (st_random(raw, sizeof(raw)) != 0) {
		rc = PH_ERR_CRYPTO;
		goto out;
	}
	n = EVP_EncodeBlock(b64, raw, (int)sizeof(raw));
	if (n != 44) {
		rc = PH_ERR_CRYPTO;
		goto out;
	}
	for (i = 0; i < 43; i++)
		out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' :
		    (char)b64[i];
	out[43] = '\0';
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(b64, sizeof(b64));
	return rc;
}

int
store_console_token_id(const char *token, char *id)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char h[32];
	unsigned len = 0;
	int i;

	if (EVP_Digest(token, strlen(token), h, &len, EVP_sha256(),
	    NULL) != 1 || len != sizeof(h))
		return PH_ERR_CRYPTO;
	for (i = 0; i < 32; i++) {
		id[2 * i] = hex[h[i] >> 4];
		id[2 * i + 1] = hex[h[i] & 15];
	}
	id[64] = '\0';
	return 0;
}

/* Only what console_random_token makes is looked up. */
static int
console_token_shaped(const char *token)
{
	size_t i;

	if (token == NULL || strlen(token) != CONSOLE_TOKEN_SIZE - 1)
		return 0;
	for (i = 0; token[i] != '\0'; i++)
		if (!((token[i] >= 'A' && token[i] <= 'Z') ||
		    (token[i] >= 'a' && token[i] <= 'z') ||
		    (token[i] >= '0' && token[i] <= '9') ||
		    token[i] == '-' || token[i] == '_'))
			return 0;
	return 1;
}

int
store_console_create(struct store *st, const char *user_name,
    const char *source_ip, int64_t now_ms, int64_t expiry_ms,
    struct console_session *out, char *token, size_t token_size)
{
	sqlite3_stmt *s = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (token == NULL || token_size < CONSOLE_TOKEN_SIZE)
		return PH_ERR_INVALID;
	token[0] = '\0';
	if (user_name == NULL || user_name[0] == '\0' ||
	    strlen(user_name) >= sizeof(out->user_name) ||
	    expiry_ms <= now_ms)
		return PH_ERR_INVALID;
	if ((rc = console_random_token(token, token_size)) != 0 ||
	    (rc = console_random_token(out->csrf, sizeof(out->csrf))) != 0 ||
	    (rc = store_console_token_id(token, out->id)) != 0)
		goto fail;
	(void)store_console_purge(st, now_ms - CONSOLE_PURGE_AFTER_MS);
	if ((rc = st_prep(st, "INSERT INTO console_sessions (id, user_name, "
	    "csrf, source_ip, created_ms, expiry_ms) VALUES (?1, ?2, ?3, ?4, "
	    "?5, ?6)", &s)) != 0)
		goto fail;
	st_text(s, 1, out->id);
	st_text(s, 2, user_name);
	st_text(s, 3, out->csrf);
	st_text_bounded(s, 4, source_ip != NULL ? source_ip : "", 63);
	sqlite3_bind_int64(s, 5, now_ms);
	sqlite3_bind_int64(s, 6, expiry_ms);
	rc = st_step_done(st, s, "console_create");
	sqlite3_finalize(s);
	if (rc != 0)
		goto fail;
	snprintf(out->user_name, sizeof(out->user_name), "%s", user_name);
	snprintf(out->source_ip, sizeof(out->source_ip), "%s",
	    source_ip != NULL ? source_ip : "");
	out->created_ms = now_ms;
	out->expiry_ms = expiry_ms;
	return 0;
fail:
	OPENSSL_cleanse(out, sizeof(*out));
	OPENSSL_cleanse(token, token_size);
	token[0] = '\0';
	return rc;
}

int
store_console_get(struct store *st, const char *token, int64_t now_ms,
    struct console_session *out)
{
	char id[CONSOLE_ID_SIZE];
	sqlite3_stmt *s = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!console_token_shaped(token))
		return PH_ERR_NOTFOUND;
	if ((rc = store_console_token_id(token, id)) != 0)
		return rc;
	if ((rc = st_prep(st, "SELECT user_name, csrf, source_ip, "
	    "created_ms, expiry_ms FROM console_sessions WHERE id = ?1",
	    &s)) != 0)
		return rc;
	st_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
		goto out;
	}
	memcpy(out->id, id, sizeof(id));
	st_col(s, 0, out->user_name, sizeof(out->user_name));
	st_col(s, 1, out->csrf, sizeof(out->csrf));
	st_col(s, 2, out->source_ip, sizeof(out->source_ip));
	out->created_ms = sqlite3_column_int64(s, 3);
	out->expiry_ms = sqlite3_column_int64(s, 4);
	rc = now_ms >= out->expiry_ms ? PH_ERR_EXPIRED : 0;
out:
	sqlite3_finalize(s);
	if (rc != 0 && rc != PH_ERR_EXPIRED)
		OPENSSL_cleanse(out, sizeof(*out));
	return rc;
}

int
store_console_delete(struct store *st, const char *id)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (id == NULL || strlen(id) != CONSOLE_ID_SIZE - 1)
		return PH_ERR_INVALID;
	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_prep(st, "DELETE FROM sts_credentials WHERE "
	    "console_session = ?1", &s)) != 0)
		goto fail;
	st_text(s, 1, id);
	rc = st_step_done(st, s, "console_delete_creds");
	sqlite3_finalize(s);
	s = NULL;
	if (rc != 0)
		goto fail;
	if ((rc = st_prep(st, "DELETE FROM console_sessions WHERE id = ?1",
	    &s)) != 0)
		goto fail;
	st_text(s, 1, id);
	rc = st_step_done(st, s, "console_delete");
	sqlite3_finalize(s);
	if (rc != 0)
		goto fail;
	return st_commit(st);
fail:
	st_rollback(st);
	return rc;
}

int
store_console_purge(struct store *st, int64_t cutoff_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "DELETE FROM console_sessions WHERE "
	    "expiry_ms < ?1", &s)) != 0)
		return rc;
	sqlite3_bind_int64(s, 1, cutoff_ms);
	rc = st_step_done(st, s, "console_purge");
	sqlite3_finalize(s);
	return rc;
}
