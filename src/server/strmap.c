#include "server/strmap.h"
#include "common/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct strmap_entry {
	struct strmap_entry *next;
	void *value;
	char key[];
};

struct strmap {
	struct strmap_entry **buckets;
	size_t nbuckets;   /* a power of two */
	size_t count;
};

static uint64_t
strmap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

int
strmap_new(struct strmap **out)
{
	struct strmap *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return PH_ERR_NOMEM;
	m->nbuckets = 64;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	if (m->buckets == NULL) {
		free(m);
		return PH_ERR_NOMEM;
	}
	*out = m;
	return 0;
}

void
strmap_free(struct strmap *m)
{
	struct strmap_entry *e, *next;
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nbuckets; i++)
		for (e = m->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(m->buckets);
	free(m);
}

static void
strmap_grow(struct strmap *m)
{
	struct strmap_entry **nb, *e, *next;
	size_t n = m->nbuckets * 2, i;

	nb = calloc(n, sizeof(*nb));
	if (nb == NULL)
		return; /* keep the old table: slower, still correct */
	for (i = 0; i < m->nbuckets; i++)
		for (e = m->buckets[i]; e != NULL; e = next) {
			size_t b = strmap_hash(e->key) & (n - 1);

			next = e->next;
			e->next = nb[b];
			nb[b] = e;
		}
	free(m->buckets);
	m->buckets = nb;
	m->nbuckets = n;
}

int
strmap_put(struct strmap *m, const char *key, void *value, void **old)
{
	size_t b = strmap_hash(key) & (m->nbuckets - 1), klen;
	struct strmap_entry *e;

	if (old)
		*old = NULL;
	for (e = m->buckets[b]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0) {
			if (old)
				*old = e->value;
			e->value = value;
			return 0;
		}
	klen = strlen(key);
	e = malloc(sizeof(*e) + klen + 1);
	if (e == NULL)
		return PH_ERR_NOMEM;
	memcpy(e->key, key, klen + 1);
	e->value = value;
	e->next = m->buckets[b];
	m->buckets[b] = e;
	if (++m->count > m->nbuckets)
		strmap_grow(m);
	return 0;
}

void *
strmap_get(const struct strmap *m, const char *key)
{
	size_t b = strmap_hash(key) & (m->nbuckets - 1);
	struct strmap_entry *e;

	for (e = m->buckets[b]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e->value;
	return NULL;
}

void
strmap_del(struct strmap *m, const char *key, const void *value)
{
	size_t b = strmap_hash(key) & (m->nbuckets - 1);
	struct strmap_entry **pp, *e;

	for (pp = &m->buckets[b]; (e = *pp) != NULL; pp = &e->next)
		if (strcmp(e->key, key) == 0) {
			if (value != NULL && e->value != value)
				return;
			*pp = e->next;
			free(e);
			m->count--;
			return;
		}
}

size_t
strmap_count(const struct strmap *m)
{
	return m->count;
}

void
strmap_foreach(const struct strmap *m,
    void (*fn)(void *arg, const char *key, void *value), void *arg)
{
	struct strmap_entry *e;
	size_t i;

	for (i = 0; i < m->nbuckets; i++)
		for (e = m->buckets[i]; e != NULL; e = e->next)
			fn(arg, e->key, e->value);
}

size_t
strmap_values(const struct strmap *m, void **out, size_t max)
{
	struct strmap_entry *e;
	size_t i, n = 0;

	for (i = 0; i < m->nbuckets && n < max; i++)
		for (e = m->buckets[i]; e != NULL && n < max; e = e->next)
			out[n++] = e->value;
	return n;
}
