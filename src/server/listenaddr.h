/* listenaddr: the --listen values of `portholed serve`: "HOST:PORT" with
 * an IPv4 literal or localhost, "[IPv6]:PORT", or ":PORT" (every IPv4
 * address). Numeric only: a listener binds addresses, not names. */
#ifndef PORTHOLE_LISTENADDR_H
#define PORTHOLE_LISTENADDR_H

#include <stddef.h>

#define LISTENADDR_MAX 16         /* --listen values per portholed */
#define LISTENADDR_TEXT_MAX 80    /* longest accepted --listen value */
#define LISTENADDR_HOST_SIZE 46   /* INET6_ADDRSTRLEN */
#define LISTENADDR_SHOW_SIZE 56   /* "[" host "]:" port */

struct listenaddr {
	char host[LISTENADDR_HOST_SIZE];  /* canonical text of the address */
	int port;                         /* 0..65535; 0: the system picks */
	int v6;
};

/* Parse one --listen value into *a. PH_ERR_INVALID with the reason in
 * err (for "bad --listen 'X': <reason>") for anything else. */
int listenaddr_parse(const char *s, struct listenaddr *a, char *err,
    size_t errsz);

/* "127.0.0.1:8443", "[::1]:8443": the address as --listen takes it. */
void listenaddr_show(const struct listenaddr *a, char *out, size_t outsz);

/* 1 if both name the same address and port. */
int listenaddr_same(const struct listenaddr *a, const struct listenaddr *b);

#endif
