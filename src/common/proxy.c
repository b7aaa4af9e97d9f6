/* proxy: HTTP CONNECT proxy settings and the no_proxy rules, shared by the
 * WebSocket connector and libcurl. URLs are taken apart with libcurl's URL
 * API; nothing here parses a URL by hand. */
#include "common/proxy.h"

#include "common/err.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PROXY_DEFAULT_PORT 1080
/* Longest proxy URL or no_proxy list taken from the environment. */
#define PROXY_SETTING_MAX 4096

struct proxy_config {
	int set;                       /* a proxy is configured */
	struct proxy px;
	char *no_proxy;                /* NULL: none */
};

static struct proxy_config *proxy_dflt;

static int
proxy_is_v6(const char *h)
{
	struct in6_addr a;

	return inet_pton(AF_INET6, h, &a) == 1;
}

/* Printable ASCII without spaces: what a setting may hold. */
static int
proxy_clean(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

/* Copy host into out without IPv6 brackets, lower case, no trailing dot. */
static int
proxy_norm_host(const char *host, char *out, size_t outsz)
{
	size_t n = strlen(host), i;

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	while (n > 1 && host[n - 1] == '.')
		n--;
	if (n == 0 || n >= outsz)
		return PH_ERR_INVALID;
	for (i = 0; i < n; i++)
		out[i] = (char)((host[i] >= 'A' && host[i] <= 'Z') ?
		    host[i] + ('a' - 'A') : host[i]);
	out[n] = '\0';
	return 0;
}

static int
proxy_parse_url(struct proxy *px, const char *url, char *err, size_t errlen)
{
	char buf[PROXY_SETTING_MAX + 16];
	char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
	char *pass = NULL, *path = NULL, *query = NULL, *frag = NULL;
	unsigned char raw[PROXY_AUTH_MAX + 2];
	char *end;
	size_t ul, pl;
	long v;
	CURLU *u;
	int rc = PH_ERR_INVALID, v6;

	memset(px, 0, sizeof(*px));
	if (strlen(url) > PROXY_SETTING_MAX || !proxy_clean(url)) {
		ph_errf(err, errlen, "proxy URL is too long or holds "
		    "spaces or control characters");
		return PH_ERR_INVALID;
	}
	/* "host:port" alone means http://, as curl takes it. */
	if (strstr(url, "://") == NULL)
		snprintf(buf, sizeof(buf), "http://%s", url);
	else
		snprintf(buf, sizeof(buf), "%s", url);
	if ((u = curl_url()) == NULL)
		return PH_ERR_NOMEM;
	if (curl_url_set(u, CURLUPART_URL, buf,
	    CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		ph_errf(err, errlen, "proxy URL is not a URL");
		goto fail;
	}
	if (strcasecmp(scheme, "https") == 0) {
		ph_errf(err, errlen, "https:// proxy URLs are not supported "
		    "(use http://; the tunnelled traffic is TLS anyway)");
		goto fail;
	}
	if (strcasecmp(scheme, "http") != 0) {
		ph_errf(err, errlen, "proxy URL scheme %.16s is not "
		    "supported (only http://)", scheme);
		goto fail;
	}
	(void)curl_url_get(u, CURLUPART_PATH, &path, 0);
	(void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
	(void)curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
	if ((path != NULL && strcmp(path, "/") != 0 && *path != '\0') ||
	    query != NULL || frag != NULL) {
		ph_errf(err, errlen, "proxy URL must be http://host:port "
		    "(no path or query)");
		goto fail;
	}
	if (proxy_norm_host(host, px->host, sizeof(px->host)) != 0 ||
	    strchr(px->host, '%') != NULL) {
		ph_errf(err, errlen, "proxy URL has no usable host");
		goto fail;
	}
	px->port = PROXY_DEFAULT_PORT;
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK) {
		v = strtol(port, &end, 10);
		if (*end != '\0' || v <= 0 || v > 65535) {
			ph_errf(err, errlen, "proxy URL port is invalid");
			goto fail;
		}
		px->port = (int)v;
	}
	v6 = proxy_is_v6(px->host);
	snprintf(px->url, sizeof(px->url), "http://%s%s%s:%d", v6 ? "[" : "",
	    px->host, v6 ? "]" : "", px->port);
	(void)curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE);
	(void)curl_url_get(u, CURLUPART_PASSWORD, &pass, CURLU_URLDECODE);
	if (user != NULL) {
		ul = strlen(user);
		pl = pass != NULL ? strlen(pass) : 0;
		if (ul >= sizeof(px->user) || pl >= sizeof(px->password) ||
		    strchr(user, ':') != NULL || ul + 1 + pl > PROXY_AUTH_MAX) {
			ph_errf(err, errlen, "proxy URL credentials are too "
			    "long or invalid");
			goto fail;
		}
		memcpy(px->user, user, ul + 1);
		if (pass != NULL)
			memcpy(px->password, pass, pl + 1);
		/* RFC 7617: base64 of user ":" password. */
		memcpy(raw, user, ul);
		raw[ul] = ':';
		if (pl > 0)
			memcpy(raw + ul + 1, pass, pl);
		memcpy(px->basic, "Basic ", 6);
		EVP_EncodeBlock((unsigned char *)px->basic + 6, raw,
		    (int)(ul + 1 + pl));
		OPENSSL_cleanse(raw, sizeof(raw));
		px->has_auth = 1;
	}
	rc = 0;
fail:
	if (pass != NULL)
		OPENSSL_cleanse(pass, strlen(pass));
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(user);
	curl_free(pass);
	curl_free(path);
	curl_free(query);
	curl_free(frag);
	curl_url_cleanup(u);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rc != 0)
		OPENSSL_cleanse(px, sizeof(*px));
	return rc;
}

