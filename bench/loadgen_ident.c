/* loadgen_ident: the fake agents' identities. Each has its own EC P-256
 * key and the certificate portholed issued for it through POST
 * /v1/register, exactly as porthole-agent register obtains one; activations
 * are created with the admin credentials of portholed's data directory
 * when none is given. Identities are cached so that reruns against the
 * same portholed skip the registration. */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/loadgen.h"
#include "common/err.h"

#define LG_RESP_MAX ((size_t)1 << 20)
#define LG_HTTP_TIMEOUT_S 60L
#define LG_FILE_MAX ((size_t)256 << 10)
#define LG_IAM_ROLE "porthole-loadgen"

/* ---- small files --------------------------------------------------------- */

static int
lg_read_file(const char *path, struct buf *out)
{
	char chunk[4096];
	size_t n;
	FILE *f;
	int rc = 0;

	if ((f = fopen(path, "r")) == NULL)
		return PH_ERR_NOTFOUND;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if ((rc = buf_append(out, chunk, n)) != 0)
			break;
	if (rc == 0 && ferror(f))
		rc = PH_ERR_IO;
	fclose(f);
	if (rc == 0)
		(void)buf_cstr(out);
	return rc;
}

static int
lg_write_file(const char *path, const void *p, size_t n, int mode)
{
	int fd, rc = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return PH_ERR_IO;
	if (write(fd, p, n) != (ssize_t)n)
		rc = PH_ERR_IO;
	if (close(fd) != 0)
		rc = PH_ERR_IO;
	return rc;
}

/* ---- admin calls --------------------------------------------------------- */

/* "key = value" of one profile in an AWS credentials file. */
static int
lg_ini_get(const char *text, const char *profile, const char *key,
    char *out, size_t outlen)
{
	const char *p = text, *eol, *k, *v;
	char section[160];
	int in = 0;
	size_t kl, vl;

	snprintf(section, sizeof(section), "[%s]", profile);
	for (; *p != '\0'; p = *eol ? eol + 1 : eol) {
		eol = strchr(p, '\n');
		if (eol == NULL)
			eol = p + strlen(p);
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if (*p == '[') {
			in = (size_t)(eol - p) >= strlen(section) &&
			    strncmp(p, section, strlen(section)) == 0;
			continue;
		}
		if (!in)
			continue;
		k = p;
		while (p < eol && *p != '=' && *p != ' ' && *p != '\t')
			p++;
		kl = (size_t)(p - k);
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if (p >= eol || *p != '=' || kl != strlen(key) ||
		    strncmp(k, key, kl) != 0)
			continue;
		p++;
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		v = p;
		vl = (size_t)(eol - v);
		while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' ' ||
		    v[vl - 1] == '\t'))
			vl--;
		if (vl == 0 || vl >= outlen)
			return PH_ERR_INVALID;
		memcpy(out, v, vl);
		out[vl] = '\0';
		return 0;
	}
	return PH_ERR_NOTFOUND;
}

