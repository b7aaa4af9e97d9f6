/* store_internal: what the store's modules (store.c, store_iam.c, ...)
 * share and nothing else includes: the handle and the SQL helpers. */
#ifndef PORTHOLE_STORE_INTERNAL_H
#define PORTHOLE_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "server/store.h"

struct store_journal;

struct store {
	sqlite3 *db;
	struct store_journal *journal;  /* changes not written yet */
	int64_t retry_at;               /* monotonic ms: next write attempt */
	int flushing;
	int deferring;                  /* warned of this outage */
	size_t lost;                    /* changes the journal had no room for */
	/* Bumped by every change that can alter an authorisation decision
	 * (IAM entities and policies, tags); caches compare it. */
	uint64_t authz_generation;
};

int64_t st_now_ms(void);
/* Prepare one constant statement; PH_ERR_IO (logged) on failure. */
int st_prep(struct store *st, const char *sql, sqlite3_stmt **out);
/* Bind a string (NULL binds NULL). */
int st_text(sqlite3_stmt *s, int i, const char *v);
/* Bind a string the peer reported, cut to max bytes. */
int st_text_bounded(sqlite3_stmt *s, int i, const char *v, size_t max);
/* Copy a text column ("" for NULL), cut to size. */
void st_col(sqlite3_stmt *s, int i, char *out, size_t size);
/* Step a statement that returns no rows: 0, PH_ERR_EXISTS (constraint) or
 * PH_ERR_IO (logged). */
int st_step_done(struct store *st, sqlite3_stmt *s, const char *op);
int st_exec(struct store *st, const char *sql);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK (a no-op outside a transaction). */
int st_begin(struct store *st);
int st_commit(struct store *st);
void st_rollback(struct store *st);
int st_random(void *p, size_t n);
/* n characters drawn uniformly from alphabet, then a NUL. */
int st_random_chars(char *out, size_t n, const char *alphabet);

#endif
