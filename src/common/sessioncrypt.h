/* sessioncrypt: end-to-end session encryption of spec section 6:
 * AES-256-GCM over stream payloads with the 64-byte KMS data key split by
 * direction (bytes 0-31 agent->client, 32-63 client->agent), a 12-byte
 * nonce in front and the 16-byte tag behind, no additional data. */
#ifndef PORTHOLE_SESSIONCRYPT_H
#define PORTHOLE_SESSIONCRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define SESSIONCRYPT_KEY_LEN 64
#define SESSIONCRYPT_NONCE_LEN 12
#define SESSIONCRYPT_TAG_LEN 16
#define SESSIONCRYPT_OVERHEAD (SESSIONCRYPT_NONCE_LEN + SESSIONCRYPT_TAG_LEN)

struct sessioncrypt;

enum sessioncrypt_role {
	SESSIONCRYPT_AGENT,   /* seals with bytes 0-31, opens with 32-63 */
	SESSIONCRYPT_CLIENT,  /* seals with bytes 32-63, opens with 0-31 */
};

int sessioncrypt_new(struct sessioncrypt **out, enum sessioncrypt_role role,
    const uint8_t key[SESSIONCRYPT_KEY_LEN]);
/* Wipes the keys. */
void sessioncrypt_free(struct sessioncrypt *sc);
/* Append nonce || ciphertext || tag for the peer to out. */
int sessioncrypt_seal(struct sessioncrypt *sc, const void *p, size_t n,
    struct buf *out);
/* Append the plaintext of a peer's nonce || ciphertext || tag to out;
 * PH_ERR_CRYPTO if it does not authenticate, PH_ERR_SHORT if too short. */
int sessioncrypt_open(struct sessioncrypt *sc, const void *p, size_t n,
    struct buf *out);
/* The same without a struct buf, for callers that place the bytes
 * themselves: out has room for n + SESSIONCRYPT_OVERHEAD bytes (seal) or
 * n - SESSIONCRYPT_OVERHEAD bytes (open) and does not overlap p. A failed
 * open leaves out wiped. */
int sessioncrypt_seal_to(struct sessioncrypt *sc, const void *p, size_t n,
    uint8_t *out);
int sessioncrypt_open_to(struct sessioncrypt *sc, const void *p, size_t n,
    uint8_t *out);
enum sessioncrypt_role sessioncrypt_role(const struct sessioncrypt *sc);
/* Deterministic nonce for tests (NULL = random/counter again): the next
 * seal uses nonce, later ones count up from it as the agent's counter does
 * (spec 6.3), in both roles. */
void sessioncrypt_set_test_nonce(struct sessioncrypt *sc,
    const uint8_t nonce[SESSIONCRYPT_NONCE_LEN]);

#endif
