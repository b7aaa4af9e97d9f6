/* smux: xtaci/smux protocol version 1, the stream multiplexer of mux port
 * forwarding (spec 7.4), for both ends: the client (opens streams, odd ids
 * 3, 5, 7 ...) and the agent (the server: accepts them). It does no I/O:
 * the smux byte stream leaves through the write callback and arrives
 * through smux_input in any chunking; time comes from the caller.
 *
 * Frame: ver(1)=1 | cmd(1) | length(2, LE) | stream id(4, LE) | data.
 * Commands: SYN 0 (open), FIN 1 (close), PSH 2 (data), NOP 3 (keepalive).
 * Version 1 has no window updates: a slow receiver stops reading the whole
 * byte stream, which this module does by refusing input (PH_ERR_AGAIN) so
 * the caller's data channel withholds its acknowledgement (channel.h).
 *
 * Memory is bounded both ways: received data waiting for a slow consumer
 * counts against per-stream and total limits, past which smux_input takes
 * nothing; data to send waits in one outgoing queue bounded in bytes, and
 * smux_write refuses past it (smux_write_room says how much fits).
 *
 * Callbacks may call smux_open, smux_write, smux_close and smux_flush; never
 * smux_input or smux_free. */
#ifndef PORTHOLE_SMUX_H
#define PORTHOLE_SMUX_H

#include <stddef.h>
#include <stdint.h>

#define SMUX_VERSION	1
#define SMUX_HDR_LEN	8
#define SMUX_MAX_FRAME	32768	/* xtaci DefaultConfig MaxFrameSize */

enum smux_cmd {
	SMUX_SYN = 0,
	SMUX_FIN = 1,
	SMUX_PSH = 2,
	SMUX_NOP = 3,
};

enum smux_role {
	SMUX_CLIENT,	/* opens streams 3, 5, 7 ... (the plugin's ids) */
	SMUX_SERVER,	/* accepts the client's; its own would be 2, 4 ... */
};

struct smux;

struct smux_cbs {
	/* Hand bytes of the smux byte stream to the transport (one data
	 * channel message each: the module never passes more than
	 * limits.write_chunk bytes at once, and pieces need not align with
	 * frames). All or nothing: 0 when taken; PH_ERR_AGAIN when the
	 * transport is full (nothing taken: the bytes stay queued until
	 * smux_flush); another error is fatal (the session is dead and
	 * every later call returns PH_ERR_STATE). */
	int (*write)(void *ud, const uint8_t *p, size_t n);
	/* The peer opened stream sid (a SYN with the peer's id parity).
	 * Return 0 to accept it; anything else refuses it (the module sends
	 * FIN and forgets it). NULL refuses every stream: a client leaves it
	 * NULL since the agent never opens streams. */
	int (*on_open)(void *ud, uint32_t sid);
	/* In-order data for an open stream, at most SMUX_MAX_FRAME bytes.
	 * All or nothing: 0 when consumed; PH_ERR_AGAIN when the consumer is
	 * full (the module keeps the bytes, counted against the limits, and
	 * offers them again from smux_resume); another error closes the
	 * stream (as smux_close). */
	int (*on_data)(void *ud, uint32_t sid, const uint8_t *p, size_t n);
	/* The peer closed stream sid: no more data will come (called after
	 * every buffered byte was delivered). The stream stays open for
	 * writing until the caller's smux_close, which frees it. May be
	 * NULL. */
	void (*on_fin)(void *ud, uint32_t sid);
	/* A session-fatal protocol error (wrong version, unknown command,
	 * bad length): why is a static string for the log. Called once; the
	 * caller ends the session. May be NULL. */
	void (*on_error)(void *ud, int err, const char *why);
};

struct smux_limits {
	/* Received data held for slow consumers: smux_input refuses while a
	 * stream holds max_stream_buffer or all hold max_recv_buffer bytes.
	 * Defaults 1 MiB and 4 MiB (xtaci MaxReceiveBuffer). */
	size_t max_stream_buffer;
	size_t max_recv_buffer;
	/* Outgoing queue in bytes (frames not yet taken by write), default
	 * 256 KiB. Control frames (SYN, FIN, NOP) are always queued. */
	size_t max_out_bytes;
	/* Largest piece handed to write, default 1024 (spec 7.4). */
	size_t write_chunk;
	/* Largest PSH data accepted and sent, default and at most
	 * SMUX_MAX_FRAME. */
	size_t max_frame;
	/* Streams open at once, default 1024; SYNs past it are refused. */
	size_t max_streams;
};

