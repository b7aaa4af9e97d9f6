/* store: portholed's persistent state (SQLite, WAL mode). Every function is
 * synchronous and short; it runs on the loop thread. */
#ifndef PORTHOLE_STORE_H
#define PORTHOLE_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

int store_open(struct store **out, const char *path);
void store_close(struct store *st);

/* ---- managed instances ------------------------------------------------ */

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
/* 0 if the instance is registered and not deregistered. */
int store_instance_active(struct store *st, const char *instance_id);

/* ---- sessions --------------------------------------------------------- */

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

#endif
