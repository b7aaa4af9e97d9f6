/* sessioncrypt: AES-256-GCM of spec 6.3 over one session's stream payloads.
 *
 * Each direction has one EVP_CIPHER_CTX keyed once at creation; a message
 * only loads its nonce into it (EVP_*Init_ex with no cipher and no key), so
 * sealing and opening allocate nothing. The keys live only inside those
 * contexts, which wipe them when freed. */
#include "common/sessioncrypt.h"
#include "common/err.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* spec 6.2: bytes 0-31 carry agent->client traffic, 32-63 client->agent. */
#define SC_HALF 32
/* Client nonces drawn from the RNG per call: one RAND_bytes for this many
 * messages instead of one per message. */
#define SC_POOL_NONCES 128
#define SC_POOL_LEN (SC_POOL_NONCES * SESSIONCRYPT_NONCE_LEN)
/* EVP takes int lengths; stream payloads are far smaller (spec 10.4). */
#define SC_MAX_PLAIN ((size_t)INT_MAX - SESSIONCRYPT_OVERHEAD)

struct sessioncrypt {
	enum sessioncrypt_role role;
	EVP_CIPHER_CTX *seal;   /* our direction */
	EVP_CIPHER_CTX *open;   /* the peer's */
	/* Agent: the next nonce of the 96-bit counter. Also any role while
	 * a test nonce is set. */
	uint8_t ctr[SESSIONCRYPT_NONCE_LEN];
	int counting;
	/* Client: random nonces not yet used. */
	uint8_t pool[SC_POOL_LEN];
	size_t pool_off;
};

/* spec 6.3: three little-endian 32-bit words, low word first, carry from
 * each word into the next: a 96-bit little-endian integer plus one. */
static void
sc_ctr_inc(uint8_t c[SESSIONCRYPT_NONCE_LEN])
{
	size_t i;

	for (i = 0; i < SESSIONCRYPT_NONCE_LEN; i++)
		if (++c[i] != 0)
			break;
}

static int
sc_next_nonce(struct sessioncrypt *sc, uint8_t nonce[SESSIONCRYPT_NONCE_LEN])
{
	if (sc->counting) {
		memcpy(nonce, sc->ctr, SESSIONCRYPT_NONCE_LEN);
		sc_ctr_inc(sc->ctr);
		return 0;
	}
	/* spec 6.3: the client draws 12 random bytes per message. */
	if (sc->pool_off + SESSIONCRYPT_NONCE_LEN > SC_POOL_LEN) {
		if (RAND_bytes(sc->pool, SC_POOL_LEN) != 1)
			return PH_ERR_CRYPTO;
		sc->pool_off = 0;
	}
	memcpy(nonce, sc->pool + sc->pool_off, SESSIONCRYPT_NONCE_LEN);
	/* A nonce is used once: forget it. */
	OPENSSL_cleanse(sc->pool + sc->pool_off, SESSIONCRYPT_NONCE_LEN);
	sc->pool_off += SESSIONCRYPT_NONCE_LEN;
	return 0;
}

/* The agent's counter starts at a random value (spec 6.3). */
static int
sc_reset_nonces(struct sessioncrypt *sc)
{
	sc->pool_off = SC_POOL_LEN;
	if (sc->role == SESSIONCRYPT_AGENT) {
		sc->counting = 1;
		return RAND_bytes(sc->ctr, sizeof(sc->ctr)) == 1 ? 0 :
		    PH_ERR_CRYPTO;
	}
	sc->counting = 0;
	return 0;
}

static EVP_CIPHER_CTX *
sc_ctx_new(const uint8_t *key, int enc)
{
	EVP_CIPHER_CTX *c;

	if ((c = EVP_CIPHER_CTX_new()) == NULL)
		return NULL;
	/* spec 6.3: the GCM default nonce length, 12, is the protocol's. */
	if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, NULL,
	    enc) != 1) {
		EVP_CIPHER_CTX_free(c);
		return NULL;
	}
	return c;
}

int
sessioncrypt_new(struct sessioncrypt **out, enum sessioncrypt_role role,
    const uint8_t key[SESSIONCRYPT_KEY_LEN])
{
	struct sessioncrypt *sc = NULL;
	const uint8_t *seal_key, *open_key;
	int rc;

	*out = NULL;
	if (key == NULL || (role != SESSIONCRYPT_AGENT &&
	    role != SESSIONCRYPT_CLIENT))
		return PH_ERR_INVALID;
	if ((sc = calloc(1, sizeof(*sc))) == NULL)
		return PH_ERR_NOMEM;
	sc->role = role;
	/* spec 6.2 */
	seal_key = role == SESSIONCRYPT_AGENT ? key : key + SC_HALF;
	open_key = role == SESSIONCRYPT_AGENT ? key + SC_HALF : key;
	if ((sc->seal = sc_ctx_new(seal_key, 1)) == NULL ||
	    (sc->open = sc_ctx_new(open_key, 0)) == NULL) {
		rc = PH_ERR_CRYPTO;
		goto fail;
	}
	if ((rc = sc_reset_nonces(sc)) != 0)
		goto fail;
	*out = sc;
	sc = NULL; /* transferred */
fail:
	sessioncrypt_free(sc);
	return rc;
}

