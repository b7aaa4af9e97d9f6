#include "agent/register.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/jsonci.h"
#include "agent/state.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/proxy.h"

#define REG_RESPONSE_MAX ((size_t)1 << 20)
#define REG_TIMEOUT_S 30L

/* Print text from the network without its control characters, bounded. */
static void
reg_print_clean(FILE *f, const char *s, size_t max)
{
	size_t i;

	for (i = 0; s != NULL && s[i] != '\0' && i < max; i++)
		fputc((unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i],
		    f);
	if (s != NULL && strlen(s) > max)
		fputs("...", f);
}

/* A fresh EC P-256 key and a CSR for it, both PEM. */
static int
reg_make_key(char **key_pem, char **csr_pem)
{
	EVP_PKEY *pkey = NULL;
	X509_REQ *req = NULL;
	X509_NAME *name;
	BIO *kb = NULL, *cb = NULL;
	char *p;
	long n;
	int rc = PH_ERR_CRYPTO;

	*key_pem = *csr_pem = NULL;
	pkey = EVP_EC_gen("P-256");
	if (pkey == NULL)
		goto fail;
	req = X509_REQ_new();
	if (req == NULL || X509_REQ_set_version(req, 0) != 1 ||
	    X509_REQ_set_pubkey(req, pkey) != 1)
		goto fail;
	/* portholed sets the certificate's CN to the instance id; ours is
	 * only a placeholder. */
	name = X509_REQ_get_subject_name(req);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"porthole-agent", -1, -1, 0) != 1)
		goto fail;
	if (X509_REQ_sign(req, pkey, EVP_sha256()) <= 0)
		goto fail;
	kb = BIO_new(BIO_s_mem());
	cb = BIO_new(BIO_s_mem());
	if (kb == NULL || cb == NULL ||
	    PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL,
	    NULL) != 1 ||
	    PEM_write_bio_X509_REQ(cb, req) != 1)
		goto fail;
	n = BIO_get_mem_data(kb, &p);
	if (n <= 0 || (*key_pem = strndup(p, (size_t)n)) == NULL)
		goto fail;
	n = BIO_get_mem_data(cb, &p);
	if (n <= 0 || (*csr_pem = strndup(p, (size_t)n)) == NULL)
		goto fail;
	rc = 0;
fail:
	if (rc != 0) {
		if (*key_pem != NULL)
			OPENSSL_cleanse(*key_pem, strlen(*key_pem));
		free(*key_pem);
		free(*csr_pem);
		*key_pem = *csr_pem = NULL;
	}
	BIO_free(kb);
	BIO_free(cb);
	X509_REQ_free(req);
	EVP_PKEY_free(pkey);
	return rc;
}

/* True if cert_pem is a certificate for the private key in key_pem. */
static int
reg_cert_matches(const char *cert_pem, const char *key_pem)
{
	BIO *cb, *kb;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	int ok = 0;

	cb = BIO_new_mem_buf(cert_pem, -1);
	kb = BIO_new_mem_buf(key_pem, -1);
	if (cb != NULL && kb != NULL &&
	    (x = PEM_read_bio_X509(cb, NULL, NULL, NULL)) != NULL &&
	    (k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL)) != NULL)
		ok = X509_check_private_key(x, k) == 1;
	X509_free(x);
	EVP_PKEY_free(k);
	BIO_free(cb);
	BIO_free(kb);
	return ok;
}

static size_t
reg_write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;

	/* Returning less than given makes curl fail the transfer. */
	if (buf_append(b, p, size * nmemb) != 0)
		return 0;
	return size * nmemb;
}