int
proxy_config_new(struct proxy_config **out, const char *url,
    const char *no_proxy, char *err, size_t errlen)
{
	struct proxy_config *cfg;
	int rc;

	*out = NULL;
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return PH_ERR_NOMEM;
	if (url != NULL && *url != '\0') {
		if ((rc = proxy_parse_url(&cfg->px, url, err, errlen)) != 0)
			goto fail;
		cfg->set = 1;
	}
	if (no_proxy != NULL && *no_proxy != '\0') {
		if (strlen(no_proxy) > PROXY_SETTING_MAX) {
			ph_errf(err, errlen, "no_proxy list is too long");
			rc = PH_ERR_INVALID;
			goto fail;
		}
		if ((cfg->no_proxy = strdup(no_proxy)) == NULL) {
			rc = PH_ERR_NOMEM;
			goto fail;
		}
	}
	*out = cfg;
	return 0;
fail:
	proxy_config_free(cfg);
	return rc;
}

/* The lower case name wins, as in curl; empty counts as unset. */
static const char *
proxy_env(const char *lower, const char *upper)
{
	const char *v = getenv(lower);

	if (v != NULL && *v != '\0')
		return v;
	v = getenv(upper);
	return v != NULL && *v != '\0' ? v : NULL;
}

int
proxy_config_from_env(struct proxy_config **out, char *err, size_t errlen)
{
	char e[256];
	int rc;

	e[0] = '\0';
	rc = proxy_config_new(out, proxy_env("https_proxy", "HTTPS_PROXY"),
	    proxy_env("no_proxy", "NO_PROXY"), e, sizeof(e));
	if (rc != 0)
		ph_errf(err, errlen, "https_proxy: %s", e);
	return rc;
}

void
proxy_config_free(struct proxy_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->no_proxy);
	OPENSSL_cleanse(cfg, sizeof(*cfg));
	free(cfg);
}