/* The [porthole] access key of an AWS credentials file into a. */
static int
lg_keys_load(struct lg_admin *a, const char *path, char *err, size_t errlen)
{
	struct buf b;
	int rc;

	buf_init(&b, LG_FILE_MAX);
	if ((rc = lg_read_file(path, &b)) != 0) {
		snprintf(err, errlen, "cannot read %s", path);
		goto out;
	}
	if (lg_ini_get(buf_cstr(&b), "porthole", "aws_access_key_id",
	    a->access_key_id, sizeof(a->access_key_id)) != 0 ||
	    lg_ini_get(buf_cstr(&b), "porthole", "aws_secret_access_key",
	    a->secret_access_key, sizeof(a->secret_access_key)) != 0) {
		snprintf(err, errlen, "%s has no [porthole] access key", path);
		rc = PH_ERR_INVALID;
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(b.data, b.cap);
	buf_free(&b);
	return rc;
}

int
lg_admin_load(struct lg_admin *a, const char *data_dir, const char *endpoint,
    const char *ca_file, char *err, size_t errlen)
{
	char path[4200];
	json_t *cfg;
	const char *r;
	int rc;

	memset(a, 0, sizeof(*a));
	snprintf(a->endpoint, sizeof(a->endpoint), "%s", endpoint);
	snprintf(a->ca_file, sizeof(a->ca_file), "%s", ca_file);
	snprintf(a->region, sizeof(a->region), "us-east-1");
	snprintf(path, sizeof(path), "%s/admin.credentials", data_dir);
	if ((rc = lg_keys_load(a, path, err, errlen)) != 0)
		return rc;
	snprintf(path, sizeof(path), "%s/config.json", data_dir);
	cfg = json_load_file(path, 0, NULL);
	r = json_string_value(json_object_get(cfg, "Region"));
	if (r != NULL && strlen(r) < sizeof(a->region) &&
	    r[strspn(r, "abcdefghijklmnopqrstuvwxyz0123456789-")] == '\0')
		snprintf(a->region, sizeof(a->region), "%s", r);
	json_decref(cfg);
	return 0;
}

int
lg_admin_use_credentials(struct lg_admin *a, const char *path, char *err,
    size_t errlen)
{
	return lg_keys_load(a, path, err, errlen);
}

void
lg_admin_clear(struct lg_admin *a)
{
	OPENSSL_cleanse(a->secret_access_key, sizeof(a->secret_access_key));
}

static size_t
lg_curl_write(char *p, size_t size, size_t nmemb, void *ud)
{
	if (buf_append(ud, p, size * nmemb) != 0)
		return 0;
	return size * nmemb;
}

/* The endpoint without trailing slashes, plus path. */
static int
lg_url(char *out, size_t outlen, const char *endpoint, const char *path)
{
	size_t n = strlen(endpoint);
	int w;

	while (n > 0 && endpoint[n - 1] == '/')
		n--;
	w = snprintf(out, outlen, "%.*s%s", (int)n, endpoint, path);
	return w < 0 || (size_t)w >= outlen ? PH_ERR_TOOBIG : 0;
}

int
lg_ssm_call(const struct lg_admin *a, const char *action, const char *body,
    struct buf *resp, char *err, size_t errlen)
{
	char url[1100], sig[128], target[160], cerr[CURL_ERROR_SIZE];
	struct curl_slist *h = NULL, *t;
	long status = 0;
	CURLcode cc;
	CURL *c;
	int rc = PH_ERR_IO;

	if (lg_url(url, sizeof(url), a->endpoint, "/") != 0)
		return PH_ERR_TOOBIG;
	if ((c = curl_easy_init()) == NULL)
		return PH_ERR_NOMEM;
	snprintf(sig, sizeof(sig), "aws:amz:%s:ssm", a->region);
	snprintf(target, sizeof(target), "X-Amz-Target: AmazonSSM.%s",
	    action);
	cerr[0] = '\0';
	buf_reset(resp);
	if ((t = curl_slist_append(h, "Content-Type: "
	    "application/x-amz-json-1.1")) == NULL ||
	    (h = t, t = curl_slist_append(h, target)) == NULL ||
	    (h = t, t = curl_slist_append(h, "Expect:")) == NULL) {
		rc = PH_ERR_NOMEM;
		goto out;
	}
	h = t;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sig);
	curl_easy_setopt(c, CURLOPT_USERNAME, a->access_key_id);
	curl_easy_setopt(c, CURLOPT_PASSWORD, a->secret_access_key);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_CAINFO, a->ca_file);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, lg_curl_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, LG_HTTP_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", action,
		    cerr[0] ? cerr : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		snprintf(err, errlen, "%s: HTTP %ld: %.200s", action, status,
		    buf_cstr(resp));
		rc = status == 403 || status == 401 ? PH_ERR_DENIED :
		    PH_ERR_INVALID;
		goto out;
	}
	(void)buf_cstr(resp);
	rc = 0;
out:
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}

/* CreateActivation with RegistrationLimit limit. */
static int
lg_create_activation(const struct lg_admin *a, size_t limit, char *id,
    size_t idlen, char *code, size_t codelen, char *err, size_t errlen)
{
	struct buf resp;
	json_t *o = NULL;
	const char *i, *c;
	char body[256];
	int rc;

	buf_init(&resp, LG_RESP_MAX);
	snprintf(body, sizeof(body), "{\"IamRole\":\"%s\","
	    "\"RegistrationLimit\":%zu,\"DefaultInstanceName\":\"loadgen\","
	    "\"Description\":\"porthole-loadgen\"}", LG_IAM_ROLE, limit);
	if ((rc = lg_ssm_call(a, "CreateActivation", body, &resp, err,
	    errlen)) != 0)
		goto out;
	o = json_loadb((const char *)resp.data, resp.len, 0, NULL);
	i = json_string_value(json_object_get(o, "ActivationId"));
	c = json_string_value(json_object_get(o, "ActivationCode"));
	if (i == NULL || c == NULL || strlen(i) >= idlen ||
	    strlen(c) >= codelen) {
		snprintf(err, errlen, "CreateActivation: unexpected answer");
		rc = PH_ERR_INVALID;
		goto out;
	}
	snprintf(id, idlen, "%s", i);
	snprintf(code, codelen, "%s", c);
	rc = 0;
out:
	json_decref(o);
	OPENSSL_cleanse(resp.data, resp.cap);
	buf_free(&resp);
	return rc;
}

