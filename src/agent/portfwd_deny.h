/* portfwd_deny: the destinations port forwarding refuses (spec 7.4):
 * agent.json's DeniedPortForwardingRemoteIPs, a list of IPv4/IPv6
 * addresses and CIDR blocks, by default the EC2 link-local services (the
 * instance metadata, DNS, time-sync and the other addresses AWS's agent
 * lists). Plain data: a zeroed list means "the default". */
#ifndef PORTHOLE_AGENT_PORTFWD_DENY_H
#define PORTHOLE_AGENT_PORTFWD_DENY_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

#define PF_DENY_MAX 64
#define PF_DENY_TEXT_MAX 64 /* one entry as text, "ffff:...:ffff/128" */

struct pf_cidr {
	uint8_t addr[16];  /* network order; IPv4 in the first 4 bytes */
	uint8_t family;    /* 4 or 6 */
	uint8_t bits;      /* prefix length */
};

struct pf_denylist {
	int set;           /* 0: the default list applies */
	size_t n;
	struct pf_cidr e[PF_DENY_MAX];
};

/* "a.b.c.d", "a.b.c.d/n", "v6", "v6/n" (no zone). PH_ERR_INVALID
 * otherwise (host bits set under the prefix are ignored). */
int pf_cidr_parse(const char *s, struct pf_cidr *out);
/* Add one entry (makes the list explicit). PH_ERR_TOOBIG past
 * PF_DENY_MAX. */
int pf_deny_add(struct pf_denylist *d, const char *s);
/* Fill d with the default list. */
void pf_deny_default(struct pf_denylist *d);
/* 1 when sa (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as
 * its IPv4 address) is in d (or in the default list when d is not set),
 * 0 otherwise. */
int pf_deny_match(const struct pf_denylist *d, const struct sockaddr *sa);

#endif
