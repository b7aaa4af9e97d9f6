/* kms: GenerateDataKey for the session key (spec 6.1). */
#include "client/kms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "client/awsapi.h"
#include "common/err.h"

#define KMS_MAX_RESPONSE ((size_t)64 << 10)

static int
b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int
client_b64_valid(const char *s, size_t n)
{
	size_t i, pad = 0;

	if (s == NULL || n == 0 || n % 4 != 0)
		return 0;
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	for (i = 0; i < n - pad; i++)
		if (!b64_char((unsigned char)s[i]))
			return 0;
	return 1;
}

int
client_b64_decode(const char *s, size_t n, uint8_t *out, size_t max,
    size_t *outlen)
{
	uint8_t *tmp;
	size_t raw, pad;
	int got;

	*outlen = 0;
	if (!client_b64_valid(s, n) || n > (size_t)1 << 30)
		return PH_ERR_INVALID;
	pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
	raw = n / 4 * 3;
	if (raw - pad > max)
		return PH_ERR_TOOBIG;
	if ((tmp = malloc(raw)) == NULL)
		return PH_ERR_NOMEM;
	got = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
	if (got < 0 || (size_t)got != raw) {
		OPENSSL_cleanse(tmp, raw);
		free(tmp);
		return PH_ERR_INVALID;
	}
	memcpy(out, tmp, raw - pad);
	*outlen = raw - pad;
	/* The bytes may be a key. */
	OPENSSL_cleanse(tmp, raw);
	free(tmp);
	return 0;
}

int
client_b64_encode(const uint8_t *p, size_t n, struct buf *out)
{
	size_t need;
	int rc;

	if (n > (size_t)1 << 28)
		return PH_ERR_TOOBIG;
	need = (n + 2) / 3 * 4;
	if ((rc = buf_reserve(out, need + 1)) != 0)
		return rc;
	/* EVP_EncodeBlock NUL-terminates: room for need + 1 was made. */
	(void)EVP_EncodeBlock(out->data + out->len, p, (int)n);
	out->len += need;
	return 0;
}

int
client_kms_request_body(const struct client_kms_request *rq,
    struct buf *out)
{
	json_t *o = NULL, *ctx;
	char *s;
	int rc = PH_ERR_NOMEM;

	if (rq->key_id == NULL || rq->session_id == NULL ||
	    rq->target == NULL)
		return PH_ERR_INVALID;
	/* spec 6.1: the context the agent rebuilds for Decrypt; the
	 * challenge only when the agent sent one (spec 5.2, 6.1 [I]). */
	ctx = json_pack("{s:s, s:s}", "aws:ssm:SessionId", rq->session_id,
	    "aws:ssm:TargetId", rq->target);
	if (ctx == NULL)
		return PH_ERR_INVALID;
	if (rq->challenge != NULL && *rq->challenge != '\0' &&
	    json_object_set_new(ctx, "aws:ssm:RandomChallenge",
	    json_string(rq->challenge)) != 0) {
		json_decref(ctx);
		return PH_ERR_INVALID;
	}
	o = json_pack("{s:s, s:i, s:o}", "KeyId", rq->key_id,
	    "NumberOfBytes", CLIENT_KMS_DATA_KEY_LEN, "EncryptionContext", ctx);
	if (o == NULL)
		return PH_ERR_INVALID;
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (s != NULL) {
		rc = buf_append_str(out, s);
		free(s);
	}
	return rc;
}

int
client_kms_parse_response(const uint8_t *p, size_t n,
    uint8_t key[CLIENT_KMS_DATA_KEY_LEN], char **blob_b64, char *err,
    size_t errlen)
{
	json_t *o = NULL, *pt, *blob;
	size_t klen = 0;
	int rc = PH_ERR_INVALID;

	*blob_b64 = NULL;
	OPENSSL_cleanse(key, CLIENT_KMS_DATA_KEY_LEN);
	if (p != NULL && n > 0 && n <= KMS_MAX_RESPONSE)
		o = json_loadb((const char *)p, n, 0, NULL);
	if (!json_is_object(o)) {
		snprintf(err, errlen, "The GenerateDataKey response is not a "
		    "JSON object.");
		goto fail;
	}
	pt = json_object_get(o, "Plaintext");
	blob = json_object_get(o, "CiphertextBlob");
	if (!json_is_string(blob) || json_string_length(blob) >
	    CLIENT_KMS_MAX_BLOB || !client_b64_valid(json_string_value(blob),
	    json_string_length(blob))) {
		snprintf(err, errlen, "The GenerateDataKey response has no "
		    "usable CiphertextBlob.");
		goto fail;
	}
	if (!json_is_string(pt) || client_b64_decode(json_string_value(pt),
	    json_string_length(pt), key, CLIENT_KMS_DATA_KEY_LEN, &klen) !=
	    0 || klen != CLIENT_KMS_DATA_KEY_LEN) {
		snprintf(err, errlen, "The GenerateDataKey response has no "
		    "%d-byte Plaintext key.", CLIENT_KMS_DATA_KEY_LEN);
		goto fail;
	}
	if ((*blob_b64 = strdup(json_string_value(blob))) == NULL) {
		snprintf(err, errlen, "Out of memory.");
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	rc = 0;
fail:
	if (rc != 0)
		OPENSSL_cleanse(key, CLIENT_KMS_DATA_KEY_LEN);
	if (o != NULL) {
		/* jansson keeps its own copy of the base64 key: overwrite it
		 * before the string is freed. */
		pt = json_object_get(o, "Plaintext");
		if (json_is_string(pt))
			OPENSSL_cleanse((char *)json_string_value(pt),
			    json_string_length(pt));
		json_decref(o);
	}
	return rc;
}

int
client_kms_generate_data_key(const struct client_awscfg *cfg,
    const struct client_kms_request *rq,
    uint8_t key[CLIENT_KMS_DATA_KEY_LEN], char **blob_b64, char *err,
    size_t errlen)
{
	struct buf req, resp;
	long status = 0;
	int rc;

	*blob_b64 = NULL;
	OPENSSL_cleanse(key, CLIENT_KMS_DATA_KEY_LEN);
	buf_init(&req, (size_t)16 << 10);
	buf_init(&resp, KMS_MAX_RESPONSE);
	/* Room up front: a realloc would leave a copy of the key behind. */
	(void)buf_reserve(&resp, 8192);
	rc = client_kms_request_body(rq, &req);
	if (rc != 0) {
		snprintf(err, errlen, "Cannot build the GenerateDataKey "
		    "request: %s", ph_strerror(rc));
		goto fail;
	}
	rc = client_awsapi_call(cfg, "TrentService.GenerateDataKey", "kms",
	    buf_cstr(&req), &status, &resp, err, errlen);
	if (rc == 0)
		rc = client_kms_parse_response(resp.data, resp.len, key,
		    blob_b64, err, errlen);
fail:
	if (resp.data != NULL)
		OPENSSL_cleanse(resp.data, resp.cap);
	buf_free(&req);
	buf_free(&resp);
	return rc;
}
