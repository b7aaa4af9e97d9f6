/* store: portholed's persistent state (SQLite, WAL mode). Every function is
 * synchronous and short; it runs on the loop thread. */
#ifndef PORTHOLE_STORE_H
#define PORTHOLE_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* Open the database at path, creating it if it does not exist. */
int store_open(struct store **out, const char *path);

#define STORE_OPEN_CREATE 0x1   /* create the database if it is missing */
/* A command beside a running portholed (agent-package add): the
 * instances' PingStatus is not reset to ConnectionLost. */
#define STORE_OPEN_SHARED 0x2

/* store_open with flags; without STORE_OPEN_CREATE a missing database is
 * PH_ERR_NOTFOUND. On failure why (if not NULL) gets the cause in words
 * for the operator, e.g. "the file system is read-only". */
int store_open_ex(struct store **out, const char *path, int flags,
    char *why, size_t why_size);
/* Writes out pending state changes first (see store_retry). */
void store_close(struct store *st);

/* State changes that could not be written (disk full, I/O error) are kept
 * in memory: session status changes and instance connected, disconnected
 * and seen. Reads show them meanwhile, a later change of the same record
 * supersedes a pending one, and they are written in order by the next
 * such change or by store_retry, which the server calls periodically.
 * Those functions then return 0. Returns how many are still pending. */
size_t store_retry(struct store *st);
#define STORE_RETRY_MS 1000

/* ---- managed instances -------------------------------------------------- */

struct instance_conn_info {
	const char *agent_version;
	const char *platform_type;     /* Linux | Windows | MacOS */
	const char *platform_name;     /* e.g. Debian GNU/Linux */
	const char *platform_version;  /* e.g. 12 */
	const char *ip_address;
	const char *computer_name;
};

/* The agent opened its control channel: record what it reported, PingStatus
 * Online, LastPingDateTime now. */
int store_instance_connected(struct store *st, const char *instance_id,
    const struct instance_conn_info *info, int64_t now_ms);
/* PingStatus ConnectionLost (control channel closed). */
int store_instance_disconnected(struct store *st, const char *instance_id,
    int64_t now_ms);
/* Refresh LastPingDateTime (keep-alive traffic seen). */
int store_instance_seen(struct store *st, const char *instance_id,
    int64_t now_ms);
/* Refresh LastPingDateTime of every Online instance at once. */
int store_instances_seen_online(struct store *st, int64_t now_ms);
/* 0 if the instance is registered and not deregistered. */
int store_instance_active(struct store *st, const char *instance_id);

/* ---- sessions ----------------------------------------------------------- */

#define SESSION_ID_MAX 97

struct session_rec {
	char session_id[SESSION_ID_MAX];
	char target[64];
	char owner[256];           /* caller ARN */
	char status[16];           /* Connected|Connecting|Terminating|Terminated|Failed */
	char document_name[128];
	char reason[256];
	int64_t start_ms;
	int64_t end_ms;            /* 0 while open */
};

int store_session_get(struct store *st, const char *session_id,
    struct session_rec *out);
/* Set the status; terminal states (Terminated, Failed) also set end_ms and
 * are final: a later non-terminal status does not overwrite them. */
int store_session_set_status(struct store *st, const char *session_id,
    const char *status, const char *reason, int64_t now_ms);
/* Check a client data-channel token: it must have been issued for this
 * session, be unexpired and unused; it is marked used. Constant-time
 * comparison. 0 on success, PH_ERR_DENIED otherwise. */
int store_session_consume_token(struct store *st, const char *session_id,
    const char *token, int64_t now_ms);
/* Sessions not yet in a terminal state (for restart and shutdown). The
 * callback gets each session id. */
int store_session_foreach_open(struct store *st,
    void (*fn)(void *arg, const char *session_id, const char *target),
    void *arg);

/* ---- IAM users and access keys ------------------------------------------ */

struct principal; /* server/authz.h */

