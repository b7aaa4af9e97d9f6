/* channel: one end of the end-to-end reliability layer of spec section 4
 * (client or agent): sequence numbers, selective acknowledgements, the
 * out-of-order buffer, duplicate handling and retransmission with an
 * adaptive RTO. It does no I/O: frames leave through send_frame and arrive
 * through channel_receive; time comes from the caller. */
#ifndef PORTHOLE_CHANNEL_H
#define PORTHOLE_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/clientmsg.h"

struct channel;
struct sessioncrypt;

enum channel_role {
	CHANNEL_CLIENT, /* sends input_stream_data (spec 3.3) */
	CHANNEL_AGENT,  /* sends output_stream_data */
};

struct channel_cbs {
	/* Write one encoded frame as one WebSocket binary message. A non-zero
	 * return means the transport is down: the frame stays buffered and is
	 * retransmitted later. */
	int (*send_frame)(void *ud, const uint8_t *frame, size_t n);
	/* An in-order stream payload. Return 0 when consumed (it is then
	 * acknowledged), PH_ERR_AGAIN when the receiver is not ready (no ack:
	 * the peer resends), or another error (no ack). */
	int (*deliver)(void *ud, uint32_t payload_type, const uint8_t *p,
	    size_t n);
	/* A frame that is not part of the stream (channel_closed,
	 * start_publication, pause_publication, agent_session_state, unknown
	 * types). May be NULL. */
	void (*on_control)(void *ud, const struct clientmsg *m);
	/* Whether the transport takes another frame now (its queue is
	 * below its high-water mark). May be NULL: always. While it says
	 * no, new messages and retransmissions wait in the outgoing buffer,
	 * in order, until channel_flush or channel_tick finds it willing. */
	int (*writable)(void *ud);
};

struct channel_limits {
	/* Largest stream payload before sealing (default 64 KiB); received
	 * frames may carry max_payload + SESSIONCRYPT_OVERHEAD (spec 10.4). */
	size_t max_payload;
	size_t max_unacked;      /* outgoing buffer in messages */
	/* Outgoing buffer in frame bytes: channel_send refuses once this
	 * much is unacknowledged (STYLE.md 6: what a stalled peer pins). */
	size_t max_unacked_bytes;
	size_t max_out_of_order; /* incoming buffer in messages */
};

int channel_new(struct channel **out, enum channel_role role,
    const struct channel_cbs *cbs, void *ud,
    const struct channel_limits *limits /* NULL for defaults */);
void channel_free(struct channel *ch);

/* Send one stream message: assigns the next sequence number, buffers it
 * until acknowledged and writes it. PH_ERR_AGAIN when the outgoing buffer is
 * full (the caller stops reading its source until channel_can_send). */
int channel_send(struct channel *ch, uint32_t payload_type, const void *p,
    size_t n);
/* Send a non-sequenced frame (e.g. agent_session_state): seq 0, flags 3. */
int channel_send_control(struct channel *ch, const char *type,
    const void *payload, size_t n);
/* True while the outgoing buffer has room (messages and bytes). */
int channel_can_send(const struct channel *ch);
/* The transport may take more (its drain callback): write what waits. */
void channel_flush(struct channel *ch);

/* Handle one received frame. Returns 0, or an error for a frame that
 * failed validation (the caller closes the connection). An agent channel
 * decodes as AWS's agent does (clientmsg_decode_lenient, spec 3.7 [R]): a
 * wrong digest or PayloadLength is counted, not refused; a client channel
 * decodes strictly. */
int channel_receive(struct channel *ch, const uint8_t *frame, size_t n);

/* End-to-end encryption of spec 6.3 (borrowed: sc must outlive its use
 * here; NULL turns it off; its role must match the channel's). While set,
 * channel_send seals the payload types spec 6.3 encrypts in this role's
 * direction (the buffered frame holds the ciphertext, so retransmissions
 * resend the same bytes), and the peer's encrypted types are opened before
 * deliver: on arrival when they come out of order, else just before
 * delivery; one buffered before the key was set is opened when delivered.
 * A payload that fails to open is logged and never delivered, and is not
 * acknowledged (except one buffered before the key was set, acknowledged
 * on arrival: it is dropped). */
void channel_set_crypto(struct channel *ch, struct sessioncrypt *sc);
/* Received payloads that failed to open so far (a caller may end the
 * session past a bound: the peer's key is not ours). */
uint64_t channel_crypto_failures(const struct channel *ch);

/* Frames accepted so far with a PayloadDigest that is not the SHA-256 of
 * their payload, and with a PayloadLength that disagrees with the frame
 * (agent channels; always 0 for client channels, which refuse them). */
uint64_t channel_digest_mismatches(const struct channel *ch);
uint64_t channel_length_mismatches(const struct channel *ch);
/* CLIENTMSG_QUIRK_* bits of every frame accepted so far, or-ed. */
unsigned channel_rx_quirks(const struct channel *ch);

/* Retransmission timer: call every ~50-100 ms with a monotonic clock. */
void channel_tick(struct channel *ch, uint64_t now_ms);
/* After a reconnect: resend every unacknowledged message, in order, as
 * fast as the transport takes them (the rest when it drains). */
void channel_resend_all(struct channel *ch);

size_t channel_unacked(const struct channel *ch);
/* Bytes of the frames in the outgoing buffer. */
size_t channel_unacked_bytes(const struct channel *ch);
/* Messages buffered but not written since the last reconnect (waiting
 * for the transport). */
size_t channel_unsent(const struct channel *ch);
int64_t channel_next_send_seq(const struct channel *ch);
int64_t channel_expected_seq(const struct channel *ch);
/* Current retransmission timeout in milliseconds. */
unsigned channel_rto_ms(const struct channel *ch);

/* The clock channel_tick expects: CLOCK_MONOTONIC in milliseconds, the
 * clock of uv_hrtime() / 1000000 (uv_now() reads it too, more coarsely). */
uint64_t channel_now_ms(void);
/* Replace the clock that stamps sends and times RTT samples (tests pass a
 * fake clock and the same values to channel_tick). */
void channel_set_clock(struct channel *ch, uint64_t (*now_ms)(void *),
    void *arg);
/* Retransmissions so far, all messages together. */
uint64_t channel_resends(const struct channel *ch);
/* Retransmissions of the oldest unacknowledged message (0 if none): a
 * caller may give up past a bound (spec 4.7 [R]). */
unsigned channel_head_resends(const struct channel *ch);
/* Messages held in the out-of-order buffer. */
size_t channel_out_of_order(const struct channel *ch);

#endif
