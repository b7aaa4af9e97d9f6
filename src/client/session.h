/* session: one interactive data-channel session of the client (spec 2.1,
 * 4, 5, 6, 7.1): the WebSocket to StreamUrl, the reliability layer, KMS
 * session encryption, the user's terminal (with ssh's "~." escapes),
 * keep-alive, reconnects through ResumeSession, and the end of the
 * session. Runs its own libuv loop until the session is over. */
#ifndef PORTHOLE_CLIENT_SESSION_H
#define PORTHOLE_CLIENT_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "client/kms.h"

/* Exit statuses of client_session_run. */
#define CLIENT_EXIT_OK 0
#define CLIENT_EXIT_FAIL 1
#define CLIENT_EXIT_ESCAPE 255     /* "~." ended the session, as in ssh
				    * (porthole mode; the plugin exits 0) */

#define CLIENT_KEEPALIVE_DEFAULT 30  /* seconds between pings */
/* A best-effort TerminateSession on the way out waits this long. */
#define CLIENT_TERMINATE_TIMEOUT 5   /* seconds */

struct client_session_params {
	const char *session_id;
	const char *token;        /* StartSession's TokenValue */
	const char *stream_url;
	const char *target;       /* StartSession's Target ("" if unknown) */
	/* CA bundle for the data-channel TLS; NULL: SSL_CERT_FILE if set,
	 * else the system store. */
	const char *ca_file;
	/* 1 when run as session-manager-plugin: a remote command's exit code
	 * is not passed on (the AWS CLI turns any non-zero status into 255 and
	 * an error line, spec 1.1 step 7), as the official plugin does. */
	int plugin_mode;
	int legacy_cli;           /* argc 4: KMS refused, spec 6.5 */
	/* WebSocket ping interval in seconds: 0 means
	 * CLIENT_KEEPALIVE_DEFAULT, negative turns pings off. A peer silent
	 * (no data, no pong) for 3 intervals is taken as gone: reconnect. */
	int keepalive_s;
	/* The escape character when stdin is a terminal: 0 means '~',
	 * negative turns escapes off. */
	int escape_char;
	/* Fresh TokenValue for a reconnect (ssm:ResumeSession, spec 1.3).
	 * Returns 0 with *token malloc'd; 0 with *token NULL when the service
	 * returned none (the session timed out); or an error with a message in
	 * err. NULL: reconnects reuse nothing and fail. Runs on a worker
	 * thread. */
	int (*resume)(void *ud, const char *session_id, char **token,
	    char *err, size_t errlen);
	void *resume_ud;
	/* ssm:TerminateSession, best effort, bounded by timeout_s: when the
	 * agent stopped acknowledging our input for good (spec 1.3 (a), 4.4),
	 * after "~.", after a failed handshake. May be NULL. Gets resume_ud;
	 * runs on a worker thread. */
	int (*terminate)(void *ud, const char *session_id, long timeout_s,
	    char *err, size_t errlen);
	/* kms:GenerateDataKey with the user's credentials for KMSEncryption
	 * (spec 6.1): 0 with the 64-byte key and a malloc'd base64
	 * CiphertextBlob, or an error with the CLI-style message in err. NULL:
	 * KMSEncryption is answered Failed. Gets resume_ud; runs on a worker
	 * thread. */
	int (*kms_data_key)(void *ud, const struct client_kms_request *rq,
	    uint8_t key[CLIENT_KMS_DATA_KEY_LEN], char **ciphertext_b64,
	    char *err, size_t errlen);
};

/* Run the session; returns the process exit status:
 *   0    the session ended normally (channel_closed), or, in porthole
 *        mode, the remote exit code of a NonInteractiveCommands session;
 *   1    the session failed (SessionStatus "Failed", a failed handshake
 *        such as KMS encryption), timed out on resume, the connection was
 *        lost for good, or the agent stopped acknowledging input;
 *   255  the user typed "~." (CLIENT_EXIT_ESCAPE) in porthole mode; as
 *        session-manager-plugin that is 0, since the AWS CLI reports
 *        any other status as a failed command. */
int client_session_run(const struct client_session_params *p);

#endif
