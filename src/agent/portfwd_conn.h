/* portfwd_conn: one TCP connection from the agent to a port forwarding
 * destination (spec 7.4): the name resolved on libuv's thread pool (and
 * kept for a while, shared by the session's connections), every address
 * checked against the deny list, each tried in order with a connect
 * timeout, first success wins; then reads in large chunks, paced by the
 * owner, and a write queue the owner watches against a high-water mark.
 * No callback is made after pf_conn_close. */
#ifndef PORTHOLE_AGENT_PORTFWD_CONN_H
#define PORTHOLE_AGENT_PORTFWD_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "agent/portfwd_deny.h"
#include "agent/task.h"

#define PF_READ_MAX ((size_t)64 * 1024)      /* one read of a socket */
#define PF_WQ_HIGH ((size_t)1024 * 1024)     /* write queue: stop feeding */
#define PF_WQ_LOW ((size_t)256 * 1024)       /* ... feed again (on_drain) */
#define PF_CONNECT_TIMEOUT_MS 10000          /* one address */
#define PF_LINGER_MS 10000                   /* after our FIN, for theirs */
#define PF_ADDR_MAX 16                       /* addresses tried per dial */
#define PF_RESOLVE_TTL_MS 30000              /* a name's addresses kept */
#define PF_WHY_MAX 600

/* The destination, shared by a session's connections. */
struct pf_dest {
	uv_loop_t *loop;
	const struct pf_denylist *deny;  /* NULL: the default list */
	char host[AGENT_HOST_MAX + 1];   /* "": localhost */
	unsigned port;
	/* The last resolution (names only; literals need none). */
	struct sockaddr_storage addrs[PF_ADDR_MAX];
	size_t naddrs;
	uint64_t resolved_ms;
	int resolved;
	/* Bytes queued for all the session's open connections (one that is
	 * closed or finishing no longer counts), and whether the owner
	 * refused input for their sum (cleared by the owner). */
	size_t wq_total;
	int wq_over;
};

struct pf_conn;

struct pf_conn_cbs {
	/* Connected (pf_conn_address says where), or not: why is for the
	 * user ("Forwarding to IP address ... is forbidden.", "Unable to
	 * connect to specified port: ..."). The owner closes a failed one. */
	void (*on_connected)(void *ud, struct pf_conn *c);
	void (*on_dial_failed)(void *ud, struct pf_conn *c, const char *why);
	/* How much the owner takes now (0 stops the reads until
	 * pf_conn_resume). */
	size_t (*room)(void *ud, struct pf_conn *c);
	/* Bytes read; returns how many it took. The rest stays with the
	 * connection, whose reads stop until pf_conn_resume. */
	size_t (*on_data)(void *ud, struct pf_conn *c, const uint8_t *p,
	    size_t n);
	/* The destination ended its side (err 0; after every byte it sent
	 * was taken) or the connection failed (err a libuv error). */
	void (*on_eof)(void *ud, struct pf_conn *c, int err);
	/* The write queue fell below PF_WQ_LOW after being above it. */
	void (*on_drain)(void *ud, struct pf_conn *c);
};

/* Start dialling d (which must outlive the connection's callbacks). */
int pf_conn_dial(struct pf_conn **out, struct pf_dest *d,
    const struct pf_conn_cbs *cbs, void *ud);
/* Queue bytes for the destination (written at once when the socket
 * takes them). The owner stops feeding above PF_WQ_HIGH. */
int pf_conn_write(struct pf_conn *c, const void *p, size_t n);
size_t pf_conn_queued(const struct pf_conn *c);
int pf_conn_connected(const struct pf_conn *c);
/* The owner can take data again: offer what was left, read again. */
void pf_conn_resume(struct pf_conn *c);
/* Half-close: FIN to the destination once the queue is written; its
 * data still comes (ssh -L keeps a half-closed connection open too). */
void pf_conn_shutdown(struct pf_conn *c);
/* Send FIN once the queue is written, drop whatever the destination
 * still sends, close at its FIN or after PF_LINGER_MS. No callbacks from
 * now on. */
void pf_conn_finish(struct pf_conn *c);
/* Close now (queued bytes are dropped). No callbacks from now on. */
void pf_conn_close(struct pf_conn *c);

void pf_conn_set_tag(struct pf_conn *c, uint32_t tag);
uint32_t pf_conn_tag(const struct pf_conn *c);
/* "ip:port" ("[v6]:port") of the connected address, "" before. */
const char *pf_conn_address(const struct pf_conn *c);
/* Bytes written to / read from the destination. */
uint64_t pf_conn_bytes_to(const struct pf_conn *c);
uint64_t pf_conn_bytes_from(const struct pf_conn *c);

/* Resolve host synchronously if it is an IP literal (or "" for
 * localhost's literals is not done: localhost is a name). 1 and out
 * filled for a literal, 0 for a name, PH_ERR_INVALID for garbage. For
 * tests too. */
int pf_dest_literal(const char *host, unsigned port,
    struct sockaddr_storage *out);

#endif
