/* session: one interactive data-channel session of the client (spec 2.1,
 * 4, 5, 7.1): the WebSocket to StreamUrl, the reliability layer, the
 * user's terminal, reconnects through ResumeSession, and the end of the
 * session. Runs its own libuv loop until the session is over. */
#ifndef PORTHOLE_CLIENT_SESSION_H
#define PORTHOLE_CLIENT_SESSION_H

#include <stddef.h>

/* Exit statuses of client_session_run. */
#define CLIENT_EXIT_OK 0
#define CLIENT_EXIT_FAIL 1

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
	int legacy_cli;           /* argc 4: spec 6.5 */
	/* Fresh TokenValue for a reconnect (ssm:ResumeSession, spec 1.3).
	 * Returns 0 with *token malloc'd; 0 with *token NULL when the service
	 * returned none (the session timed out); or an error with a message in
	 * err. NULL: reconnects reuse nothing and fail. */
	int (*resume)(void *ud, const char *session_id, char **token,
	    char *err, size_t errlen);
	void *resume_ud;
	/* ssm:TerminateSession, called (blocking) when the agent stopped
	 * acknowledging our input for good (spec 1.3 (a), 4.4). May be NULL.
	 * Gets resume_ud. */
	int (*terminate)(void *ud, const char *session_id, char *err,
	    size_t errlen);
};

/* Run the session; returns the process exit status:
 *   0  the session ended normally (channel_closed), or, in porthole mode,
 *      the remote exit code of a NonInteractiveCommands session;
 *   1  the session failed (SessionStatus "Failed"), timed out on resume,
 *      the connection was lost for good, or the agent stopped
 *      acknowledging input. */
int client_session_run(const struct client_session_params *p);

#endif
