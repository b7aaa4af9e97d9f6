/* admit: per-source counts live in an open-addressing table (linear
 * probing, backward-shift deletion, at most half full). Sources with no
 * connection counted are removed, so the table holds at most as many
 * entries as there are unauthenticated connections. The hash is seeded at
 * random: peers choose their addresses and must not choose collisions. */
#include "common/admit.h"

#include "common/err.h"

#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define ADMIT_MIN_SLOTS 64

struct admit_slot {
	struct admit_key key;
	unsigned count;         /* 0: the slot is empty */
};

struct admit {
	struct admit_slot *slots;
	size_t nslots;          /* a power of two */
	size_t nused;
	unsigned total;
	unsigned max_total;
	unsigned max_per_source;
	uint64_t seed;
	uint64_t refused_total;
	uint64_t refused_source;
	int orphaned;           /* admit_free was called */
};

int
admit_new(struct admit **out, unsigned max_total, unsigned max_per_source)
{
	struct admit *a;

	*out = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return PH_ERR_NOMEM;
	a->nslots = ADMIT_MIN_SLOTS;
	if ((a->slots = calloc(a->nslots, sizeof(*a->slots))) == NULL) {
		free(a);
		return PH_ERR_NOMEM;
	}
	if (RAND_bytes((unsigned char *)&a->seed, sizeof(a->seed)) != 1)
		a->seed = (uint64_t)(uintptr_t)a;
	a->max_total = max_total;
	a->max_per_source = max_per_source;
	*out = a;
	return 0;
}

static void
admit_destroy(struct admit *a)
{
	free(a->slots);
	free(a);
}

void
admit_free(struct admit *a)
{
	if (a == NULL)
		return;
	if (a->total == 0) {
		admit_destroy(a);
		return;
	}
	a->orphaned = 1;
}

void
admit_set_limits(struct admit *a, unsigned max_total,
    unsigned max_per_source)
{
	if (a == NULL)
		return;
	a->max_total = max_total;
	a->max_per_source = max_per_source;
}

int
admit_key_from_addr(struct admit_key *k, const struct sockaddr *sa)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };
	const struct sockaddr_in6 *s6;
	const struct sockaddr_in *s4;

	memset(k, 0, sizeof(*k));
	if (sa == NULL)
		return PH_ERR_INVALID;
	if (sa->sa_family == AF_INET) {
		s4 = (const struct sockaddr_in *)(const void *)sa;
		k->b[0] = 4;
		memcpy(k->b + 1, &s4->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return PH_ERR_INVALID;
	s6 = (const struct sockaddr_in6 *)(const void *)sa;
	if (memcmp(s6->sin6_addr.s6_addr, mapped, sizeof(mapped)) == 0) {
		k->b[0] = 4;
		memcpy(k->b + 1, s6->sin6_addr.s6_addr + 12, 4);
		return 0;
	}
	/* The /64 prefix: the rest of the address is the host's to pick. */
	k->b[0] = 6;
	memcpy(k->b + 1, s6->sin6_addr.s6_addr, 8);
	return 0;
}

static size_t
admit_hash(const struct admit *a, const struct admit_key *k)
{
	uint64_t h = 1469598103934665603ULL ^ a->seed;  /* FNV-1a, seeded */
	size_t i;

	for (i = 0; i < sizeof(k->b); i++) {
		h ^= k->b[i];
		h *= 1099511628211ULL;
	}
	h ^= h >> 29;
	return (size_t)h;
}

/* The slot holding k, or the empty slot where it would go. */
static size_t
admit_find(const struct admit *a, const struct admit_key *k)
{
	size_t mask = a->nslots - 1, i = admit_hash(a, k) & mask;

	while (a->slots[i].count != 0 &&
	    memcmp(&a->slots[i].key, k, sizeof(*k)) != 0)
		i = (i + 1) & mask;
	return i;
}

static int
admit_grow(struct admit *a)
{
	struct admit_slot *old = a->slots, *ns;
	size_t oldn = a->nslots, i, j;

	if ((ns = calloc(oldn * 2, sizeof(*ns))) == NULL)
		return PH_ERR_NOMEM;
	a->slots = ns;
	a->nslots = oldn * 2;
	for (i = 0; i < oldn; i++) {
		if (old[i].count == 0)
			continue;
		j = admit_find(a, &old[i].key);
		a->slots[j] = old[i];
	}
	free(old);
	return 0;
}

int
admit_take(struct admit *a, const struct admit_key *k)
{
	size_t i;

	if (a == NULL || k == NULL || a->orphaned)
		return PH_ERR_STATE;
	if (a->max_total != 0 && a->total >= a->max_total) {
		a->refused_total++;
		return PH_ERR_AGAIN;
	}
	i = admit_find(a, k);
	if (a->slots[i].count == 0) {
		/* A new source: keep the table at most half full. */
		if ((a->nused + 1) * 2 > a->nslots) {
			if (admit_grow(a) != 0)
				return PH_ERR_NOMEM;
			i = admit_find(a, k);
		}
		a->slots[i].key = *k;
		a->nused++;
	} else if (a->max_per_source != 0 &&
	    a->slots[i].count >= a->max_per_source) {
		a->refused_source++;
		return PH_ERR_DENIED;
	}
	a->slots[i].count++;
	a->total++;
	return 0;
}

/* Backward-shift deletion: move later members of the probe run into the
 * hole so that every lookup still finds them. */
static void
admit_remove_slot(struct admit *a, size_t hole)
{
	size_t mask = a->nslots - 1, i = hole, home;

	for (;;) {
		i = (i + 1) & mask;
		if (a->slots[i].count == 0)
			break;
		home = admit_hash(a, &a->slots[i].key) & mask;
		/* Leave it if its home lies cyclically in (hole, i]. */
		if (hole <= i ? (home > hole && home <= i) :
		    (home > hole || home <= i))
			continue;
		a->slots[hole] = a->slots[i];
		hole = i;
	}
	memset(&a->slots[hole], 0, sizeof(a->slots[hole]));
	a->nused--;
}

void
admit_release(struct admit *a, const struct admit_key *k)
{
	size_t i;

	if (a == NULL || k == NULL || a->total == 0)
		return;
	i = admit_find(a, k);
	if (a->slots[i].count == 0)
		return;   /* not counted: a caller bug, but harmless */
	a->total--;
	if (--a->slots[i].count == 0)
		admit_remove_slot(a, i);
	if (a->orphaned && a->total == 0)
		admit_destroy(a);
}

unsigned
admit_count(const struct admit *a)
{
	return a != NULL ? a->total : 0;
}

unsigned
admit_count_source(const struct admit *a, const struct admit_key *k)
{
	if (a == NULL || k == NULL)
		return 0;
	return a->slots[admit_find(a, k)].count;
}

void
admit_refused(const struct admit *a, uint64_t *total, uint64_t *per_source)
{
	if (total != NULL)
		*total = a != NULL ? a->refused_total : 0;
	if (per_source != NULL)
		*per_source = a != NULL ? a->refused_source : 0;
}