#define STORE_AKID_SIZE 21     /* AKIA + 16 characters, NUL */
#define STORE_SECRET_SIZE 41   /* 40 characters, NUL */

/* PH_ERR_EXISTS if the user name is taken. */
int store_iam_create_user(struct store *st, const char *user_name,
    const char *arn, int is_root_admin);
/* A fresh active key for an existing user (PH_ERR_NOTFOUND otherwise).
 * The secret is kept as is in the database file (mode 0600); encrypting it
 * under a root key is still to do. */
int store_iam_create_access_key(struct store *st, const char *user_name,
    char akid_out[STORE_AKID_SIZE], char secret_out[STORE_SECRET_SIZE]);
/* The secret and owner of an access key, for SigV4 (same contract as
 * sigv4_secret_fn): 0, PH_ERR_NOTFOUND (unknown), PH_ERR_DENIED (key or user
 * inactive; p_out is still filled). secret and p_out may be NULL. */
int store_iam_lookup_key(struct store *st, const char *akid, char *secret,
    size_t secret_size, struct principal *p_out);

/* ---- tags (any resource type: ManagedInstance, Document, Activation) --- */

struct store_tag {
	const char *key;
	const char *value;
};

#define STORE_TAGS_MAX 50      /* per resource, as AWS */

/* Add or overwrite; PH_ERR_TOOBIG if the resource would hold more than
 * max_total tags (nothing is changed then). */
int store_tags_add(struct store *st, const char *resource_type,
    const char *resource_id, const struct store_tag *tags, size_t ntags,
    size_t max_total);
int store_tags_remove(struct store *st, const char *resource_type,
    const char *resource_id, const char *const *keys, size_t nkeys);
/* A counter bumped by every change that can alter an authorisation
 * decision: tags here, IAM entities, memberships and policies in
 * store_iam.h. Decision caches compare it (one process; in memory). */
uint64_t store_authz_generation(const struct store *st);
/* Tags of one resource in key order. */
int store_tags_foreach(struct store *st, const char *resource_type,
    const char *resource_id,
    void (*fn)(void *arg, const char *key, const char *value), void *arg);

/* ---- activations -------------------------------------------------------- */

#define STORE_ACTIVATION_ID_SIZE 37   /* UUID */
#define STORE_ACTIVATION_CODE_LEN 20
#define STORE_IAM_ROLE_SIZE 65        /* IamRole: at most 64 characters */
#define STORE_TEXT_SIZE 1025          /* 256 characters of UTF-8 */

struct activation_new {
	const char *description;            /* may be NULL */
	const char *default_instance_name;  /* may be NULL */
	const char *iam_role;
	int registration_limit;
	int64_t expiration_ms;
	const struct store_tag *tags;       /* copied to registered instances */
	size_t ntags;
};

struct activation_rec {
	char id[STORE_ACTIVATION_ID_SIZE];
	char description[STORE_TEXT_SIZE];
	char default_instance_name[STORE_TEXT_SIZE];
	char iam_role[STORE_IAM_ROLE_SIZE];
	int registration_limit;
	int registrations_count;
	int64_t expiration_ms;
	int64_t created_ms;
};

/* New activation with a random id and code; only a salted SHA-256 of the
 * code is stored. */
int store_activation_create(struct store *st, const struct activation_new *a,
    int64_t now_ms, char id_out[STORE_ACTIVATION_ID_SIZE],
    char code_out[STORE_ACTIVATION_CODE_LEN + 1]);
int store_activation_get(struct store *st, const char *id,
    struct activation_rec *out);
/* Every activation, oldest first; fn returns non-zero to stop. */
int store_activation_foreach(struct store *st,
    int (*fn)(void *arg, const struct activation_rec *a), void *arg);
/* PH_ERR_NOTFOUND if there is no such activation. Registered instances
 * stay registered. */
int store_activation_delete(struct store *st, const char *id);

