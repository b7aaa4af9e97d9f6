/* portfwd: the local end of port forwarding (spec 7.4) in basic and mux
 * modes: the listener on localhost or a unix socket, the accepted
 * connections, DisconnectToPort between basic connections, the smux v1
 * client of mux mode, and backpressure both ways. The data channel belongs
 * to the caller (session.c), reached through callbacks; the stdin/stdout
 * mode of AWS-StartSSHSession is the session's own stdio. */
#ifndef PORTHOLE_CLIENT_PORTFWD_H
#define PORTHOLE_CLIENT_PORTFWD_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "client/portprops.h"

/* Largest data-channel payload we send in port sessions. AWS's plugin
 * sends 1024 bytes at a time; both porthole's agent (64 KiB, spec 10.4)
 * and AWS's (no read limit) take larger ones, and per-message costs
 * (header, digest, acknowledgement, a wake-up of three processes)
 * dominate the throughput otherwise: the most porthole's agent takes. */
#define CLIENT_PORT_PAYLOAD ((size_t)64 << 10)

struct client_portfwd;

struct client_portfwd_cbs {
	/* One PayloadType 1 message: 0 when taken, PH_ERR_AGAIN when the
	 * channel is full (try again after client_portfwd_writable), another
	 * error when it can never be sent. */
	int (*send)(void *ud, const uint8_t *p, size_t n);
	/* One Flag message (spec 3.4); best effort. */
	int (*send_flag)(void *ud, uint32_t flag);
	/* Whether send would take a message now. */
	int (*can_send)(void *ud);
	/* Text for the user, on stdout as AWS's plugin prints it. */
	void (*print)(void *ud, const char *text);
	/* Stop (1) or restart (0) reading the data channel: a local reader
	 * is slower than the agent. */
	void (*pause_input)(void *ud, int pause);
	/* Forwarding cannot go on (the listener failed, the agent's smux
	 * stream is broken): end the session with this message. */
	void (*fatal)(void *ud, const char *msg);
};

/* Set up mode (CLIENT_PORT_BASIC or CLIENT_PORT_MUX) on loop; keepalive:
 * smux NOPs (client_port_smux_keepalive). Nothing listens yet. */
int client_portfwd_new(struct client_portfwd **out, uv_loop_t *loop,
    enum client_port_mode mode, const struct client_port_props *pp,
    const char *session_id, int keepalive,
    const struct client_portfwd_cbs *cbs, void *ud);
/* Open the listener and print AWS's lines. 0, or an error with a message
 * in err (nothing listens then). */
int client_portfwd_start(struct client_portfwd *pf, char *err,
    size_t errlen);
/* The port the listener got (0 for a unix socket or before start). */
unsigned client_portfwd_port(const struct client_portfwd *pf);
/* An in-order message from the agent (the channel's deliver): 0 when
 * consumed, PH_ERR_AGAIN when it must wait (not acknowledged). */
int client_portfwd_deliver(struct client_portfwd *pf, uint32_t type,
    const uint8_t *p, size_t n);
/* The channel may take more: send what waits, read local sockets again. */
void client_portfwd_writable(struct client_portfwd *pf);
/* Close everything (the unix socket file is removed). Handles close on the
 * loop's next turn; the object is freed then. NULL is fine. */
void client_portfwd_close(struct client_portfwd *pf);
/* Local connections open now (for logs and tests). */
size_t client_portfwd_connections(const struct client_portfwd *pf);

#endif
