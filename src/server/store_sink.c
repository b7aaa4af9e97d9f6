/* store_sink: the sink's delivery queue in the store's database. Rows are
 * keyed by (session, local path); due order is next_ms, then queued_ms,
 * so a file that keeps failing does not hold back the others. */
#include "server/store_sink.h"

#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "common/err.h"
#include "server/store_internal.h"

#define SINK_COLS \
	"session_id, path, bucket, object_key, sse, kms_key_id, url, " \
	"queued_ms, next_ms, attempts, state, done_ms"
#define SINK_SESSION_ROWS_MAX 16

static void
sink_row_read(sqlite3_stmt *s, struct sink_row *r)
{
	memset(r, 0, sizeof(*r));
	st_col(s, 0, r->session_id, sizeof(r->session_id));
	st_col(s, 1, r->path, sizeof(r->path));
	st_col(s, 2, r->bucket, sizeof(r->bucket));
	st_col(s, 3, r->object_key, sizeof(r->object_key));
	r->sse = sqlite3_column_int(s, 4);
	st_col(s, 5, r->kms_key_id, sizeof(r->kms_key_id));
	st_col(s, 6, r->url, sizeof(r->url));
	r->queued_ms = sqlite3_column_int64(s, 7);
	r->next_ms = sqlite3_column_int64(s, 8);
	r->attempts = sqlite3_column_int(s, 9);
	r->state = sqlite3_column_int(s, 10);
	r->done_ms = sqlite3_column_int64(s, 11);
}

int
store_sink_add(struct store *st, const struct sink_row *rows, size_t n)
{
	sqlite3_stmt *s = NULL;
	size_t i;
	int rc;

	if (rows == NULL || n == 0)
		return PH_ERR_INVALID;
	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_prep(st, "INSERT INTO sink_queue (" SINK_COLS ") "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
	    "ON CONFLICT (session_id, path) DO UPDATE SET "
	    "bucket = excluded.bucket, object_key = excluded.object_key, "
	    "sse = excluded.sse, kms_key_id = excluded.kms_key_id, "
	    "url = excluded.url, queued_ms = excluded.queued_ms, "
	    "next_ms = excluded.next_ms, attempts = excluded.attempts, "
	    "state = excluded.state, done_ms = excluded.done_ms", &s)) != 0)
		goto fail;
	for (i = 0; i < n; i++) {
		const struct sink_row *r = &rows[i];

		sqlite3_reset(s);
		st_text(s, 1, r->session_id);
		st_text(s, 2, r->path);
		st_text(s, 3, r->bucket);
		st_text(s, 4, r->object_key);
		sqlite3_bind_int(s, 5, r->sse);
		st_text(s, 6, r->kms_key_id);
		st_text(s, 7, r->url);
		sqlite3_bind_int64(s, 8, r->queued_ms);
		sqlite3_bind_int64(s, 9, r->next_ms);
		sqlite3_bind_int(s, 10, r->attempts);
		sqlite3_bind_int(s, 11, r->state);
		sqlite3_bind_int64(s, 12, r->done_ms);
		if ((rc = st_step_done(st, s, "sink_add")) != 0)
			goto fail;
	}
	sqlite3_finalize(s);
	s = NULL;
	if ((rc = st_commit(st)) != 0)
		goto fail;
	return 0;
fail:
	sqlite3_finalize(s);
	st_rollback(st);
	return rc;
}

int
store_sink_next(struct store *st, int64_t now_ms, struct sink_row *out,
    int64_t *next_due_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (next_due_ms != NULL)
		*next_due_ms = 0;
	if ((rc = st_prep(st, "SELECT " SINK_COLS " FROM sink_queue "
	    "WHERE state = 0 ORDER BY next_ms, queued_ms, session_id, path "
	    "LIMIT 1", &s)) != 0)
		return rc;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		sink_row_read(s, out);
		if (next_due_ms != NULL)
			*next_due_ms = out->next_ms > 0 ? out->next_ms : 1;
		rc = out->next_ms <= now_ms ? 0 : PH_ERR_NOTFOUND;
	} else if (rc == SQLITE_DONE) {
		rc = PH_ERR_NOTFOUND;
	} else {
		rc = PH_ERR_IO;
	}
	sqlite3_finalize(s);
	return rc;
}

int
store_sink_finish(struct store *st, const char *session_id, const char *path,
    int state, int64_t now_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "UPDATE sink_queue SET state = ?3, "
	    "done_ms = ?4 WHERE session_id = ?1 AND path = ?2", &s)) != 0)
		return rc;
	st_text(s, 1, session_id);
	st_text(s, 2, path);
	sqlite3_bind_int(s, 3, state);
	sqlite3_bind_int64(s, 4, now_ms);
	rc = st_step_done(st, s, "sink_finish");
	sqlite3_finalize(s);
	return rc;
}

int
store_sink_retry_at(struct store *st, const char *session_id,
    const char *path, int64_t next_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "UPDATE sink_queue SET next_ms = ?3, "
	    "attempts = attempts + 1 WHERE session_id = ?1 AND path = ?2",
	    &s)) != 0)
		return rc;
	st_text(s, 1, session_id);
	st_text(s, 2, path);
	sqlite3_bind_int64(s, 3, next_ms);
	rc = st_step_done(st, s, "sink_retry");
	sqlite3_finalize(s);
	return rc;
}

int
store_sink_wake(struct store *st, const char *bucket, int64_t now_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "UPDATE sink_queue SET next_ms = ?2 "
	    "WHERE state = 0 AND bucket = ?1 AND next_ms > ?2", &s)) != 0)
		return rc;
	st_text(s, 1, bucket);
	sqlite3_bind_int64(s, 2, now_ms);
	rc = st_step_done(st, s, "sink_wake");
	sqlite3_finalize(s);
	return rc;
}

int
store_sink_stats(struct store *st, size_t *depth, int64_t *oldest_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*depth = 0;
	*oldest_ms = 0;
	if ((rc = st_prep(st, "SELECT count(*), min(queued_ms) FROM "
	    "sink_queue WHERE state = 0", &s)) != 0)
		return rc;
	if (sqlite3_step(s) == SQLITE_ROW) {
		*depth = (size_t)sqlite3_column_int64(s, 0);
		*oldest_ms = sqlite3_column_int64(s, 1);  /* NULL reads 0 */
		rc = 0;
	} else {
		rc = PH_ERR_IO;
	}
	sqlite3_finalize(s);
	return rc;
}

int
store_sink_foreach_session(struct store *st, const char *session_id,
    void (*fn)(const struct sink_row *r, void *arg), void *arg)
{
	struct sink_row r;
	sqlite3_stmt *s = NULL;
	int rc, n = 0;

	if ((rc = st_prep(st, "SELECT " SINK_COLS " FROM sink_queue "
	    "WHERE session_id = ?1 ORDER BY path", &s)) != 0)
		return rc;
	st_text(s, 1, session_id);
	while (n < SINK_SESSION_ROWS_MAX && (rc = sqlite3_step(s)) ==
	    SQLITE_ROW) {
		sink_row_read(s, &r);
		fn(&r, arg);
		n++;
	}
	sqlite3_finalize(s);
	if (n == 0)
		return rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
	return 0;
}
