/* task: the session start message of the control channel, interactive_shell
 * (spec 8.2), parsed and validated into what the agent acts on. Keys match
 * case-insensitively (spec 8.1). */
#ifndef PORTHOLE_AGENT_TASK_H
#define PORTHOLE_AGENT_TASK_H

#include <stddef.h>
#include <stdint.h>

/* spec 10.4: SessionId is 1-96 characters (botocore). */
#define AGENT_SESSION_ID_MAX 96
/* Linux user names are at most 32 characters (useradd). */
#define AGENT_USER_MAX 32
/* Bounds on strings we keep from the message. */
#define AGENT_COMMANDS_MAX ((size_t)64 * 1024)
#define AGENT_PROFILE_MAX ((size_t)64 * 1024)
#define AGENT_KMS_KEY_MAX 2048
/* Port (spec 7.4): a DNS name is at most 253 characters. */
#define AGENT_HOST_MAX 253
#define AGENT_PROPERTIES_MAX ((size_t)8 * 1024)
#define AGENT_OWNER_MAX 2048
/* spec 10.1: the type of port forwarding (anything else: SSH). */
#define AGENT_PORT_LPF "LocalPortForwarding"

/* spec 7: session plugin names. */
enum agent_session_type {
	AGENT_ST_STANDARD = 1,   /* Standard_Stream */
	AGENT_ST_INTERACTIVE,    /* InteractiveCommands */
	AGENT_ST_NONINTERACTIVE, /* NonInteractiveCommands */
	AGENT_ST_PORT,           /* Port */
};

struct agent_task {
	char session_id[AGENT_SESSION_ID_MAX + 1];
	enum agent_session_type type;
	/* spec 7.6: RunAs is on; run_as_user is the user to run as (the
	 * payload's RunAsUser, else inputs.runAsDefaultUser). */
	int run_as_enabled;
	char run_as_user[AGENT_USER_MAX + 1];
	/* properties.linux.runAsElevated: no user switch. */
	int run_as_elevated;
	/* InteractiveCommands: properties.linux.commands */
	char *commands;
	char *shell_profile; /* Standard_Stream: inputs.shellProfile.linux */
	char *kms_key_id;    /* inputs.kmsKeyId, NULL when empty */
	char *owner;         /* SessionOwner (caller ARN), NULL if absent */
	/* Port (spec 7.4): properties.portNumber (1..65535), host ("":
	 * localhost), type LocalPortForwarding (else SSH: stdin/stdout), and
	 * the properties with parameters substituted, as JSON text for the
	 * handshake's SessionType action. */
	unsigned port_number;
	char port_host[AGENT_HOST_MAX + 1];
	int port_lpf;
	char *port_properties;
};

/* Parse an interactive_shell payload (the outer JSON whose Content is the
 * AgentTaskPayload as a JSON string). On failure err says why and, if the
 * session id could be read, t->session_id is set so the caller can report
 * the failure for that session; other fields are released. */
int agent_task_parse(struct agent_task *t, const uint8_t *p, size_t n,
    char *err, size_t errlen);
void agent_task_free(struct agent_task *t);

/* spec 7: "Standard_Stream" etc. for a type. */
const char *agent_session_type_name(enum agent_session_type type);
/* Session ids and user names as they may appear in paths and URLs. */
int agent_valid_session_id(const char *s);
int agent_valid_user_name(const char *s);
/* A destination host as the Port properties may give it: a DNS name or
 * an IPv4/IPv6 literal (letters, digits, '.', '-', '_', ':', '%'), 1..253
 * characters. */
int agent_valid_port_host(const char *s);

#endif