void
sessioncrypt_free(struct sessioncrypt *sc)
{
	if (sc == NULL)
		return;
	/* EVP_CIPHER_CTX_free cleanses the expanded keys. */
	EVP_CIPHER_CTX_free(sc->seal);
	EVP_CIPHER_CTX_free(sc->open);
	OPENSSL_cleanse(sc, sizeof(*sc));
	free(sc);
}

enum sessioncrypt_role
sessioncrypt_role(const struct sessioncrypt *sc)
{
	return sc->role;
}

int
sessioncrypt_seal_to(struct sessioncrypt *sc, const void *p, size_t n,
    uint8_t *out)
{
	uint8_t *ct = out + SESSIONCRYPT_NONCE_LEN;
	int len, fin, rc;

	if (n > SC_MAX_PLAIN)
		return PH_ERR_TOOBIG;
	if ((p == NULL && n > 0) || out == NULL)
		return PH_ERR_INVALID;
	if ((rc = sc_next_nonce(sc, out)) != 0)
		return rc;
	len = 0;
	if (EVP_EncryptInit_ex(sc->seal, NULL, NULL, NULL, out) != 1 ||
	    (n > 0 && EVP_EncryptUpdate(sc->seal, ct, &len, p,
	    (int)n) != 1) ||
	    EVP_EncryptFinal_ex(sc->seal, ct + len, &fin) != 1 ||
	    (size_t)len + (size_t)fin != n ||
	    EVP_CIPHER_CTX_ctrl(sc->seal, EVP_CTRL_GCM_GET_TAG,
	    SESSIONCRYPT_TAG_LEN, ct + n) != 1)
		return PH_ERR_CRYPTO;
	return 0;
}

int
sessioncrypt_open_to(struct sessioncrypt *sc, const void *p, size_t n,
    uint8_t *out)
{
	const uint8_t *in = p, *ct;
	uint8_t tag[SESSIONCRYPT_TAG_LEN], none[1];
	size_t plen;
	int len = 0, fin = 0, ok;

	if (n < SESSIONCRYPT_OVERHEAD)
		return PH_ERR_SHORT;
	if (n - SESSIONCRYPT_OVERHEAD > SC_MAX_PLAIN)
		return PH_ERR_TOOBIG;
	plen = n - SESSIONCRYPT_OVERHEAD;
	if (p == NULL || (out == NULL && plen > 0))
		return PH_ERR_INVALID;
	/* GCM writes nothing at Final; it still wants a pointer. */
	if (out == NULL)
		out = none;
	/* spec 6.3: nonce (12) || ciphertext || tag (16). */
	ct = in + SESSIONCRYPT_NONCE_LEN;
	/* The tag control takes a non-const pointer. */
	memcpy(tag, ct + plen, sizeof(tag));
	ok = EVP_DecryptInit_ex(sc->open, NULL, NULL, NULL, in) == 1 &&
	    EVP_CIPHER_CTX_ctrl(sc->open, EVP_CTRL_GCM_SET_TAG,
	    SESSIONCRYPT_TAG_LEN, tag) == 1 &&
	    (plen == 0 || EVP_DecryptUpdate(sc->open, out, &len, ct,
	    (int)plen) == 1) &&
	    EVP_DecryptFinal_ex(sc->open, out + len, &fin) == 1 &&
	    (size_t)len + (size_t)fin == plen;
	if (!ok) {
		/* Never leave unauthenticated plaintext behind. */
		if (plen > 0)
			OPENSSL_cleanse(out, plen);
		return PH_ERR_CRYPTO;
	}
	return 0;
}

int
sessioncrypt_seal(struct sessioncrypt *sc, const void *p, size_t n,
    struct buf *out)
{
	int rc;

	if (n > SC_MAX_PLAIN)
		return PH_ERR_TOOBIG;
	if ((rc = buf_reserve(out, n + SESSIONCRYPT_OVERHEAD)) != 0)
		return rc;
	if ((rc = sessioncrypt_seal_to(sc, p, n, out->data + out->len)) != 0)
		return rc;
	out->len += n + SESSIONCRYPT_OVERHEAD;
	return 0;
}

int
sessioncrypt_open(struct sessioncrypt *sc, const void *p, size_t n,
    struct buf *out)
{
	size_t plen;
	int rc;

	if (n < SESSIONCRYPT_OVERHEAD)
		return PH_ERR_SHORT;
	plen = n - SESSIONCRYPT_OVERHEAD;
	if ((rc = buf_reserve(out, plen)) != 0)
		return rc;
	if ((rc = sessioncrypt_open_to(sc, p, n, out->data + out->len)) != 0)
		return rc;
	out->len += plen;
	return 0;
}

void
sessioncrypt_set_test_nonce(struct sessioncrypt *sc,
    const uint8_t nonce[SESSIONCRYPT_NONCE_LEN])
{
	if (nonce == NULL) {
		/* Nothing to report: a failed draw leaves the old counter,
		 * and the client role draws again at the next seal. */
		(void)sc_reset_nonces(sc);
		return;
	}
	memcpy(sc->ctr, nonce, SESSIONCRYPT_NONCE_LEN);
	sc->counting = 1;
}