/* ---- registration -------------------------------------------------------- */

/* A fresh P-256 key (PEM) and a CSR for it (PEM), as the agent makes. */
static int
lg_make_key(struct buf *key_pem, struct buf *csr_pem)
{
	EVP_PKEY *pkey = NULL;
	X509_REQ *req = NULL;
	BIO *kb = NULL, *cb = NULL;
	char *p;
	long n;
	int rc = PH_ERR_CRYPTO;

	if ((pkey = EVP_EC_gen("P-256")) == NULL ||
	    (req = X509_REQ_new()) == NULL ||
	    X509_REQ_set_version(req, 0) != 1 ||
	    X509_REQ_set_pubkey(req, pkey) != 1 ||
	    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
	    MBSTRING_ASC, (const unsigned char *)"porthole-loadgen", -1, -1,
	    0) != 1 || X509_REQ_sign(req, pkey, EVP_sha256()) <= 0)
		goto out;
	if ((kb = BIO_new(BIO_s_mem())) == NULL ||
	    (cb = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL,
	    NULL) != 1 || PEM_write_bio_X509_REQ(cb, req) != 1)
		goto out;
	n = BIO_get_mem_data(kb, &p);
	if (n <= 0 || buf_append(key_pem, p, (size_t)n) != 0)
		goto out;
	n = BIO_get_mem_data(cb, &p);
	if (n <= 0 || buf_append(csr_pem, p, (size_t)n) != 0)
		goto out;
	(void)buf_cstr(csr_pem);
	rc = 0;
out:
	BIO_free_all(kb);
	BIO_free(cb);
	X509_REQ_free(req);
	EVP_PKEY_free(pkey);
	return rc;
}

static int
lg_valid_id(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= LG_ID_MAX && s[0] != '.' &&
	    s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-_.")] == '\0';
}

/* One registration over the reused handle c; the new identity is written
 * to the cache and its id to *id_out. */
static int
lg_register_one(CURL *c, const char *url, const char *act_id,
    const char *act_code, size_t seq, struct lg_idents *ids,
    char *id_out, char *err, size_t errlen)
{
	struct buf key, csr, resp, pem;
	struct curl_slist *h = NULL;
	char *body = NULL, name[64], path[4200], cerr[CURL_ERROR_SIZE];
	const char *iid, *cert;
	json_t *req = NULL, *ans = NULL;
	long status = 0;
	CURLcode cc;
	int rc;

	buf_init(&key, 64 << 10);
	buf_init(&csr, 64 << 10);
	buf_init(&resp, LG_RESP_MAX);
	buf_init(&pem, 128 << 10);
	if ((rc = lg_make_key(&key, &csr)) != 0) {
		snprintf(err, errlen, "cannot generate a key");
		goto out;
	}
	snprintf(name, sizeof(name), "loadgen-%zu", seq);
	req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "ActivationId", act_id,
	    "ActivationCode", act_code, "Csr", buf_cstr(&csr), "Name", name,
	    "Hostname", "porthole-loadgen");
	if (req == NULL || (body = json_dumps(req, JSON_COMPACT)) == NULL) {
		rc = PH_ERR_NOMEM;
		goto out;
	}
	if ((h = curl_slist_append(NULL, "Content-Type: application/json")) ==
	    NULL) {
		rc = PH_ERR_NOMEM;
		goto out;
	}
	cerr[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	cc = curl_easy_perform(c);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "POST /v1/register: %s",
		    cerr[0] ? cerr : curl_easy_strerror(cc));
		rc = PH_ERR_IO;
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		snprintf(err, errlen, "POST /v1/register: HTTP %ld: %.200s",
		    status, buf_cstr(&resp));
		rc = PH_ERR_DENIED;
		goto out;
	}
	ans = json_loadb((const char *)resp.data, resp.len, 0, NULL);
	iid = json_string_value(json_object_get(ans, "InstanceId"));
	cert = json_string_value(json_object_get(ans, "Certificate"));
	if (iid == NULL || cert == NULL || !lg_valid_id(iid)) {
		snprintf(err, errlen, "POST /v1/register: no InstanceId or "
		    "Certificate in the answer");
		rc = PH_ERR_INVALID;
		goto out;
	}
	/* The certificate first, then the key: the TLS context reads each
	 * from the same file. */
	if ((rc = buf_append_str(&pem, cert)) != 0 ||
	    (pem.len > 0 && pem.data[pem.len - 1] != '\n' &&
	    (rc = buf_append_str(&pem, "\n")) != 0) ||
	    (rc = buf_append(&pem, key.data, key.len)) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/%s.pem", ids->dir, iid);
	if ((rc = lg_write_file(path, pem.data, pem.len, 0600)) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", path,
		    strerror(errno));
		goto out;
	}
	snprintf(id_out, LG_ID_MAX + 1, "%s", iid);
	rc = 0;
