/* proxy: which HTTP CONNECT proxy, if any, reaches a host. One
 * configuration per process (proxy_set_default) serves every dial: the
 * WebSocket connector (tls.c through ws.c) and every libcurl handle
 * (proxy_curl_apply), so both take the same route to the same host.
 *
 * Settings come from the environment as curl reads them (https_proxy,
 * then HTTPS_PROXY; no_proxy, then NO_PROXY: the lower case name wins) or
 * from the program's own configuration, which replaces the environment
 * entirely. Only http:// proxy URLs are supported; a URL without a scheme
 * is taken as http://, and a missing port as 1080 (curl's default). */
#ifndef PORTHOLE_PROXY_H
#define PORTHOLE_PROXY_H

#include <stddef.h>

#define PROXY_HOST_MAX 255
#define PROXY_AUTH_MAX 1024

struct proxy {
	char host[PROXY_HOST_MAX + 1]; /* name or IP literal, no brackets */
	int port;
	/* "http://host:port", for libcurl and logs; no credentials. */
	char url[PROXY_HOST_MAX + 32];
	/* Credentials, decoded; never logged. */
	char user[PROXY_AUTH_MAX / 2];
	char password[PROXY_AUTH_MAX / 2];
	int has_auth;
	/* "Basic <base64 user:password>" when has_auth; never logged. */
	char basic[PROXY_AUTH_MAX + 16];
};

struct proxy_config;

/* url NULL or "": direct to every host. no_proxy: hosts reached directly
 * (comma- or space-separated: "*", names, ".domain" or "domain" for the
 * domain and its subdomains, IP literals, any of them with ":port"). err
 * explains a failure (never with the password). */
int proxy_config_new(struct proxy_config **out, const char *url,
    const char *no_proxy, char *err, size_t errlen);
/* From https_proxy/HTTPS_PROXY and no_proxy/NO_PROXY. */
int proxy_config_from_env(struct proxy_config **out, char *err,
    size_t errlen);
void proxy_config_free(struct proxy_config *cfg);
/* The proxy for host:port (host may be bracketed IPv6), or NULL for a
 * direct connection. cfg NULL: direct. Valid while cfg lives. */
const struct proxy *proxy_for(const struct proxy_config *cfg,
    const char *host, int port);
/* 1 if no_proxy names host:port. */
int proxy_no_proxy_match(const char *no_proxy, const char *host, int port);

/* The process-wide configuration (takes ownership; frees the old one).
 * Set once at startup, before any dial; NULL means direct. */
void proxy_set_default(struct proxy_config *cfg);
const struct proxy_config *proxy_default(void);
/* proxy_for(proxy_default(), ...) for the host of url. */
const struct proxy *proxy_for_url(const char *url);
/* Point a libcurl handle at the default configuration's proxy for url, or
 * at none: CURLOPT_PROXY and CURLOPT_NOPROXY are always set, so libcurl's
 * own reading of the environment never disagrees. curl is a CURL *. */
int proxy_curl_apply(void *curl, const char *url);

#endif
