/* kms_decrypt: the agent's KMS Decrypt of the session data key (spec 6.1).
 * The client sends GenerateDataKey's CiphertextBlob in its
 * HandshakeResponse; the agent asks portholed to decrypt it under its own
 * identity (the client certificate of the state dir, no SigV4), with the
 * encryption context it rebuilds itself, so the key policy decides which
 * instances may accept encrypted sessions.
 *
 * Contract with portholed: POST <endpoint>/ over TLS verified against the
 * agent's CA, the client certificate presented, headers
 * X-Amz-Target: TrentService.Decrypt and
 * Content-Type: application/x-amz-json-1.1, body
 * {"CiphertextBlob": b64, "EncryptionContext": {...}}; answer 200
 * {"KeyId", "Plaintext": b64 of 64 bytes, "EncryptionAlgorithm"} or an AWS
 * error {"__type", "message"}. */
#ifndef PORTHOLE_AGENT_KMS_DECRYPT_H
#define PORTHOLE_AGENT_KMS_DECRYPT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/state.h"
#include "common/buf.h"

#define AGENT_KMS_KEY_LEN 64          /* spec 6.1 NumberOfBytes */
#define AGENT_KMS_MAX_BLOB_B64 8192   /* base64 of a CiphertextBlob */
#define AGENT_KMS_MAX_BLOB 6144       /* botocore's CiphertextType */
#define AGENT_KMS_MAX_RESPONSE ((size_t)64 << 10)
/* The whole call, connection included; the handshake allows a little
 * more before it gives up on the answer. */
#define AGENT_KMS_TIMEOUT_MS 10000
#define AGENT_KMS_ERR_MAX 512

/* What Decrypt needs (spec 6.1); every string is borrowed. */
struct agent_kms_request {
	const char *ciphertext_b64;   /* KMSCipherTextKey, strict base64 */
	const char *session_id;       /* aws:ssm:SessionId */
	const char *target_id;        /* aws:ssm:TargetId: our instance id */
	const char *challenge;        /* aws:ssm:RandomChallenge, or NULL */
};

/* The Decrypt body: {"CiphertextBlob", "EncryptionContext"}. */
int agent_kms_decrypt_body(const struct agent_kms_request *rq,
    struct buf *out);
/* Read Decrypt's answer (HTTP status and body). On success key holds the
 * 64-byte plaintext; otherwise key is wiped and err says why, naming the
 * AWS error type ("AccessDeniedException: ..."). */
int agent_kms_parse_response(long status, const uint8_t *p, size_t n,
    uint8_t key[AGENT_KMS_KEY_LEN], char *err, size_t errlen);

/* Blocking Decrypt against url (https) with the given TLS files, bounded
 * by timeout_ms. Call it off the event loop. The response body is wiped
 * before it is freed. */
int agent_kms_decrypt(const char *url, const char *ca_file,
    const char *cert_file, const char *key_file,
    const struct agent_kms_request *rq, long timeout_ms,
    uint8_t key[AGENT_KMS_KEY_LEN], char *err, size_t errlen);

/* An asynchronous Decrypt on the libuv thread pool. */
struct agent_kms_job;

/* Start Decrypt for rq (copied) against the endpoint and TLS files of st.
 * cb runs on the loop's thread once, unless the job is cancelled first:
 * rc is 0 with the key, else an error with err set; key is wiped after cb
 * returns. */
int agent_kms_decrypt_start(uv_loop_t *loop, const struct agent_state *st,
    const struct agent_kms_request *rq,
    void (*cb)(void *ud, int rc, const uint8_t *key, const char *err),
    void *ud, struct agent_kms_job **out);
/* The caller is going away: cb will not be called; the job frees itself
 * (and wipes what it holds) when the worker returns. */
void agent_kms_decrypt_cancel(struct agent_kms_job *job);

/* Strict standard base64 (padded, no whitespace): at most max bytes to
 * out. PH_ERR_INVALID for bad text, PH_ERR_TOOBIG if it does not fit. */
int agent_b64_decode(const char *s, size_t n, uint8_t *out, size_t max,
    size_t *outlen);
int agent_b64_encode(const uint8_t *p, size_t n, struct buf *out);

#endif
