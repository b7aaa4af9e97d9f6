/* store_sts: temporary credentials issued by STS AssumeRole, in the
 * sts_credentials table. The secret access key is kept as SigV4 needs it;
 * of the session token only its SHA-256 is kept, compared in constant
 * time. Rows expired for a day are purged when new ones are issued (until
 * then a late caller is told "expired" rather than "invalid"). */
#ifndef PORTHOLE_STORE_STS_H
#define PORTHOLE_STORE_STS_H

#include <stddef.h>
#include <stdint.h>

#include "server/store.h"

#define STS_AKID_SIZE 21         /* ASIA + 16 characters, NUL */
#define STS_SECRET_SIZE 41       /* 40 characters, NUL */
#define STS_TOKEN_SIZE 257       /* 256 characters of base64, NUL */
#define STS_SESSION_NAME_SIZE 65 /* 64 characters, NUL */
#define STS_ROLE_NAME_SIZE 129
#define STS_ARN_SIZE 2048
/* Expired rows stay this long, then go. */
#define STS_PURGE_AFTER_MS ((int64_t)24 * 3600 * 1000)

struct sts_cred {
	char akid[STS_AKID_SIZE];
	char secret[STS_SECRET_SIZE];
	char role_name[STS_ROLE_NAME_SIZE];
	char session_name[STS_SESSION_NAME_SIZE];
	char source_arn[STS_ARN_SIZE];   /* who called AssumeRole */
	/* Credentials of an IAM user (the web console's): the user, and
	 * the console session they were issued under; "" for a role's. */
	char user_name[STS_ROLE_NAME_SIZE];
	char console_session[65];
	int64_t expiry_ms;
	int64_t created_ms;
};

/* Issue credentials for a session of role_name valid until expiry_ms:
 * a new "ASIA..." key id, a secret and a session token (token, at least
 * STS_TOKEN_SIZE bytes; only its hash is stored). out gets the row. */
int store_sts_issue(struct store *st, const char *role_name,
    const char *session_name, const char *source_arn, int64_t now_ms,
    int64_t expiry_ms, struct sts_cred *out, char *token, size_t token_size);
/* store_sts_issue with the session's policies (AssumeRole's Policy and
 * PolicyArns): policy the inline document, arns a JSON array of managed
 * policy ARNs; NULL or "" for none. They are kept with the row, for
 * authz to intersect with the role's policies. */
int store_sts_issue_ex(struct store *st, const char *role_name,
    const char *session_name, const char *source_arn, const char *policy,
    const char *arns, int64_t now_ms, int64_t expiry_ms,
    struct sts_cred *out, char *token, size_t token_size);
/* Temporary credentials of the IAM user user_name (as GetSessionToken
 * issues them), issued under the console session console_id (hex, ""
 * for none) and going with it; source_arn the user's ARN. */
int store_sts_issue_user(struct store *st, const char *user_name,
    const char *console_id, const char *source_arn, int64_t now_ms,
    int64_t expiry_ms, struct sts_cred *out, char *token, size_t token_size);
/* The session policies of akid, malloc'd ("" for none): 0 or
 * PH_ERR_NOTFOUND. */
int store_sts_session_policies(struct store *st, const char *akid,
    char **policy, char **arns);
/* The row of akid (its secret included): 0 or PH_ERR_NOTFOUND. */
int store_sts_get(struct store *st, const char *akid, struct sts_cred *out);
/* Does token (NULL: none was sent) belong to akid? 0, or PH_ERR_DENIED
 * for a missing or wrong token or an unknown key id. The hashes are
 * compared in constant time. */
int store_sts_check_token(struct store *st, const char *akid,
    const char *token);
/* Remove rows that expired before cutoff_ms; how many in *n (optional). */
int store_sts_purge(struct store *st, int64_t cutoff_ms, int64_t *n);
/* Remove every credential of a role (DeleteRole); optional to call: a
 * session of a role that is gone is refused anyway. */
int store_sts_revoke_role(struct store *st, const char *role_name);

#endif
