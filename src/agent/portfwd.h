/* portfwd: the Port session plugin on the agent (spec 7.4): the client's
 * stream payloads to TCP connections to the destination and back, in the
 * mode the versions pick:
 *   basic  one destination connection at a time; DisconnectToPort closes
 *          it, the next Output redials; its EOF closes it and waits for
 *          the next Output (LocalPortForwarding)
 *   stdio  AWS-StartSSHSession (type absent): as basic, but the
 *          destination's EOF ends the session successfully
 *   mux    smux v1 (common/smux.h) inside the stream: each stream the
 *          client opens is a connection; a failed dial answers
 *          ConnectToPortError and closes that stream only
 * It does not know the data channel: payloads leave through cbs->send
 * (channel_send) and the owner says when there is room again
 * (portfwd_resume). Memory is bounded both ways (see portfwd.c). */
#ifndef PORTHOLE_AGENT_PORTFWD_H
#define PORTHOLE_AGENT_PORTFWD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/portfwd_deny.h"

/* spec 10.2 */
#define PF_MUX_MIN_CLIENT "1.1.70"
/* spec 7.4: clients multiplex only with agents newer than this, so an
 * agent of this version or older must not expect smux. */
#define PF_MUX_MIN_AGENT_AFTER "3.0.196.0"
#define PF_KEEPALIVE_OFF_AFTER "1.2.331.0"
/* spec 3.4 flags */
#define PF_FLAG_DISCONNECT 1
#define PF_FLAG_TERMINATE 2
#define PF_FLAG_CONNECT_ERROR 3
/* Stream payloads we send: porthole's receivers, and AWS's plugin (which
 * sets no read limit on its WebSocket), take up to 64 KiB. */
#define PF_PAYLOAD ((size_t)64 * 1024)
/* Client bytes held while a basic connection is being dialled, and the
 * total a mux session's streams may hold for slow destinations, before
 * the client's input waits. */
#define PF_IN_MAX ((size_t)4 * 1024 * 1024)
/* xtaci's keepalive: a NOP every 10 s. */
#define PF_KEEPALIVE_MS 10000

enum portfwd_mode {
	PF_MODE_BASIC = 1,
	PF_MODE_STDIO,
	PF_MODE_MUX,
};

struct portfwd_cbs {
	/* One stream payload to the client (channel_send): 0, or
	 * PH_ERR_AGAIN when the channel is full (nothing sent). */
	int (*send)(void *ud, uint32_t payload_type, const void *p, size_t n);
	/* Whether send takes more now (the channel and the socket below
	 * their marks). */
	int (*writable)(void *ud);
	/* One metadata frame for the session record (a JSON object). */
	void (*record)(void *ud, const char *json, size_t n);
	/* Something changed that may let the owner read the client's input
	 * again (portfwd_input_congested). */
	void (*on_change)(void *ud);
	/* The session is over: failed 0 (Success) or 1, msg for the user
	 * ("" when none). Called once. */
	void (*on_end)(void *ud, int failed, const char *msg);
};

struct portfwd_params {
	uv_loop_t *loop;
	const struct pf_denylist *deny;  /* NULL: the default list */
	const char *host;                /* "": localhost */
	unsigned port;
	enum portfwd_mode mode;
	int keepalive;                   /* mux: send NOPs (spec 10.2) */
	const char *session_id;          /* for logs */
};

/* Compare versions component by component, numerically ("1.2" <
 * "1.2.0.1"; a component that is not a number counts as 0). */
int portfwd_version_cmp(const char *a, const char *b);
/* spec 7.4 and 10.2: the agent's choice of mode and of the keepalive.
 * Both sides choose on their own, so the agent also asks what the client
 * will have decided from the agent's version (agent_version). */
enum portfwd_mode portfwd_pick_mode(const char *agent_version,
    const char *client_version, int lpf);
int portfwd_keepalive(const char *client_version);
const char *portfwd_mode_name(enum portfwd_mode mode);

struct portfwd;

int portfwd_new(struct portfwd **out, const struct portfwd_params *p,
    const struct portfwd_cbs *cbs, void *ud);
/* A stream payload from the client: Output (1) or Flag (10); others are
 * ignored. 0 when consumed (acknowledge it), PH_ERR_AGAIN when it must
 * wait (the client resends it). */
int portfwd_input(struct portfwd *pf, uint32_t payload_type,
    const uint8_t *p, size_t n);
/* The owner should stop reading the client's input for now (it would be
 * refused): destinations are slow. */
int portfwd_input_congested(const struct portfwd *pf);
/* The channel has room again: send what waits, read the destinations. */
void portfwd_resume(struct portfwd *pf);
/* Every second or so (keepalive). */
void portfwd_tick(struct portfwd *pf, uint64_t now_ms);
/* Bytes from the client to destinations, and back. */
void portfwd_counts(const struct portfwd *pf, uint64_t *to_dest,
    uint64_t *from_dest);
/* Close every connection; pf frees itself once they are gone. No
 * callback is made from now on. */
void portfwd_close(struct portfwd *pf);

#endif
