/* portprops: what the client of a Port session (spec 7.4) learns from the
 * agent's HandshakeRequest: the Properties it forwards (localPortNumber,
 * localUnixSocket, localConnectionType, portNumber, type), the mode both
 * sides pick from each other's versions (10.2), and the lines AWS's plugin
 * prints (7.5). Pure functions, no I/O, unit-tested on hostile input. */
#ifndef PORTHOLE_CLIENT_PORTPROPS_H
#define PORTHOLE_CLIENT_PORTPROPS_H

#include <stddef.h>
#include <stdint.h>

/* sizeof(struct sockaddr_un.sun_path) on Linux */
#define CLIENT_PORT_MAX_SOCKET 108

/* spec 3.4 Flag values */
#define CLIENT_FLAG_DISCONNECT_TO_PORT 1u
#define CLIENT_FLAG_TERMINATE_SESSION 2u
#define CLIENT_FLAG_CONNECT_TO_PORT_ERROR 3u

enum client_port_mode {
	CLIENT_PORT_STDIO = 1,  /* no type (AWS-StartSSHSession): stdin/out */
	CLIENT_PORT_BASIC,      /* LocalPortForwarding, old agent */
	CLIENT_PORT_MUX,        /* LocalPortForwarding, smux v1 */
};

struct client_port_props {
	char port_number[16];       /* the destination port, for messages */
	unsigned local_port;        /* 0: any free port */
	int unix_socket;            /* localConnectionType "unix" */
	char local_socket[CLIENT_PORT_MAX_SOCKET]; /* its path */
	int local_forwarding;       /* type "LocalPortForwarding" */
};

/* The Port Properties from a HandshakeRequest (spec 5.2). Keys match
 * without regard to case and values that are not strings are ignored, as
 * Go's decoder in AWS's plugin does; absent or null Properties give the
 * stdin/stdout mode. PH_ERR_INVALID, with a reason in err, for a request
 * that is not JSON or has no Port SessionType action, a localPortNumber
 * that is not a port, or a unix socket without a usable path. */
int client_port_props_parse(const uint8_t *req, size_t n,
    struct client_port_props *pp, char *err, size_t errlen);

/* AWS's plugin's version rule: a > b when both are dot-separated decimal
 * numbers with the same count of components and a is larger; anything
 * else is "not greater" (the feature stays off). */
int client_version_greater(const char *a, const char *b);

enum client_port_mode client_port_mode_select(
    const struct client_port_props *pp, const char *agent_version);
/* smux keepalive NOPs: off when the agent is newer than 3.1.1511.0. */
int client_port_smux_keepalive(const char *agent_version);
/* Ctrl-C as Flag TerminateSession (else the TerminateSession API): mux
 * always, the other modes when the agent is newer than 2.3.722.0. */
int client_port_terminate_by_flag(enum client_port_mode mode,
    const char *agent_version);

/* "Port 9999 opened for sessionId S." or "Unix socket P opened for
 * sessionId S." (no newline; spec 7.5). */
int client_port_opened_line(char *out, size_t n,
    const struct client_port_props *pp, unsigned port,
    const char *session_id);

#define CLIENT_PORT_WAITING "\nWaiting for connections...\n"
#define CLIENT_PORT_CONNECT_FAILED \
	"\nConnection to destination port failed, check SSM Agent logs.\n"
#define CLIENT_PORT_TERMINATE_LINE "Terminate signal received, exiting.\n"

/* A Flag payload: the value as 4 bytes big-endian. */
void client_port_flag_encode(uint32_t flag, uint8_t out[4]);
/* PH_ERR_INVALID unless exactly 4 bytes. */
int client_port_flag_decode(const uint8_t *p, size_t n, uint32_t *flag);

#endif
