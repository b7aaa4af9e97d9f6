/* listenaddr: --listen values. */
#include "server/listenaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

static int
la_fail(char *err, size_t errsz, const char *why)
{
	if (err != NULL && errsz > 0)
		snprintf(err, errsz, "%s", why);
	return PH_ERR_INVALID;
}

/* Decimal digits only (no sign, no spaces), at most 65535. */
static int
la_port(const char *p, int *port, char *err, size_t errsz)
{
	long v = 0;
	size_t i;

	if (*p == '\0')
		return la_fail(err, errsz, "the port number is missing");
	for (i = 0; p[i] != '\0'; i++) {
		if (p[i] < '0' || p[i] > '9')
			return la_fail(err, errsz, "the port is not a number");
		if (i >= 5)
			return la_fail(err, errsz, "the port is not in "
			    "0-65535");
		v = v * 10 + (p[i] - '0');
	}
	if (v > 65535)
		return la_fail(err, errsz, "the port is not in 0-65535");
	*port = (int)v;
	return 0;
}

int
listenaddr_parse(const char *s, struct listenaddr *a, char *err,
    size_t errsz)
{
	char host[LISTENADDR_TEXT_MAX + 1];
	unsigned char bin[16];
	const char *colon, *rb;
	size_t n, i;

	memset(a, 0, sizeof(*a));
	if (s == NULL || *s == '\0')
		return la_fail(err, errsz, "empty; want HOST:PORT, "
		    "[IPv6]:PORT or :PORT");
	n = strlen(s);
	if (n > LISTENADDR_TEXT_MAX)
		return la_fail(err, errsz, "too long");
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return la_fail(err, errsz, "contains a space, a "
			    "control or a non-ASCII character");
	if (s[0] == '[') {
		if ((rb = strchr(s, ']')) == NULL)
			return la_fail(err, errsz, "'[' without ']'");
		if (rb[1] != ':')
			return la_fail(err, errsz, "want [IPv6]:PORT, e.g. "
			    "[::1]:8443");
		n = (size_t)(rb - s - 1);
		memcpy(host, s + 1, n);
		host[n] = '\0';
		if (strchr(host, '%') != NULL)
			return la_fail(err, errsz, "IPv6 zone indices (%) are "
			    "not supported");
		if (inet_pton(AF_INET, host, bin) == 1)
			return la_fail(err, errsz, "brackets are for IPv6 "
			    "addresses; write an IPv4 address without them");
		if (inet_pton(AF_INET6, host, bin) != 1)
			return la_fail(err, errsz, "not an IPv6 address "
			    "between the brackets");
		a->v6 = 1;
		colon = rb + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return la_fail(err, errsz, "no :PORT (e.g. "
			    "127.0.0.1:8443, or :8443 for every IPv4 "
			    "address)");
		n = (size_t)(colon - s);
		memcpy(host, s, n);
		host[n] = '\0';
		if (memchr(host, ':', n) != NULL)
			return la_fail(err, errsz, "IPv6 addresses go in "
			    "brackets, e.g. [::1]:8443");
		if (n == 0)
			snprintf(host, sizeof(host), "0.0.0.0");
		else if (strcmp(host, "localhost") == 0)
			snprintf(host, sizeof(host), "127.0.0.1");
		if (strchr(host, ']') != NULL)
			return la_fail(err, errsz, "']' without '['");
		if (inet_pton(AF_INET, host, bin) != 1)
			return la_fail(err, errsz, "not an IP address (a "
			    "listener binds addresses: give the address a "
			    "name resolves to, or [IPv6] in brackets)");
	}
	if (la_port(colon + 1, &a->port, err, errsz) != 0)
		return PH_ERR_INVALID;
	if (inet_ntop(a->v6 ? AF_INET6 : AF_INET, bin, a->host,
	    sizeof(a->host)) == NULL)
		return la_fail(err, errsz, "not an IP address");
	return 0;
}

void
listenaddr_show(const struct listenaddr *a, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s%s%s:%d", a->v6 ? "[" : "", a->host,
	    a->v6 ? "]" : "", a->port);
}

int
listenaddr_same(const struct listenaddr *a, const struct listenaddr *b)
{
	return a->v6 == b->v6 && a->port == b->port &&
	    strcmp(a->host, b->host) == 0;
}
