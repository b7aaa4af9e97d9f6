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

/* ---- writes and lists (the IAM API) ------------------------------------ */

/* Entity types of inline policies and attachments. */
#define IAM_ENTITY_USER "user"
#define IAM_ENTITY_GROUP "group"
#define IAM_ENTITY_ROLE "role"

/* At open: AWS-managed policies (iam_managed.c) written or refreshed,
 * user ids given to users written before schema version 3. */
int store_iam_open(struct store *st);

/* A new id: prefix ("AIDA", "AGPA", "AROA", "ANPA") and 17 characters of
 * [A-Z0-9]; out has IAM_ID_SIZE bytes. */
int store_iam_new_id(const char *prefix, char *out);

typedef int (*store_iam_user_fn)(void *arg, const struct iam_user_rec *u);

/* rec: name, path and arn given; user_id and created_ms filled in.
 * PH_ERR_EXISTS if the name is taken (in any case). */
int store_iam_user_create(struct store *st, struct iam_user_rec *rec);
/* Every user (whose path begins with path_prefix, NULL: all), by name. */
int store_iam_user_foreach(struct store *st, const char *path_prefix,
    store_iam_user_fn fn, void *arg);
/* Rename and/or move a user (NULL: unchanged); new_arn is its new ARN.
 * Keys, memberships, policies, attachments, tags and the login profile
 * follow. PH_ERR_NOTFOUND, PH_ERR_EXISTS. */
int store_iam_user_update(struct store *st, const char *name,
    const char *new_name, const char *new_path, const char *new_arn);
/* PH_ERR_STATE (why says what is left: keys, login profile, groups,
 * policies) if the user still has subordinate entities. */
int store_iam_user_delete(struct store *st, const char *name, char *why,
    size_t whylen);

struct iam_key_rec {
	char akid[STORE_AKID_SIZE];
	char user_name[IAM_NAME_SIZE];
	int active;
	int64_t created_ms;
	int64_t last_used_ms;            /* 0: never */
	char last_used_service[64];
	char last_used_region[64];
};

typedef int (*store_iam_key_fn)(void *arg, const struct iam_key_rec *k);

int store_iam_key_get(struct store *st, const char *akid,
    struct iam_key_rec *out);
int store_iam_key_foreach(struct store *st, const char *user_name,
    store_iam_key_fn fn, void *arg);
/* The user's key (PH_ERR_NOTFOUND if not that user's). */
int store_iam_key_set_active(struct store *st, const char *user_name,
    const char *akid, int active);
int store_iam_key_delete(struct store *st, const char *user_name,
    const char *akid);
/* Record a verified request made with akid: at most one write per key a
 * minute. Failures are ignored (the request goes on). */
void store_iam_key_used(struct store *st, const char *akid,
    const char *service, const char *region, int64_t now_ms);

/* Console passwords: scrypt (OpenSSL) with a random salt; the parameters
 * are kept with the hash. PH_ERR_EXISTS, PH_ERR_NOTFOUND. */
int store_iam_login_create(struct store *st, const char *user_name,
    const char *password, int reset_required);
int store_iam_login_get(struct store *st, const char *user_name,
    int64_t *created_ms, int *reset_required);
/* password NULL: unchanged; reset_required < 0: unchanged. */
int store_iam_login_update(struct store *st, const char *user_name,
    const char *password, int reset_required);
int store_iam_login_delete(struct store *st, const char *user_name);
/* 0 if password is the user's, PH_ERR_DENIED otherwise. */
int store_iam_login_verify(struct store *st, const char *user_name,
    const char *password);
/* The same in two steps, so that the scrypt work can run off the event
 * loop: the stored hash and its parameters (PH_ERR_NOTFOUND without a
 * login profile), then the check, which touches no store and may run
 * on any thread. store_iam_login_dummy: parameters for a user with no
 * password, costing the same work and never matching. */
struct iam_login_hash {
	unsigned char salt[64];
	size_t salt_len;
	unsigned char hash[32];
	uint64_t n, r, p;
	int dummy;
};
int store_iam_login_hash(struct store *st, const char *user_name,
    struct iam_login_hash *out);
void store_iam_login_dummy(struct iam_login_hash *out);
int store_iam_login_check(const struct iam_login_hash *h,
    const char *password);
/* A console sign-in with the password (GetUser's PasswordLastUsed). */
int store_iam_password_used(struct store *st, const char *user_name,
    int64_t now_ms);

struct iam_group_rec {
	char name[IAM_NAME_SIZE];
	char group_id[IAM_ID_SIZE];
	char path[IAM_PATH_SIZE];
	char arn[IAM_ARN_SIZE];
	int64_t created_ms;
};

typedef int (*store_iam_group_fn)(void *arg, const struct iam_group_rec *g);

int store_iam_group_create(struct store *st, struct iam_group_rec *rec);
int store_iam_group_get(struct store *st, const char *name,
    struct iam_group_rec *out);
int store_iam_group_foreach(struct store *st, const char *path_prefix,
    store_iam_group_fn fn, void *arg);