int
agent_register_region_endpoint(const char *region, char *out, size_t size)
{
	size_t n, i;
	int w;

	if (region == NULL || out == NULL || size == 0)
		return PH_ERR_INVALID;
	n = strlen(region);
	if (n == 0 || n > 32 || region[0] == '-' || region[n - 1] == '-')
		return PH_ERR_INVALID;
	for (i = 0; i < n; i++)
		if (!(region[i] >= 'a' && region[i] <= 'z') &&
		    !(region[i] >= '0' && region[i] <= '9') &&
		    region[i] != '-')
			return PH_ERR_INVALID;
	w = snprintf(out, size, "https://ssm.%s.amazonaws.com", region);
	if (w < 0 || (size_t)w >= size)
		return PH_ERR_TOOBIG;
	return 0;
}

/* The endpoint without trailing slashes. */
static size_t
reg_base_len(const char *endpoint)
{
	size_t n = strlen(endpoint);

	while (n > 0 && endpoint[n - 1] == '/')
		n--;
	return n;
}

static int
reg_post(const struct agent_register_opts *o, const char *body, long *status,
    struct buf *resp)
{
	char url[1200], errbuf[CURL_ERROR_SIZE];
	struct curl_slist *hdrs = NULL;
	const char *base = o->endpoint;
	size_t blen = reg_base_len(base);
	CURLcode cc;
	CURL *c;
	int rc = PH_ERR_IO;