/* The activation rules, without I/O: code_ok says whether the presented
 * code matched. PH_ERR_DENIED (wrong code), PH_ERR_EXPIRED (now at or past
 * the expiry), PH_ERR_TOOBIG (limit reached) or 0. */
int store_activation_rules(int code_ok, int64_t now_ms, int64_t expiration_ms,
    int registration_limit, int registrations_count);
/* The AWS error type and message for a store_activation_register result:
 * InvalidActivation (unknown id or wrong code), ActivationExpired,
 * ActivationLimitExceeded... Never NULL. */
const char *store_activation_error_type(int rc);
const char *store_activation_error_message(int rc);

/* Register a managed instance: checks the code (constant time) and the
 * rules above, then in one transaction counts the registration, creates the
 * instance (name: name if not NULL/empty, else the activation's default
 * instance name) and copies the activation's tags to it. Errors as
 * store_activation_rules; PH_ERR_DENIED also for an unknown id.
 * instance_id_out: "mi-" + 17 hex digits. */
int store_activation_register(struct store *st, const char *activation_id,
    const char *code, int64_t now_ms, const char *name,
    const char *cert_fingerprint, char instance_id_out[21],
    char iam_role_out[STORE_IAM_ROLE_SIZE]);

/* ---- managed instances, continued --------------------------------------- */

struct instance_rec {
	char id[21];
	char name[STORE_TEXT_SIZE];
	char activation_id[STORE_ACTIVATION_ID_SIZE];
	char iam_role[STORE_IAM_ROLE_SIZE];
	int64_t registration_ms;
	char cert_serial[128];
	char cert_fingerprint[128];
	int deregistered;
	char ping_status[16];         /* Online | ConnectionLost */
	int64_t last_ping_ms;         /* 0: never */
	char agent_version[32];
	char platform_type[16];
	char platform_name[128];
	char platform_version[64];
	char ip_address[64];
	char computer_name[256];
};

/* Record the certificate issued to an instance. */
int store_instance_set_cert(struct store *st, const char *instance_id,
    const char *cert_serial, const char *cert_fingerprint);
/* PH_ERR_NOTFOUND if unknown (deregistered instances are found). */
int store_instance_get(struct store *st, const char *instance_id,
    struct instance_rec *out);
/* Every registered, not deregistered instance in id order; fn returns
 * non-zero to stop. */
int store_instance_foreach(struct store *st,
    int (*fn)(void *arg, const struct instance_rec *in), void *arg);
/* Mark deregistered (final) and drop its tags. PH_ERR_NOTFOUND if unknown
 * or already deregistered. */
int store_instance_deregister(struct store *st, const char *instance_id,
    int64_t now_ms);

/* ---- sessions, continued ------------------------------------------------ */

#define STORE_TOKEN_SIZE 64           /* 32 random bytes, base64url, NUL */
#define STORE_TOKEN_TTL_MS 60000

/* A session as DescribeSessions shows it. */
struct session_info {
	struct session_rec rec;
	char details[STORE_TEXT_SIZE];      /* last status reason */
	char max_session_duration[8];       /* minutes, "" if none */
};

/* Insert rec (session_id, target, owner, status, document_name, reason,
 * start_ms). PH_ERR_EXISTS on a duplicate id. */
int store_session_create(struct store *st, const struct session_rec *rec,
    const char *max_session_duration);
/* Issue a new single-use client token for a session that is not in a
 * terminal state (PH_ERR_STATE otherwise), valid for ttl_ms; only its hash
 * is kept and it replaces any earlier token. */
int store_session_issue_token(struct store *st, const char *session_id,
    int64_t now_ms, int64_t ttl_ms, char token_out[STORE_TOKEN_SIZE]);
int store_session_get_info(struct store *st, const char *session_id,
    struct session_info *out);

struct session_query {
	int history;               /* 0: Active states, 1: Terminated/Failed */
	const char *session_id;    /* NULL: any (likewise below) */
	const char *target;
	const char *owner;
	const char *status;
	int64_t after_ms;          /* start >= after_ms; INT64_MIN: any */
	int64_t before_ms;         /* start < before_ms; INT64_MAX: any */
	int limit;
	int offset;
};

