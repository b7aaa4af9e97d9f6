/* strmap: a string-keyed hash map of borrowed pointers, for the gateway's
 * lookups by instance id and session id (thousands of entries). */
#ifndef PORTHOLE_STRMAP_H
#define PORTHOLE_STRMAP_H

#include <stddef.h>

struct strmap;

int strmap_new(struct strmap **out);
void strmap_free(struct strmap *m);
/* Insert or replace; the key is copied. Returns the previous value via
 * *old (NULL if none) when old is not NULL. */
int strmap_put(struct strmap *m, const char *key, void *value, void **old);
void *strmap_get(const struct strmap *m, const char *key);
/* Remove key if it maps to value (NULL value: whatever it maps to). */
void strmap_del(struct strmap *m, const char *key, const void *value);
size_t strmap_count(const struct strmap *m);
/* Call fn for each entry; fn must not modify the map. */
void strmap_foreach(const struct strmap *m,
    void (*fn)(void *arg, const char *key, void *value), void *arg);
/* Collect up to max values into out (a stable snapshot to iterate while
 * modifying the map). Returns how many were written. */
size_t strmap_values(const struct strmap *m, void **out, size_t max);

#endif