/* PH_ERR_STATE with why if it has members or policies. */
int store_iam_group_delete(struct store *st, const char *name, char *why,
    size_t whylen);
/* Canonical names (as stored). Adding twice is not an error. */
int store_iam_group_add_user(struct store *st, const char *group,
    const char *user);
int store_iam_group_remove_user(struct store *st, const char *group,
    const char *user);
int store_iam_group_members(struct store *st, const char *group,
    store_iam_user_fn fn, void *arg);
int store_iam_user_groups(struct store *st, const char *user,
    store_iam_group_fn fn, void *arg);

typedef int (*store_iam_role_fn)(void *arg, const struct iam_role_rec *r);

/* rec: name, path, arn, description, max_session_duration, trust_policy
 * given; role_id and created_ms filled in. */
int store_iam_role_create(struct store *st, struct iam_role_rec *rec);
int store_iam_role_foreach(struct store *st, const char *path_prefix,
    store_iam_role_fn fn, void *arg);
int store_iam_role_set_trust(struct store *st, const char *name,
    const char *trust_policy);
/* description NULL / max_session_duration 0: unchanged. */
int store_iam_role_update(struct store *st, const char *name,
    const char *description, int max_session_duration);
/* PH_ERR_STATE with why if it has inline or attached policies. */
int store_iam_role_delete(struct store *st, const char *name, char *why,
    size_t whylen);

/* Inline policies; entity names canonical. */
int store_iam_inline_put(struct store *st, const char *entity_type,
    const char *entity_name, const char *policy_name, const char *document);
/* *document_out: malloc'd; the policy's stored name in name_out. */
int store_iam_inline_get(struct store *st, const char *entity_type,
    const char *entity_name, const char *policy_name,
    char name_out[IAM_NAME_SIZE], char **document_out);
typedef int (*store_iam_name_fn)(void *arg, const char *name);
int store_iam_inline_foreach(struct store *st, const char *entity_type,
    const char *entity_name, store_iam_name_fn fn, void *arg);
int store_iam_inline_delete(struct store *st, const char *entity_type,
    const char *entity_name, const char *policy_name);

struct iam_policy_rec {
	char arn[IAM_ARN_SIZE];
	char name[IAM_NAME_SIZE];
	char policy_id[IAM_ID_SIZE];
	char path[IAM_PATH_SIZE];
	char description[IAM_DESCRIPTION_SIZE];
	char default_version[16];
	int is_aws;
	int attachment_count;
	int64_t created_ms;
	int64_t updated_ms;
};

typedef int (*store_iam_policy_rec_fn)(void *arg,
    const struct iam_policy_rec *p);

#define IAM_POLICY_VERSIONS_MAX 5

/* rec: arn, name, path, description given; policy_id and times filled.
 * The document becomes version v1, the default. */
int store_iam_policy_create(struct store *st, struct iam_policy_rec *rec,
    const char *document);
int store_iam_policy_get(struct store *st, const char *arn,
    struct iam_policy_rec *out);
/* scope: 0 all, 1 AWS, 2 local; only_attached: attachment_count > 0. */
int store_iam_policy_foreach(struct store *st, int scope, int only_attached,
    const char *path_prefix, store_iam_policy_rec_fn fn, void *arg);
/* PH_ERR_STATE if attached or with versions other than the default. */
int store_iam_policy_delete(struct store *st, const char *arn, char *why,
    size_t whylen);
/* PH_ERR_TOOBIG at IAM_POLICY_VERSIONS_MAX versions. version_out: "vN". */
int store_iam_policy_version_create(struct store *st, const char *arn,
    const char *document, int set_default, char version_out[16]);
int store_iam_policy_version_get(struct store *st, const char *arn,
    const char *version_id, char **document_out, int64_t *created_ms);
typedef int (*store_iam_version_fn)(void *arg, const char *version_id,
    int is_default, int64_t created_ms);
int store_iam_policy_version_foreach(struct store *st, const char *arn,
    store_iam_version_fn fn, void *arg);
/* PH_ERR_STATE for the default version. */
int store_iam_policy_version_delete(struct store *st, const char *arn,
    const char *version_id);
int store_iam_policy_set_default(struct store *st, const char *arn,
    const char *version_id);

/* Attachments of managed policies; entity names canonical. Attaching
 * twice is not an error; detaching what is not attached is
 * PH_ERR_NOTFOUND. */
int store_iam_attach(struct store *st, const char *entity_type,
    const char *entity_name, const char *policy_arn);
int store_iam_detach(struct store *st, const char *entity_type,
    const char *entity_name, const char *policy_arn);
typedef int (*store_iam_attached_fn)(void *arg, const char *policy_arn,
    const char *policy_name);
int store_iam_attached_foreach(struct store *st, const char *entity_type,
    const char *entity_name, store_iam_attached_fn fn, void *arg);
typedef int (*store_iam_entity_fn)(void *arg, const char *entity_type,
    const char *entity_name);
int store_iam_policy_entities(struct store *st, const char *policy_arn,
    store_iam_entity_fn fn, void *arg);

#endif