/* Sessions matching q, newest first; fn returns non-zero to stop. */
int store_session_query(struct store *st, const struct session_query *q,
    int (*fn)(void *arg, const struct session_info *s), void *arg);

/* ---- documents ---------------------------------------------------------- */

/* The JSON content (malloc'd, caller frees) and type ("Session") of a
 * document; the built-in session documents are always present. */
int store_document_get(struct store *st, const char *name, char **content_out,
    char type_out[32]);

/* ---- documents, with versions ------------------------------------------- */

#define STORE_DOC_NAME_SIZE 129       /* 128 characters, NUL */
#define STORE_DOC_VERSIONS_MAX 1000   /* AWS: versions per document */

/* One version of a document. */
struct document_rec {
	char name[STORE_DOC_NAME_SIZE];
	char document_type[48];
	char document_format[8];          /* JSON | YAML | TEXT */
	char version_name[STORE_DOC_NAME_SIZE];
	char display_name[STORE_TEXT_SIZE];
	char target_type[208];
	int builtin;                      /* portholed's, not the account's */
	int64_t version;
	int64_t default_version;
	int64_t latest_version;
	int64_t created_ms;               /* of this version */
	char *content;                    /* store_document_rec_clear frees */
};

/* What CreateDocument and UpdateDocument write. NULL strings: "" (on an
 * update: display_name and target_type stay as they were). */
struct document_new {
	const char *name;
	const char *document_type;
	const char *document_format;
	const char *content;
	const char *version_name;
	const char *display_name;
	const char *target_type;
};

#define STORE_DOC_DEFAULT 0           /* version: the default one */
#define STORE_DOC_LATEST (-1)         /* version: the latest one */

void store_document_rec_clear(struct document_rec *d);
/* One version: a number, STORE_DOC_DEFAULT or STORE_DOC_LATEST, or the
 * version named version_name (if not NULL; then it must also match a
 * given number). PH_ERR_NOTFOUND: no such document; PH_ERR_INVALID: no
 * such version. */
int store_document_version_get(struct store *st, const char *name,
    int64_t version, const char *version_name, struct document_rec *out);
/* Every version of a document, oldest first; fn returns non-zero to stop.
 * PH_ERR_NOTFOUND if there is no such document. */
int store_document_version_foreach(struct store *st, const char *name,
    int (*fn)(void *arg, const struct document_rec *d), void *arg);
/* Every document at its default version, in name order. */
int store_document_foreach(struct store *st,
    int (*fn)(void *arg, const struct document_rec *d), void *arg);
/* Create a document with version 1 as default and latest. A built-in
 * document of the same name is replaced if replace_builtin is set
 * (PH_ERR_EXISTS otherwise, and for any existing name); PH_ERR_TOOBIG
 * when the account already has max_docs documents of its own. */
int store_document_create(struct store *st, const struct document_new *d,
    int replace_builtin, int max_docs, int64_t now_ms);
/* Add the version after the latest; it becomes the default too if
 * make_default. The document becomes the account's (no longer built-in).
 * PH_ERR_NOTFOUND, PH_ERR_TOOBIG (STORE_DOC_VERSIONS_MAX reached). */
int store_document_add_version(struct store *st, const struct document_new *d,
    int make_default, int64_t now_ms, int64_t *version_out);
/* PH_ERR_NOTFOUND (document), PH_ERR_INVALID (version). */
int store_document_set_default(struct store *st, const char *name,
    int64_t version);
/* version 0: the document, its versions and its tags; a document
 * portholed provides comes back as built (so deleting the preferences
 * document restores the defaults). Otherwise one version: PH_ERR_STATE if
 * it is the default, PH_ERR_INVALID if it does not exist. */
int store_document_delete(struct store *st, const char *name,
    int64_t version);

#endif