/* A session in role; cbs is copied; limits NULL for the defaults. */
int smux_new(struct smux **out, enum smux_role role,
    const struct smux_cbs *cbs, void *ud, const struct smux_limits *limits);
void smux_free(struct smux *m);

/* Bytes from the peer in any chunking: frames are reassembled across
 * calls. All or nothing: 0 when every byte was taken; PH_ERR_AGAIN when
 * received data waiting for consumers is at a limit (nothing taken: the
 * caller returns PH_ERR_AGAIN from its channel deliver callback and offers
 * the bytes again after smux_resume; input is refused only while
 * something is buffered, so a call into an empty session always goes
 * through); PH_ERR_INVALID on a protocol error (on_error was called; the
 * session is dead); PH_ERR_STATE once dead. Not fatal, as in xtaci: data
 * or FIN for a stream that is not open is dropped, a SYN for an open id is
 * ignored; a SYN with the wrong parity or id 0, or past max_streams, is
 * refused with FIN. */
int smux_input(struct smux *m, const uint8_t *p, size_t n);

/* Whether smux_input would take input now (no limit reached). */
int smux_can_input(const struct smux *m);

/* Open a stream: queues a SYN, *sid gets its id (client 3, 5, 7 ...;
 * server 2, 4 ...). PH_ERR_TOOBIG past max_streams or when ids run out
 * (xtaci's go-away: a new session is needed). */
int smux_open(struct smux *m, uint32_t *sid);

/* Queue data on an open stream as PSH frames of at most max_frame bytes
 * and try to write them. All or nothing: PH_ERR_AGAIN when the outgoing
 * queue has no room for n bytes plus frame headers (see smux_write_room);
 * PH_ERR_NOTFOUND for a stream that is not open; n 0 sends nothing. */
int smux_write(struct smux *m, uint32_t sid, const void *p, size_t n);

/* The most data one smux_write takes now (frame headers deducted); 0
 * when the outgoing queue is full: stop reading the source until the
 * transport drains and smux_flush makes room. */
size_t smux_write_room(const struct smux *m);
/* The most data whose frames fill one write_chunk exactly: a source
 * read of this size leaves the transport one whole chunk, where one of
 * write_chunk bytes left it a chunk and a tail of frame headers (a
 * second, tiny data-channel message per read). */
size_t smux_write_unit(const struct smux *m);

/* Close a stream: queues a FIN and forgets it (its undelivered data is
 * dropped, and so is whatever the peer still sends on it). No callback is
 * made for it afterwards. PH_ERR_NOTFOUND if not open. */
int smux_close(struct smux *m, uint32_t sid);

/* The transport drained: write queued bytes until it refuses again. 0, or
 * the write callback's fatal error. */
int smux_flush(struct smux *m);

/* The consumer of sid (0: every stream) can take data again: offer its
 * buffered data, then its FIN if one arrived. Afterwards smux_can_input
 * tells whether the caller's refused input will be taken. */
void smux_resume(struct smux *m, uint32_t sid);

/* Queue one NOP frame (xtaci's keepalive ping); skipped while the
 * outgoing queue is full. */
int smux_nop(struct smux *m);

/* Keepalive (spec 7.4 and 10.2: the version gates decide whether it is
 * on; off by default): with interval_ms non-zero smux_tick sends a NOP
 * every interval_ms, and fails when nothing was received for timeout_ms
 * while input was not held back by our own limits (xtaci's rule). 0
 * turns it off. xtaci's defaults are 10000 and 30000. */
void smux_set_keepalive(struct smux *m, uint64_t interval_ms,
    uint64_t timeout_ms);
/* Call every second or so with a monotonic clock (channel_now_ms). 0, or
 * PH_ERR_EXPIRED when the keepalive timeout passed (the caller ends the
 * session), or a fatal write error. */
int smux_tick(struct smux *m, uint64_t now_ms);

/* Queries. */
size_t smux_out_pending(const struct smux *m);	/* queued outgoing bytes */
size_t smux_buffered(const struct smux *m, uint32_t sid); /* 0: all */
size_t smux_streams(const struct smux *m);	/* open streams */
int smux_is_open(const struct smux *m, uint32_t sid);
/* Frames dropped or refused without ending the session (data for
 * unknown streams, duplicate or wrong-parity SYNs): for logs and tests. */
uint64_t smux_dropped(const struct smux *m);

#endif
