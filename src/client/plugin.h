/* plugin: the argv contract between the AWS CLI and session-manager-plugin
 * (spec 1.1, 1.2), the StartSession response it carries, and the options of
 * `porthole start-session`. Pure parsing: no I/O, no globals; the caller
 * supplies the environment through a lookup function. */
#ifndef PORTHOLE_CLIENT_PLUGIN_H
#define PORTHOLE_CLIENT_PLUGIN_H

#include <stddef.h>

/* spec 1.2: argv1 starting with this names an environment variable. */
#define CLIENT_PLUGIN_ENV_PREFIX "AWS_SSM_START_SESSION_RESPONSE"
/* spec 1.2: argc 4 is the legacy CLI (no profile, parameters, endpoint). */
#define CLIENT_PLUGIN_LEGACY_ARGC 4

/* Bounds on what we accept from argv / the environment / the API. The
 * botocore limits are smaller (TokenValue 300, SessionId 96); these leave
 * room for other servers without letting garbage through unbounded. */
#define CLIENT_MAX_RESPONSE_JSON ((size_t)64 << 10)
#define CLIENT_MAX_SESSION_ID 256
#define CLIENT_MAX_TOKEN 8192
#define CLIENT_MAX_URL 4096

enum client_plugin_action {
	CLIENT_PLUGIN_BANNER = 1, /* argc 1: "installed successfully", exit 0 */
	CLIENT_PLUGIN_VERSION,    /* argc 2, --version: version, exit 0 */
	CLIENT_PLUGIN_UNKNOWN_OP, /* argc 2-3 otherwise: "Unknown operation" */
	CLIENT_PLUGIN_INVALID_OP, /* argv3 is not StartSession */
	CLIENT_PLUGIN_FAIL,       /* unusable input; err says why */
	CLIENT_PLUGIN_START,      /* run the session */
};

/* What StartSession / ResumeSession returned (strings are malloc'd). */
struct client_start_response {
	char *session_id;
	char *token;
	char *stream_url;
};

struct client_plugin_args {
	enum client_plugin_action action;
	int legacy;                 /* argc 4: KMS is refused (spec 6.5) */
	const char *operation;      /* argv3 (points into argv) */
	const char *unknown;        /* argv1 for CLIENT_PLUGIN_UNKNOWN_OP */
	/* Name of the environment variable the response came from; the caller
	 * unsets it (spec 1.2). NULL when argv1 held the JSON itself. Points
	 * into argv. */
	const char *response_env;
	struct client_start_response resp;
	const char *region;         /* argv2 ("" if absent), into argv */
	const char *profile;        /* argv4 ("" = default chain) */
	char *target;               /* argv5's Target or "" (malloc'd) */
	const char *endpoint;       /* argv6 ("" = default) */
	char err[256];
};

typedef const char *(*client_getenv_fn)(const char *name, void *ud);

/* Parse the plugin's argv and environment into a (zeroed by the function)
 * struct; a->action says what to do. Returns 0, or PH_ERR_INVALID /
 * PH_ERR_TOOBIG / PH_ERR_NOMEM with action CLIENT_PLUGIN_FAIL and a->err
 * set. getenv_fn may be NULL (the process environment is used). */
int client_plugin_parse(struct client_plugin_args *a, int argc,
    char *const argv[], client_getenv_fn getenv_fn, void *ud);
void client_plugin_args_free(struct client_plugin_args *a);

/* Parse a StartSession/ResumeSession-shaped JSON object. require_all: all
 * three keys must be non-empty strings (StartSession); otherwise only
 * TokenValue is read, and a null or absent one leaves resp->token NULL
 * (ResumeSession, spec 1.3). err gets a message on failure. */
int client_start_response_parse(struct client_start_response *resp,
    const char *json, size_t n, int require_all, char *err, size_t errlen);
void client_start_response_free(struct client_start_response *resp);

/* `porthole ...` command line. */
enum client_cli_action {
	CLIENT_CLI_HELP = 1,
	CLIENT_CLI_VERSION,
	CLIENT_CLI_START_SESSION,
	CLIENT_CLI_USAGE,          /* bad command line; err says why, exit 2 */
};

struct client_cli_args {
	enum client_cli_action action;
	const char *target;        /* all point into argv, NULL if not given */
	const char *document_name;
	const char *parameters;    /* JSON object, or Key=Value[,Key=Value] */
	const char *profile;
	const char *region;
	const char *endpoint_url;
	const char *keepalive;     /* --keepalive SECONDS */
	const char *escape_char;   /* --escape-char C|^X|none */
	char err[256];
};

/* Longest keep-alive interval accepted, in seconds. */
#define CLIENT_KEEPALIVE_MAX 3600

/* A keep-alive interval: decimal seconds 0..CLIENT_KEEPALIVE_MAX (0 turns
 * pings off). Returns 0 or PH_ERR_INVALID. */
int client_parse_keepalive(const char *s, int *seconds);

int client_cli_parse(struct client_cli_args *a, int argc,
    char *const argv[]);

/* Build the StartSession request body {"Target":...,"DocumentName":...,
 * "Parameters":{...}} (malloc'd string). Parameters accept a JSON object
 * of string arrays, or the CLI shorthand Key=Value,Key2=Value2 (each value
 * becomes a one-element list). */
int client_cli_start_request(const struct client_cli_args *a, char **out,
    char *err, size_t errlen);

/* The basename of argv0 selects the mode. */
int client_invoked_as_plugin(const char *argv0);

#endif