	if (blen + 16 >= sizeof(url))
		return PH_ERR_TOOBIG;
	snprintf(url, sizeof(url), "%.*s/v1/register", (int)blen, base);
	c = curl_easy_init();
	if (c == NULL)
		return PH_ERR_NOMEM;
	errbuf[0] = '\0';
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	if (proxy_curl_apply(c, url) != 0) {
		fprintf(stderr, "porthole-agent: cannot set the proxy\n");
		goto fail;
	}
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, reg_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, REG_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		fprintf(stderr, "porthole-agent: cannot register with %s: %s\n",
		    url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto fail;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	rc = 0;
fail:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return rc;
}

/* An error answer: {"__type": ..., "message": ...}. */
static void
reg_report_error(long status, struct buf *resp)
{
	const char *type = NULL, *msg = NULL, *hash;
	json_error_t jerr;
	json_t *o;

	o = json_loadb((const char *)resp->data, resp->len, 0, &jerr);
	type = agent_json_str(o, "__type");
	msg = agent_json_str(o, "message");
	if (type != NULL && (hash = strrchr(type, '#')) != NULL)
		type = hash + 1; /* "prefix#Type" as AWS sometimes sends */
	if (status == 400 && type != NULL) {
		fputs("porthole-agent: registration refused: ", stderr);
		reg_print_clean(stderr, msg ? msg : "no message", 512);
		fputs(" (", stderr);
		reg_print_clean(stderr, type, 128);
		fputs(")\n", stderr);
	} else {
		fprintf(stderr, "porthole-agent: registration failed: HTTP %ld",
		    status);
		if (type != NULL || msg != NULL) {
			fputs(": ", stderr);
			reg_print_clean(stderr, msg ? msg : type, 512);
		}
		fputc('\n', stderr);
	}
	json_decref(o);
}

/* mkdir -p with mode 0700 for the last component. */
static int
reg_mkdir(const char *dir)
{
	char tmp[AGENT_PATH_MAX];
	struct stat sb;
	size_t i, n = strlen(dir);

	if (n == 0 || n >= sizeof(tmp))
		return PH_ERR_TOOBIG;
	memcpy(tmp, dir, n + 1);
	for (i = 1; i < n; i++) {
		if (tmp[i] != '/')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return PH_ERR_IO;
		tmp[i] = '/';
	}
	if (mkdir(dir, 0700) != 0) {
		if (errno != EEXIST)
			return PH_ERR_IO;
		if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
			return PH_ERR_IO;
		/* Owned by us: make sure nobody else can look inside. */
		if (sb.st_uid == geteuid() && (sb.st_mode & 077) != 0)
			(void)chmod(dir, 0700);
	}
	return 0;
}

/* Keep settings of an earlier agent.json (SudoersEntry, Proxy) when the
 * machine is registered again. */
static json_t *
reg_old_config(const char *path)
{
	json_t *o = NULL, *keep;
	char *text = NULL;
	size_t n;

	keep = json_object();
	if (keep == NULL || agent_read_file(path, AGENT_STATE_FILE_MAX, &text,
	    &n) != 0)
		return keep;
	o = json_loadb(text, n, 0, NULL);
	if (json_is_boolean(agent_json_get(o, "SudoersEntry")))
		json_object_set(keep, "SudoersEntry",
		    agent_json_get(o, "SudoersEntry"));
	if (json_is_object(agent_json_get(o, "Proxy")))
		json_object_set(keep, "Proxy", agent_json_get(o, "Proxy"));
	json_decref(o);
	free(text);
	return keep;
}

static int
reg_save(const struct agent_register_opts *o, struct agent_state *st,
    const char *key_pem, const char *cert_pem, const char *instance_id,
    const char *region)
{
	char *ca = NULL, *cfg_text = NULL, *cfg_json = NULL;
	json_t *cfg;
	size_t ca_len;
	int rc;

	if ((rc = agent_read_file(o->ca_file, AGENT_STATE_FILE_MAX * 4, &ca,
	    &ca_len)) != 0) {
		fprintf(stderr, "porthole-agent: cannot read %s: %s\n",
		    o->ca_file, ph_strerror(rc));
		return rc;
	}
	cfg = reg_old_config(st->config_path);
	if (cfg != NULL && (o->proxy != NULL || o->no_proxy != NULL)) {
		(void)json_object_del(cfg, "Proxy");
		if (json_object_set_new(cfg, "Proxy", json_pack("{s:s, s:s}",
		    "Url", st->proxy_url, "NoProxy", st->no_proxy)) != 0) {
			rc = PH_ERR_NOMEM;
			goto fail;
		}
	}
	if (cfg == NULL ||
	    json_object_set_new(cfg, "InstanceId", json_string(instance_id)) ||
	    json_object_set_new(cfg, "Endpoint", json_stringn(o->endpoint,
	    reg_base_len(o->endpoint))) ||
	    json_object_set_new(cfg, "Region", json_string(region)) ||
	    (cfg_json = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS)) ==
	    NULL || asprintf(&cfg_text, "%s\n", cfg_json) < 0) {
		cfg_text = NULL;
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	/* The key first: a certificate without its key is useless. Every
	 * file is private to the agent's user, like the directory. */
	if ((rc = agent_write_file_atomic(st->key_path, key_pem,
	    strlen(key_pem), 0600)) != 0 ||
	    (rc = agent_write_file_atomic(st->cert_path, cert_pem,
	    strlen(cert_pem), 0600)) != 0 ||
	    (rc = agent_write_file_atomic(st->ca_path, ca, ca_len,
	    0600)) != 0 ||
	    (rc = agent_write_file_atomic(st->config_path, cfg_text,
	    strlen(cfg_text), 0600)) != 0) {
		fprintf(stderr, "porthole-agent: cannot write the state in %s: "
		    "%s\n", st->dir, strerror(errno));
		goto fail;
	}
	rc = 0;
fail:
	free(cfg_json);
	free(cfg_text);
	json_decref(cfg);
	free(ca);
	return rc;
}

/* The proxy for registering: --proxy, else an earlier agent.json's, else
 * the environment's. */
static int
reg_proxy(const struct agent_register_opts *o, struct agent_state *st)
{
	char *text = NULL, err[512];
	json_t *old = NULL;
	size_t n;
	int rc;

	if (o->proxy != NULL || o->no_proxy != NULL) {
		old = json_pack("{s:{s:s, s:s}}", "Proxy", "Url",
		    o->proxy ? o->proxy : "", "NoProxy",
		    o->no_proxy ? o->no_proxy : "");
	} else if (agent_read_file(st->config_path, AGENT_STATE_FILE_MAX,
	    &text, &n) == 0)
		old = json_loadb(text, n, 0, NULL);
	free(text);
	snprintf(st->endpoint, sizeof(st->endpoint), "%s", o->endpoint);
	err[0] = '\0';
	if ((rc = agent_state_proxy(st, old, err, sizeof(err))) == 0)
		rc = agent_proxy_setup(st, err, sizeof(err));
	json_decref(old);
	if (rc != 0)
		fprintf(stderr, "porthole-agent: %s\n", err);
	return rc;
}

int
agent_register_run(const struct agent_register_opts *o)
{
	char *key_pem = NULL, *csr_pem = NULL, *body = NULL, host[256];
	const char *instance_id, *cert, *region;
	struct agent_state st;
	char ws[1024];
	struct buf resp;
	json_t *req = NULL, *ans = NULL;
	long status = 0;
	int ret = 1;

	buf_init(&resp, REG_RESPONSE_MAX);
	memset(&st, 0, sizeof(st));
	if (agent_endpoint_to_ws(o->endpoint, ws, sizeof(ws)) != 0) {
		fprintf(stderr, "porthole-agent: --endpoint must be an "
		    "https://HOST[:PORT] URL\n");
		goto out;
	}
	if (access(o->ca_file, R_OK) != 0) {
		fprintf(stderr, "porthole-agent: cannot read --ca %s: %s\n",
		    o->ca_file, strerror(errno));
		goto out;
	}
	if (agent_state_set_dir(&st, o->state_dir) != 0 ||
	    reg_mkdir(st.dir) != 0) {
		fprintf(stderr, "porthole-agent: cannot create the state "
		    "directory %s: %s\n", o->state_dir, strerror(errno));
		goto out;
	}
	if (reg_proxy(o, &st) != 0)
		goto out;
	if (reg_make_key(&key_pem, &csr_pem) != 0) {
		fprintf(stderr, "porthole-agent: cannot generate a key\n");
		goto out;
	}
	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	/* No --name: null, and the activation's default name applies. */
	req = json_pack("{s:s, s:s, s:s, s:s?, s:s}", "ActivationId", o->id,
	    "ActivationCode", o->code, "Csr", csr_pem, "Name", o->name,
	    "Hostname", host);
	if (req == NULL || (body = json_dumps(req, JSON_COMPACT)) == NULL) {
		fprintf(stderr, "porthole-agent: out of memory\n");
		goto out;
	}
	if (reg_post(o, body, &status, &resp) != 0)
		goto out;
	if (status != 200) {
		reg_report_error(status, &resp);
		goto out;
	}
	ans = json_loadb((const char *)resp.data, resp.len, 0, NULL);
	instance_id = agent_json_str(ans, "InstanceId");
	cert = agent_json_str(ans, "Certificate");
	region = agent_json_str(ans, "Region");
	if (instance_id == NULL || cert == NULL ||
	    strlen(instance_id) > AGENT_INSTANCE_ID_MAX ||
	    instance_id[strspn(instance_id, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")] != '\0' ||
	    instance_id[0] == '\0' || instance_id[0] == '.') {
		fprintf(stderr, "porthole-agent: the server's answer lacks a "
		    "valid InstanceId or Certificate\n");
		goto out;
	}
	if (!reg_cert_matches(cert, key_pem)) {
		fprintf(stderr, "porthole-agent: the server returned a "
		    "certificate that does not match our key\n");
		goto out;
	}
	if (reg_save(o, &st, key_pem, cert, instance_id,
	    region ? region : "") != 0)
		goto out;
	printf("Registered as %s\n", instance_id);
	fflush(stdout);
	ret = 0;
out:
	if (key_pem != NULL)
		OPENSSL_cleanse(key_pem, strlen(key_pem));
	if (body != NULL)
		OPENSSL_cleanse(body, strlen(body)); /* holds the code */
	free(key_pem);
	free(csr_pem);
	free(body);
	json_decref(req);
	json_decref(ans);
	buf_free(&resp);
	return ret;
}