out:
	if (body != NULL)
		OPENSSL_cleanse(body, strlen(body)); /* holds the code */
	OPENSSL_cleanse(key.data, key.cap);
	OPENSSL_cleanse(pem.data, pem.cap);
	free(body);
	curl_slist_free_all(h);
	json_decref(req);
	json_decref(ans);
	buf_free(&key);
	buf_free(&csr);
	buf_free(&resp);
	buf_free(&pem);
	return rc;
}

/* ---- the cache ----------------------------------------------------------- */

static int
lg_idents_push(struct lg_idents *ids, const char *id)
{
	void *p;
	size_t cap;

	if (ids->n == ids->cap) {
		cap = ids->cap ? ids->cap * 2 : 1024;
		if ((p = realloc(ids->ids, cap * sizeof(*ids->ids))) == NULL)
			return PH_ERR_NOMEM;
		ids->ids = p;
		ids->cap = cap;
	}
	snprintf(ids->ids[ids->n++], LG_ID_MAX + 1, "%s", id);
	return 0;
}

/* Hex SHA-256 of the CA file: a cache made against another portholed
 * (another CA) is useless. */
static int
lg_ca_digest(const char *ca_file, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	struct buf b;
	int rc;

	buf_init(&b, LG_FILE_MAX);
	rc = lg_read_file(ca_file, &b);
	if (rc == 0 && EVP_Digest(b.data, b.len, md, &mdlen, EVP_sha256(),
	    NULL) != 1)
		rc = PH_ERR_CRYPTO;
	buf_free(&b);
	if (rc != 0)
		return rc;
	for (i = 0; i < mdlen && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* Read DIR/agents.list if DIR/ca.sha256 matches; otherwise start over. */
static int
lg_idents_load(struct lg_idents *ids, const char *digest)
{
	char path[4200], line[256], *nl;
	struct buf b;
	struct stat sb;
	FILE *f;
	int rc = 0;

	buf_init(&b, 1024);
	snprintf(path, sizeof(path), "%s/ca.sha256", ids->dir);
	if (lg_read_file(path, &b) != 0 || b.len < 64 ||
	    memcmp(b.data, digest, 64) != 0) {
		buf_free(&b);
		snprintf(path, sizeof(path), "%s/agents.list", ids->dir);
		(void)unlink(path);
		snprintf(path, sizeof(path), "%s/ca.sha256", ids->dir);
		return lg_write_file(path, digest, 64, 0644);
	}
	buf_free(&b);
	snprintf(path, sizeof(path), "%s/agents.list", ids->dir);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl = '\0';
		if (!lg_valid_id(line))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s.pem", ids->dir,
		    line) >= (int)sizeof(path) || stat(path, &sb) != 0)
			continue;
		if ((rc = lg_idents_push(ids, line)) != 0)
			break;
	}
	fclose(f);
	return rc;
}

int
lg_idents_pem_path(const struct lg_idents *ids, size_t i, char *out,
    size_t outlen)
{
	int n;

	if (i >= ids->n)
		return PH_ERR_INVALID;
	n = snprintf(out, outlen, "%s/%s.pem", ids->dir, ids->ids[i]);
	return n < 0 || (size_t)n >= outlen ? PH_ERR_TOOBIG : 0;
}

