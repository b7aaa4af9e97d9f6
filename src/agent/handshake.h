/* handshake: the agent's side of the data-channel handshake (spec 5) and
 * of KMS session encryption (spec 6). It does no I/O: messages leave
 * through ops->send (channel_send), the KMS Decrypt starts through
 * ops->decrypt and its result comes back through agent_handshake_decrypted,
 * and time comes from the caller, so the whole state machine is
 * unit-tested without sockets.
 *
 *   start -> HandshakeRequest (5) -> WAIT_RESPONSE (15 s)
 *   HandshakeResponse (6), validated -> DECRYPTING (KMS Decrypt, bounded)
 *   key -> cipher set, EncChallengeRequest (8) -> WAIT_CHALLENGE (15 s)
 *   EncChallengeResponse (9) matches -> HandshakeComplete (7) -> DONE
 * Without KMS the response leads straight to HandshakeComplete. Anything
 * wrong, late or out of place -> FAILED with a reason for the user. */
#ifndef PORTHOLE_AGENT_HANDSHAKE_H
#define PORTHOLE_AGENT_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "agent/kms_decrypt.h"
#include "agent/task.h"
#include "common/buf.h"

struct sessioncrypt;
struct agent_handshake;

/* spec 5.3 and 10.3: the waits for the response and the challenge. */
#define AGENT_HS_RESPONSE_WAIT_MS 15000
#define AGENT_HS_CHALLENGE_WAIT_MS 15000
/* The Decrypt call is bounded by AGENT_KMS_TIMEOUT_MS; this is the
 * backstop should its answer never come. */
#define AGENT_HS_DECRYPT_WAIT_MS (AGENT_KMS_TIMEOUT_MS + 5000)
/* Handshake payloads we read (spec 10.4 [R]: a few KiB are legitimate). */
#define AGENT_HS_MAX_PAYLOAD ((size_t)64 << 10)
#define AGENT_HS_MAX_VERSION 64
#define AGENT_HS_MAX_REASON 600
/* spec 6.4: 64 random bytes, sealed. */
#define AGENT_HS_CHALLENGE_LEN 64
/* spec 5.2: the KMSEncryption Challenge, 16 random bytes. */
#define AGENT_HS_NONCE_LEN 16
/* spec 5.4 and 10.1 */
#define AGENT_HS_KMS_MESSAGE "This session is encrypted using AWS KMS."

enum agent_hs_state {
	AGENT_HS_IDLE = 0,
	AGENT_HS_WAIT_RESPONSE,
	AGENT_HS_DECRYPTING,
	AGENT_HS_WAIT_CHALLENGE,
	AGENT_HS_DONE,
	AGENT_HS_FAILED,
};

struct agent_hs_params {
	const char *session_id;
	const char *instance_id;     /* aws:ssm:TargetId of Decrypt */
	enum agent_session_type type;
	const char *kms_key_id;      /* NULL: no KMSEncryption action */
	const char *agent_version;
	/* Port: the document's resolved properties as JSON text, sent as
	 * the SessionType action's Properties (spec 5.2); NULL: null. */
	const char *properties;
};

struct agent_hs_ops {
	/* One stream message (channel_send); non-zero fails the
	 * handshake. */
	int (*send)(void *ud, uint32_t payload_type, const void *p, size_t n);
	/* Start the KMS Decrypt (rq is valid during the call only); its
	 * result goes to agent_handshake_decrypted. Non-zero: it did not
	 * start, err says why. */
	int (*decrypt)(void *ud, const struct agent_kms_request *rq,
	    char *err, size_t errlen);
	/* The session cipher is ready: seal and open from now on
	 * (channel_set_crypto). sc stays valid until agent_handshake_free. */
	void (*set_crypto)(void *ud, struct sessioncrypt *sc);
};

/* spec 5.1: a handshake happens when the session type needs one
 * (NonInteractiveCommands, Port) or encryption is on (kmsKeyId set and
 * the type is not Port). */
int agent_handshake_needed(enum agent_session_type type,
    const char *kms_key_id);
/* spec 5.1: Port sessions are never encrypted. */
int agent_handshake_encrypts(enum agent_session_type type,
    const char *kms_key_id);

/* Strings of p are copied. */
int agent_handshake_new(struct agent_handshake **out,
    const struct agent_hs_params *p, const struct agent_hs_ops *ops,
    void *ud);
/* Wipes the key and the challenge; frees the cipher (so the channel must
 * not use it any more). */
void agent_handshake_free(struct agent_handshake *hs);

/* Send the HandshakeRequest (spec 5.2) and start the response wait. */
int agent_handshake_start(struct agent_handshake *hs, uint64_t now_ms);
/* A stream payload of the client while the handshake runs. Types 6 and 9
 * drive it; 6 or 9 out of place fails it. Returns 0: consumed (ack it).
 * The caller handles other types (Size etc.) itself. */
int agent_handshake_deliver(struct agent_handshake *hs, uint32_t ptype,
    const uint8_t *p, size_t n, uint64_t now_ms);
/* The Decrypt result (rc 0: key holds 64 bytes; the caller wipes it). */
void agent_handshake_decrypted(struct agent_handshake *hs, int rc,
    const uint8_t *key, const char *err, uint64_t now_ms);
/* Time limits (spec 5.3). */
void agent_handshake_tick(struct agent_handshake *hs, uint64_t now_ms);
/* Fail it from outside (the session is going away). */
void agent_handshake_fail(struct agent_handshake *hs, const char *reason);

enum agent_hs_state agent_handshake_state(const struct agent_handshake *hs);
/* Why it failed ("" otherwise), fit for the user. */
const char *agent_handshake_error(const struct agent_handshake *hs);
/* The HandshakeResponse's ClientVersion ("" before it). */
const char *agent_handshake_client_version(const struct agent_handshake *hs);
int agent_handshake_encrypted(const struct agent_handshake *hs);

/* ---- the payloads, for tests --------------------------------------------- */

/* HandshakeRequest JSON (spec 5.2); challenge_b64 NULL for none. */
int agent_handshake_request_json(const struct agent_hs_params *p,
    const char *challenge_b64, struct buf *out);

/* What a valid HandshakeResponse says. */
struct agent_hs_response {
	char client_version[AGENT_HS_MAX_VERSION + 1];
	char *kms_ciphertext;  /* malloc'd strict base64; NULL without KMS */
	int challenge_ack;     /* ChallengeAcknowledgement: true */
};

/* Validate a HandshakeResponse (spec 5.2) to a request that had
 * SessionType and, if want_kms, KMSEncryption: a JSON object of at most
 * AGENT_HS_MAX_PAYLOAD bytes, a printable ClientVersion, exactly one
 * processed action per requested one in the same order, each with an
 * integer ActionStatus of 1, Errors null or empty, and for KMSEncryption an
 * ActionResult whose KMSCipherTextKey is strict base64 of 1..6144 bytes.
 * On failure err says why (client text is sanitised). */
int agent_handshake_parse_response(const uint8_t *p, size_t n, int want_kms,
    struct agent_hs_response *out, char *err, size_t errlen);
void agent_hs_response_free(struct agent_hs_response *r);

/* EncChallengeRequest/Response JSON (spec 6.4): {"Challenge": b64}. parse
 * appends the decoded bytes (1..1024) to out. */
int agent_handshake_challenge_json(const uint8_t *sealed, size_t n,
    struct buf *out);
int agent_handshake_parse_challenge(const uint8_t *p, size_t n,
    struct buf *out);

#endif
