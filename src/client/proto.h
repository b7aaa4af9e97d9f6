/* proto: the JSON payloads the client sends and receives on the data
 * channel (spec 2.1, 3.5, 5, 7.1). Pure functions, no I/O, so every one of
 * them is unit-tested against hostile input. */
#ifndef PORTHOLE_CLIENT_PROTO_H
#define PORTHOLE_CLIENT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "client/portprops.h"
#include "common/buf.h"

/* Output text we accept in channel_closed / HandshakeComplete (bytes). */
#define CLIENT_MAX_MESSAGE_TEXT 4096

/* OpenDataChannel text frame (spec 2.1); request_id is a fresh UUID for
 * every open. */
int client_proto_open_data_channel(struct buf *out, const char *request_id,
    const char *token, const char *client_id, const char *client_version);

/* Terminal size payload (PayloadType 3, spec 7.1): {"cols":N,"rows":M}. */
int client_proto_size(struct buf *out, unsigned cols, unsigned rows);

/* ChannelClosed (spec 3.5). Strings are malloc'd; output is "" when
 * absent. failed is set when porthole's SessionStatus extension says
 * "Failed". Control characters other than \n, \r and \t in Output are
 * replaced with '?' so a server cannot drive the user's terminal. */
struct client_closed {
	char *session_id; /* NULL when absent or not usable */
	char *output;
	int failed;
};

int client_proto_parse_closed(struct client_closed *c, const uint8_t *p,
    size_t n);
void client_closed_free(struct client_closed *c);

/* spec 5.2 ActionStatus */
enum client_action_status {
	CLIENT_ACTION_SUCCESS = 1,
	CLIENT_ACTION_FAILED = 2,
	CLIENT_ACTION_UNSUPPORTED = 3,
};

enum client_session_type {
	CLIENT_SESSION_UNKNOWN = 0,
	CLIENT_SESSION_STANDARD,        /* Standard_Stream */
	CLIENT_SESSION_INTERACTIVE,     /* InteractiveCommands */
	CLIENT_SESSION_NONINTERACTIVE,  /* NonInteractiveCommands */
	CLIENT_SESSION_PORT,            /* Port (spec 7.4) */
};

/* What the client learnt from a HandshakeRequest. */
struct client_handshake {
	enum client_session_type type;  /* UNKNOWN unless SessionType worked */
	int kms_requested;              /* a KMSEncryption action came */
	/* KMSEncryption's parameters were usable: KMSKeyId a string of
	 * 1..2048 printable ASCII bytes, Challenge absent/null or base64 of
	 * at most 1024 characters. */
	int kms_params_ok;
	char kms_key_id[2048 + 1];
	char kms_challenge[1024 + 1];   /* "" when the agent sent none */
	int ok;                         /* every action succeeded */
	char agent_version[64];
	char first_error[640];          /* first failed action's error */
	/* SessionType Port: its Properties (client_port_props_parse); a
	 * request whose Properties are unusable fails the action. */
	struct client_port_props port;
};

/* How our side of KMSEncryption went (spec 5.2, 6.1). */
struct client_kms_outcome {
	int ok;
	const char *ciphertext_b64;  /* ok: GenerateDataKey's CiphertextBlob */
	int challenge_ack;           /* ok: the Challenge was in the context */
	const char *error;           /* !ok: shown to the agent and the user */
};

/* Read a HandshakeRequest (PayloadType 5) into hs without answering it.
 * A request that is not a JSON object (at most 64 KiB) with a
 * RequestedClientActions array of at most 64 entries returns
 * PH_ERR_INVALID. */
int client_proto_handshake_parse(const uint8_t *req, size_t n,
    struct client_handshake *hs);

/* Answer a HandshakeRequest with the HandshakeResponse JSON (PayloadType
 * 6) in out, and fill hs as client_proto_handshake_parse does.
 * SessionType: the three shell types succeed, and Port with usable
 * Properties; others fail. KMSEncryption:
 * Failed when its parameters are unusable, when kms is NULL or !kms->ok
 * (with kms->error), else Success with ActionResult {"KMSCipherTextKey",
 * "KMSCipherTextHash":null[, "ChallengeAcknowledgement":true]}; a second
 * KMSEncryption action fails. Unknown actions are Unsupported. Invalid
 * requests return PH_ERR_INVALID and leave out empty. */
int client_proto_handshake_response(const uint8_t *req, size_t n,
    const char *client_version, const struct client_kms_outcome *kms,
    struct client_handshake *hs, struct buf *out);

/* EncChallengeRequest (PayloadType 8, spec 6.4): {"Challenge": base64}.
 * The decoded (sealed) bytes, 1..CLIENT_MAX_CHALLENGE_BYTES of them, are
 * appended to sealed. PH_ERR_INVALID otherwise. */
#define CLIENT_MAX_CHALLENGE_BYTES 1024
int client_proto_parse_challenge(const uint8_t *p, size_t n,
    struct buf *sealed);
/* EncChallengeResponse (PayloadType 9): {"Challenge": base64(sealed)}. */
int client_proto_challenge_response(struct buf *out, const uint8_t *sealed,
    size_t n);

/* HandshakeComplete (PayloadType 7, spec 5.4): CustomerMessage, malloc'd
 * ("" when absent), sanitised like Output. */
int client_proto_parse_handshake_complete(const uint8_t *p, size_t n,
    char **customer_message);

/* ExitCode payload (PayloadType 12, spec 7.3): "EXIT_CODE: <n>". Returns 0
 * and the code (0..255 after clamping out-of-range values to 1), or
 * PH_ERR_INVALID. */
int client_proto_parse_exit_code(const uint8_t *p, size_t n, int *code);

#endif
