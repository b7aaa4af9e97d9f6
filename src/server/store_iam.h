/* store_iam: IAM state — users (with access keys, login profiles, tags),
 * groups and memberships, roles (trust policy, tags), inline policies of
 * users, groups and roles, managed policies with versions, attachments.
 * Tags of users and roles live in the store's tags table under resource
 * types "IamUser" and "IamRole" (resource id: the name). Every write bumps
 * store_authz_generation. Names compare as IAM compares them: user, group,
 * role and policy names are unique case-insensitively.
 *
 * This header is the contract the policy decision point (authz.c) and STS
 * read through; the IAM API (api_iam.c) also uses the write functions
 * declared further down. */
#ifndef PORTHOLE_STORE_IAM_H
#define PORTHOLE_STORE_IAM_H

#include <stddef.h>
#include <stdint.h>

#include "server/store.h"

#define IAM_NAME_SIZE 129        /* group and policy names: 128 chars */
#define IAM_ID_SIZE 33           /* AIDA/AGPA/AROA/ANPA + 17 chars */
#define IAM_PATH_SIZE 513
#define IAM_ARN_SIZE 2048
#define IAM_DESCRIPTION_SIZE 1001

struct iam_user_rec {
	char name[IAM_NAME_SIZE];
	char user_id[IAM_ID_SIZE];       /* AIDA... */
	char path[IAM_PATH_SIZE];        /* "/" by default */
	char arn[IAM_ARN_SIZE];
	int is_root_admin;
	int64_t created_ms;
	int64_t password_last_used_ms;   /* 0: never */
};

struct iam_role_rec {
	char name[IAM_NAME_SIZE];
	char role_id[IAM_ID_SIZE];       /* AROA... */
	char path[IAM_PATH_SIZE];
	char arn[IAM_ARN_SIZE];
	char description[IAM_DESCRIPTION_SIZE];
	int max_session_duration;        /* seconds, 3600..43200 */
	int64_t created_ms;
	char *trust_policy;              /* JSON; iam_role_rec_clear frees */
};

void iam_role_rec_clear(struct iam_role_rec *r);

/* PH_ERR_NOTFOUND if there is no such user / role. */
int store_iam_user_get(struct store *st, const char *name,
    struct iam_user_rec *out);
int store_iam_role_get(struct store *st, const char *name,
    struct iam_role_rec *out);

/* Every identity-policy document that applies to a principal: for a user
 * its inline policies, the default versions of the managed policies
 * attached to it, and the same for every group it belongs to; for a role
 * its inline and attached policies. fn gets each document's JSON text and
 * a name for messages ("inline:NAME" or the policy ARN); a non-zero return
 * stops the walk and is returned. */
typedef int (*store_iam_policy_fn)(void *arg, const char *source,
    const char *document);
int store_iam_user_policies(struct store *st, const char *user_name,
    store_iam_policy_fn fn, void *arg);
int store_iam_role_policies(struct store *st, const char *role_name,
    store_iam_policy_fn fn, void *arg);

#endif
