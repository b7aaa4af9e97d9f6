/* clientmsg: the binary ClientMessage/AgentMessage frame of spec section 3,
 * carried one per WebSocket message on the data and control channels. */
#ifndef PORTHOLE_CLIENTMSG_H
#define PORTHOLE_CLIENTMSG_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* spec 3.1: HeaderLength is 116; the payload starts at 120. */
#define CLIENTMSG_HEADER_LENGTH 116
#define CLIENTMSG_PAYLOAD_OFFSET 120
#define CLIENTMSG_TYPE_LEN 32

/* spec 3.4 */
enum payload_type {
	PT_NONE = 0,
	PT_OUTPUT = 1,
	PT_ERROR = 2,
	PT_SIZE = 3,
	PT_PARAMETER = 4,
	PT_HANDSHAKE_REQUEST = 5,
	PT_HANDSHAKE_RESPONSE = 6,
	PT_HANDSHAKE_COMPLETE = 7,
	PT_ENC_CHALLENGE_REQUEST = 8,
	PT_ENC_CHALLENGE_RESPONSE = 9,
	PT_FLAG = 10,
	PT_STDERR = 11,
	PT_EXIT_CODE = 12,
};

/* spec 3.6 */
#define CLIENTMSG_FLAG_SYN 1u
#define CLIENTMSG_FLAG_FIN 2u

/* spec 3.3 message type strings */
#define MT_INPUT_STREAM "input_stream_data"
#define MT_OUTPUT_STREAM "output_stream_data"
#define MT_ACKNOWLEDGE "acknowledge"
#define MT_CHANNEL_CLOSED "channel_closed"
#define MT_START_PUBLICATION "start_publication"
#define MT_PAUSE_PUBLICATION "pause_publication"
#define MT_AGENT_SESSION_STATE "agent_session_state"
#define MT_INTERACTIVE_SHELL "interactive_shell"
#define MT_AGENT_JOB "agent_job"
#define MT_AGENT_JOB_ACK "agent_job_ack"
#define MT_AGENT_JOB_REPLY "agent_job_reply"
#define MT_AGENT_JOB_REPLY_ACK "agent_job_reply_ack"
#define MT_AGENT_TASK_COMPLETE "agent_task_complete"
#define MT_AGENT_TASK_ACK "agent_task_acknowledge"

/* A decoded frame. payload points into the frame it was decoded from. */
struct clientmsg {
	char type[CLIENTMSG_TYPE_LEN + 1]; /* spaces and NULs stripped */
	uint32_t schema_version;
	uint64_t created_ms;
	int64_t seq;
	uint64_t flags;
	uint8_t message_id[16];   /* canonical (un-swapped) UUID bytes */
	uint32_t payload_type;
	const uint8_t *payload;
	size_t payload_len;
	uint32_t header_length;   /* as sent */
	uint32_t payload_length;  /* PayloadLength as sent (not trusted) */
	unsigned quirks;          /* CLIENTMSG_QUIRK_*: tolerated faults */
};

/* What the lenient decoders tolerated (spec 3.7 [R], receiving as AWS's
 * agent does). */
#define CLIENTMSG_QUIRK_DIGEST 0x1u     /* PayloadDigest != SHA-256 */
#define CLIENTMSG_QUIRK_DIGEST_HEX 0x2u /* ... it is the first 32
					 * characters of the hex SHA-256 */
#define CLIENTMSG_QUIRK_LENGTH 0x4u     /* PayloadLength disagrees */
#define CLIENTMSG_QUIRK_HEADER 0x8u     /* HeaderLength is not 116 */

/* Decode and validate one frame strictly: length >= 120, HeaderLength
 * 116, PayloadLength == length - 120, payload <= max_payload, non-empty type,
 * CreatedDate != 0, SHA-256 digest matches. Returns PH_ERR_SHORT,
 * PH_ERR_INVALID, PH_ERR_TOOBIG or PH_ERR_DIGEST on failure. */
int clientmsg_decode(struct clientmsg *m, const uint8_t *frame, size_t n,
    size_t max_payload);
/* Decode as AWS's agent does (spec 3.7 [R], the agent receiving from
 * clients): the payload runs from HeaderLength + 4 to the end of the frame
 * whatever PayloadLength says, and a wrong digest is not an error; both
 * are reported in m->quirks. Still refused: frames under 120 bytes,
 * HeaderLength 0 or past the frame, a payload above max_payload, an empty
 * or unprintable MessageType, CreatedDate 0. */
int clientmsg_decode_lenient(struct clientmsg *m, const uint8_t *frame,
    size_t n, size_t max_payload);
/* The header checks of clientmsg_decode_lenient without hashing the
 * payload (the gateway's relay path, which forwards bytes it does not
 * read, and must forward whatever the agent accepts). */
int clientmsg_peek(struct clientmsg *m, const uint8_t *frame, size_t n,
    size_t max_payload);

/* Append one encoded frame to out: CreatedDate = now, schema 1, a digest
 * over the payload. id is the canonical UUID (swapped on the wire). */
int clientmsg_encode(struct buf *out, const char *type, int64_t seq,
    uint64_t flags, const uint8_t id[16], uint32_t payload_type,
    const void *payload, size_t payload_len);
/* Same with an explicit CreatedDate (tests, golden vectors). */
int clientmsg_encode_at(struct buf *out, const char *type, uint64_t created_ms,
    int64_t seq, uint64_t flags, const uint8_t id[16], uint32_t payload_type,
    const void *payload, size_t payload_len);

uint64_t clientmsg_now_ms(void);

#endif
