/* admit: the count of connections that have not authenticated yet, in
 * total and per source, and the decision whether one more may come in.
 * A source is an IPv4 address or an IPv6 /64 (one host is commonly given
 * a whole /64, so counting single IPv6 addresses would cap nothing).
 * No I/O and no clock: the listener asks, the connection gives back. */
#ifndef PORTHOLE_ADMIT_H
#define PORTHOLE_ADMIT_H

#include <stdint.h>

struct sockaddr;
struct admit;

/* The source a peer address counts against. */
struct admit_key {
	uint8_t b[17];         /* family tag + address or /64 prefix */
};

/* max_total and max_per_source of 0 mean no cap. */
int admit_new(struct admit **out, unsigned max_total,
    unsigned max_per_source);
/* Free now, or (if connections are still counted) when the last one is
 * released; a freed admit admits nothing more. */
void admit_free(struct admit *a);
void admit_set_limits(struct admit *a, unsigned max_total,
    unsigned max_per_source);
/* The key of an AF_INET/AF_INET6 address (IPv4-mapped IPv6 counts as
 * the IPv4 address). PH_ERR_INVALID for other families. */
int admit_key_from_addr(struct admit_key *k, const struct sockaddr *sa);
/* Count one more connection from k. 0: admitted (release it later);
 * PH_ERR_AGAIN: the total cap is full; PH_ERR_DENIED: k's cap is full;
 * PH_ERR_NOMEM. */
int admit_take(struct admit *a, const struct admit_key *k);
/* Give back what admit_take counted (the connection authenticated or is
 * gone). May free a (see admit_free). */
void admit_release(struct admit *a, const struct admit_key *k);
unsigned admit_count(const struct admit *a);
unsigned admit_count_source(const struct admit *a, const struct admit_key *k);
/* Connections refused since admit_new: by the total, by the source cap. */
void admit_refused(const struct admit *a, uint64_t *total,
    uint64_t *per_source);

#endif