/* One no_proxy entry (len bytes at e) against a normalised host. */
static int
proxy_entry_match(const char *e, size_t len, const char *host, int port)
{
	char name[PROXY_HOST_MAX + 1], *end;
	const char *stop = e + len, *he, *ps = NULL, *colon, *close;
	size_t nl, hl, pl;
	long v;

	if (len == 1 && e[0] == '*')
		return 1;
	/* An optional :port: "[v6]:port", "name:port"; a bare IPv6
	 * literal has more than one colon and no port. */
	if (e[0] == '[') {
		if ((close = memchr(e, ']', len)) == NULL)
			return 0;
		e++;
		he = close;
		if (close + 1 < stop) {
			if (close[1] != ':')
				return 0;
			ps = close + 2;
		}
	} else if ((colon = memchr(e, ':', len)) != NULL &&
	    memchr(colon + 1, ':', (size_t)(stop - colon - 1)) == NULL) {
		he = colon;
		ps = colon + 1;
	} else
		he = stop;
	if (ps != NULL) {
		pl = (size_t)(stop - ps);
		if (pl == 0 || pl > 5)
			return 0;
		memcpy(name, ps, pl);
		name[pl] = '\0';
		v = strtol(name, &end, 10);
		if (*end != '\0' || v <= 0 || v > 65535 || v != port)
			return 0;
	}
	nl = (size_t)(he - e);
	while (nl > 0 && *e == '.') {
		e++;
		nl--;
	}
	while (nl > 0 && e[nl - 1] == '.')
		nl--;
	if (nl == 0 || nl >= sizeof(name))
		return 0;
	memcpy(name, e, nl);
	name[nl] = '\0';
	hl = strlen(host);
	if (hl == nl && strcasecmp(host, name) == 0)
		return 1;
	/* A domain: the host is below it. IP literals match only whole. */
	if (proxy_is_v6(host) || inet_pton(AF_INET, host,
	    &(struct in_addr){ 0 }) == 1)
		return 0;
	return hl > nl && host[hl - nl - 1] == '.' &&
	    strcasecmp(host + hl - nl, name) == 0;
}

int
proxy_no_proxy_match(const char *no_proxy, const char *host, int port)
{
	char h[PROXY_HOST_MAX + 1];
	const char *p, *q;
	size_t n;

	if (no_proxy == NULL || host == NULL ||
	    proxy_norm_host(host, h, sizeof(h)) != 0)
		return 0;
	for (p = no_proxy; *p != '\0'; p = q) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		for (q = p; *q != '\0' && *q != ',' && *q != ' ' &&
		    *q != '\t'; q++)
			;
		n = (size_t)(q - p);
		if (n > 0 && proxy_entry_match(p, n, h, port))
			return 1;
	}
	return 0;
}

const struct proxy *
proxy_for(const struct proxy_config *cfg, const char *host, int port)
{
	if (cfg == NULL || !cfg->set || host == NULL || *host == '\0')
		return NULL;
	if (proxy_no_proxy_match(cfg->no_proxy, host, port))
		return NULL;
	return &cfg->px;
}

void
proxy_set_default(struct proxy_config *cfg)
{
	proxy_config_free(proxy_dflt);
	proxy_dflt = cfg;
}

const struct proxy_config *
proxy_default(void)
{
	return proxy_dflt;
}

const struct proxy *
proxy_for_url(const char *url)
{
	const struct proxy *px = NULL;
	char *host = NULL, *port = NULL;
	CURLU *u;
	long v;

	if (proxy_dflt == NULL || !proxy_dflt->set || url == NULL)
		return NULL;
	if ((u = curl_url()) == NULL)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url,
	    CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		/* A scheme libcurl has no default port for: 0, which no
		 * no_proxy entry with a port matches. */
		v = curl_url_get(u, CURLUPART_PORT, &port,
		    CURLU_DEFAULT_PORT) == CURLUE_OK ?
		    strtol(port, NULL, 10) : 0;
		px = proxy_for(proxy_dflt, host, (int)v);
	} else
		/* Not a URL we can read: libcurl will refuse it too; the
		 * proxy, if any, is the safer route. */
		px = &proxy_dflt->px;
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return px;
}

int
proxy_curl_apply(void *curl, const char *url)
{
	const struct proxy *px = proxy_for_url(url);
	CURL *h = curl;

	/* "" turns libcurl's own environment lookup off: this module has
	 * decided already. */
	if (curl_easy_setopt(h, CURLOPT_NOPROXY, "") != CURLE_OK)
		return PH_ERR_INVALID;
	if (px == NULL)
		return curl_easy_setopt(h, CURLOPT_PROXY, "") == CURLE_OK ?
		    0 : PH_ERR_INVALID;
	if (curl_easy_setopt(h, CURLOPT_PROXY, px->url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROXYTYPE, (long)CURLPROXY_HTTP) !=
	    CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HTTPPROXYTUNNEL, 1L) != CURLE_OK)
		return PH_ERR_INVALID;
	if (px->has_auth && (curl_easy_setopt(h, CURLOPT_PROXYUSERNAME,
	    px->user) != CURLE_OK || curl_easy_setopt(h,
	    CURLOPT_PROXYPASSWORD, px->password) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROXYAUTH, (long)CURLAUTH_BASIC) !=
	    CURLE_OK))
		return PH_ERR_INVALID;
	return 0;
}
