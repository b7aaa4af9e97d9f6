/* store_console: sessions of the web console (console.c), in the
 * console_sessions table. A session is named by a random cookie token
 * of which only a SHA-256 is kept; its CSRF token is kept as it is (the
 * page reads it back, and it is worth nothing without the cookie).
 * Temporary credentials issued under a session (store_sts_issue_user)
 * go when it does. */
#ifndef PORTHOLE_STORE_CONSOLE_H
#define PORTHOLE_STORE_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "server/store.h"

#define CONSOLE_TOKEN_SIZE 44     /* 43 characters of base64url, NUL */
#define CONSOLE_CSRF_SIZE 44
#define CONSOLE_ID_SIZE 65        /* SHA-256 of the token, hex, NUL */
#define CONSOLE_USER_SIZE 129

struct console_session {
	char id[CONSOLE_ID_SIZE];     /* hex SHA-256 of the cookie token */
	char user_name[CONSOLE_USER_SIZE];
	char csrf[CONSOLE_CSRF_SIZE];
	char source_ip[64];
	int64_t created_ms;
	int64_t expiry_ms;
};

/* A new session of user_name until expiry_ms: token (at least
 * CONSOLE_TOKEN_SIZE bytes) gets the cookie's value, out the row. Rows
 * expired for a day are purged on the way. */
int store_console_create(struct store *st, const char *user_name,
    const char *source_ip, int64_t now_ms, int64_t expiry_ms,
    struct console_session *out, char *token, size_t token_size);
/* The session of a cookie token: 0, PH_ERR_NOTFOUND (unknown, or not
 * token-shaped) or PH_ERR_EXPIRED. */
int store_console_get(struct store *st, const char *token, int64_t now_ms,
    struct console_session *out);
/* End the session of id and every credential issued under it. */
int store_console_delete(struct store *st, const char *id);
/* Remove sessions that expired before cutoff_ms. */
int store_console_purge(struct store *st, int64_t cutoff_ms);
/* The hex SHA-256 of a token (id has CONSOLE_ID_SIZE bytes). */
int store_console_token_id(const char *token, char *id);

#endif
