#include "agent/portfwd_deny.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/err.h"

/* AWS's agent's DefaultDeniedPortForwardingRemoteIPs: the instance
 * metadata service, the Amazon DNS server, the time-sync service and the
 * other link-local EC2 services, over IPv4 and IPv6. */
static const char *const pf_deny_defaults[] = {
	"169.254.169.254", "fd00:ec2::254",
	"169.254.169.253", "fd00:ec2::253",
	"169.254.169.123", "fd00:ec2::123",
	"169.254.169.250", "169.254.169.251", "fd00:ec2::240",
};

int
pf_cidr_parse(const char *s, struct pf_cidr *out)
{
	char tmp[PF_DENY_TEXT_MAX];
	const char *slash;
	size_t len, i;
	long bits;
	char *end;
	int max;

	memset(out, 0, sizeof(*out));
	if (s == NULL || (len = strnlen(s, sizeof(tmp))) == 0 ||
	    len >= sizeof(tmp))
		return PH_ERR_INVALID;
	slash = strchr(s, '/');
	if (slash != NULL)
		len = (size_t)(slash - s);
	if (len == 0)
		return PH_ERR_INVALID;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (inet_pton(AF_INET, tmp, out->addr) == 1) {
		out->family = 4;
		max = 32;
	} else if (inet_pton(AF_INET6, tmp, out->addr) == 1) {
		out->family = 6;
		max = 128;
	} else
		return PH_ERR_INVALID;
	bits = max;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			return PH_ERR_INVALID;
		bits = strtol(slash + 1, &end, 10);
		if (*end != '\0' || bits < 0 || bits > max ||
		    end - (slash + 1) > 3)
			return PH_ERR_INVALID;
	}
	out->bits = (uint8_t)bits;
	/* Clear the host bits so matching compares prefixes only. */
	for (i = 0; i < 16; i++) {
		long keep = bits - (long)i * 8;

		if (keep >= 8)
			continue;
		out->addr[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
	}
	return 0;
}

int
pf_deny_add(struct pf_denylist *d, const char *s)
{
	struct pf_cidr c;
	int rc;

	if ((rc = pf_cidr_parse(s, &c)) != 0)
		return rc;
	d->set = 1;
	if (d->n >= PF_DENY_MAX)
		return PH_ERR_TOOBIG;
	d->e[d->n++] = c;
	return 0;
}

void
pf_deny_default(struct pf_denylist *d)
{
	size_t i;

	memset(d, 0, sizeof(*d));
	for (i = 0; i < sizeof(pf_deny_defaults) / sizeof(*pf_deny_defaults);
	    i++)
		(void)pf_deny_add(d, pf_deny_defaults[i]);
}

static int
cidr_has(const struct pf_cidr *c, int family, const uint8_t *a)
{
	size_t full = c->bits / 8, rest = c->bits % 8;
	uint8_t mask;

	if (c->family != family)
		return 0;
	if (memcmp(c->addr, a, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == c->addr[full];
}

int
pf_deny_match(const struct pf_denylist *d, const struct sockaddr *sa)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };
	struct pf_denylist def;
	const uint8_t *a;
	int family;
	size_t i;

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr;
		family = 4;
	} else if (sa->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_addr.s6_addr;
		family = 6;
		/* ::ffff:a.b.c.d reaches a.b.c.d. */
		if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0) {
			a += 12;
			family = 4;
		}
	} else
		return 0;
	if (d == NULL || !d->set) {
		pf_deny_default(&def);
		d = &def;
	}
	for (i = 0; i < d->n; i++)
		if (cidr_has(&d->e[i], family, a))
			return 1;
	return 0;
}