int
lg_idents_prepare(struct lg_idents *ids, const struct lg_register_opts *o,
    size_t *registered, char *err, size_t errlen)
{
	char digest[65], url[1100], path[4200], act_id[64], act_code[128];
	char id[LG_ID_MAX + 1];
	struct lg_admin admin;
	size_t left = 0, batch;
	FILE *list = NULL;
	CURL *c = NULL;
	int rc, have_admin = 0;

	*registered = 0;
	memset(&admin, 0, sizeof(admin));
	act_code[0] = '\0';
	if (o->cache_dir != NULL) {
		snprintf(ids->dir, sizeof(ids->dir), "%s", o->cache_dir);
		if (mkdir(ids->dir, 0700) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s",
			    ids->dir, strerror(errno));
			return PH_ERR_IO;
		}
	} else {
		snprintf(ids->dir, sizeof(ids->dir),
		    "/tmp/porthole-loadgen-XXXXXX");
		if (mkdtemp(ids->dir) == NULL) {
			snprintf(err, errlen, "cannot create a temporary "
			    "directory: %s", strerror(errno));
			return PH_ERR_IO;
		}
		ids->temporary = 1;
	}
	if ((rc = lg_ca_digest(o->ca_file, digest)) != 0) {
		snprintf(err, errlen, "cannot read --ca %s", o->ca_file);
		return rc;
	}
	if ((rc = lg_idents_load(ids, digest)) != 0) {
		snprintf(err, errlen, "cannot use the cache in %s", ids->dir);
		return rc;
	}
	if (ids->n >= o->want)
		return 0;

	if (lg_url(url, sizeof(url), o->endpoint, "/v1/register") != 0) {
		snprintf(err, errlen, "--endpoint is too long");
		return PH_ERR_TOOBIG;
	}
	if (o->activation_id == NULL) {
		if (o->data_dir == NULL) {
			snprintf(err, errlen, "need --data-dir or "
			    "--activation-code and --activation-id to "
			    "register %zu more instances",
			    o->want - ids->n);
			return PH_ERR_INVALID;
		}
		if ((rc = lg_admin_load(&admin, o->data_dir, o->endpoint,
		    o->ca_file, err, errlen)) != 0)
			return rc;
		have_admin = 1;
	} else {
		snprintf(act_id, sizeof(act_id), "%s", o->activation_id);
		snprintf(act_code, sizeof(act_code), "%s",
		    o->activation_code);
		left = (size_t)-1;
	}
	snprintf(path, sizeof(path), "%s/agents.list", ids->dir);
	if ((list = fopen(path, "a")) == NULL) {
		snprintf(err, errlen, "cannot write %s: %s", path,
		    strerror(errno));
		rc = PH_ERR_IO;
		goto out;
	}
	if ((c = curl_easy_init()) == NULL) {
		rc = PH_ERR_NOMEM;
		goto out;
	}
	/* One handle for every registration: its TLS connection is kept
	 * alive between them. */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, lg_curl_write);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, LG_HTTP_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	while (ids->n < o->want) {
		if (left == 0) {
			batch = o->want - ids->n;
			if (batch > LG_ACTIVATION_LIMIT_MAX)
				batch = LG_ACTIVATION_LIMIT_MAX;
			if ((rc = lg_create_activation(&admin, batch, act_id,
			    sizeof(act_id), act_code, sizeof(act_code), err,
			    errlen)) != 0)
				goto out;
			left = batch;
		}
		if ((rc = lg_register_one(c, url, act_id, act_code, ids->n,
		    ids, id, err, errlen)) != 0)
			goto out;
		if ((rc = lg_idents_push(ids, id)) != 0)
			goto out;
		fprintf(list, "%s\n", id);
		(*registered)++;
		if (left != (size_t)-1)
			left--;
		if (*registered % 500 == 0) {
			fflush(list);
			fprintf(stderr, "porthole-loadgen: registered %zu\n",
			    *registered);
		}
	}
	rc = 0;
out:
	if (list != NULL && fclose(list) != 0 && rc == 0) {
		snprintf(err, errlen, "cannot write %s/agents.list",
		    ids->dir);
		rc = PH_ERR_IO;
	}
	if (c != NULL)
		curl_easy_cleanup(c);
	OPENSSL_cleanse(act_code, sizeof(act_code));
	if (have_admin)
		lg_admin_clear(&admin);
	return rc;
}

void
lg_idents_free(struct lg_idents *ids)
{
	char path[4096 + 512];
	struct dirent *e;
	DIR *d;
	size_t n = 0;

	if (ids->temporary && (d = opendir(ids->dir)) != NULL) {
		/* Bounded: the files we made, plus a little slack. */
		while ((e = readdir(d)) != NULL && n++ < ids->n + 16) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", ids->dir,
			    e->d_name);
			(void)unlink(path);
		}
		closedir(d);
		(void)rmdir(ids->dir);
	}
	free(ids->ids);
	ids->ids = NULL;
	ids->n = ids->cap = 0;
}
