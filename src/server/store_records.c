/* store_records: the session_records table (see store_records.h). */
#include "server/store_records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "server/store_internal.h"

#define REC_COLUMNS "session_id, s3_bucket, s3_prefix, s3_encrypt, " \
	"kms_key_id, complete, length, completed_ms, rendered"

int
store_record_create(struct store *st, const char *session_id,
    const struct record_prefs *prefs, int64_t now_ms)
{
	static const struct record_prefs none;
	sqlite3_stmt *s = NULL;
	int rc;

	if (session_id == NULL || session_id[0] == '\0' ||
	    strlen(session_id) >= SESSION_ID_MAX)
		return PH_ERR_INVALID;
	if (prefs == NULL)
		prefs = &none;
	if ((rc = st_prep(st, "INSERT INTO session_records (session_id, "
	    "s3_bucket, s3_prefix, s3_encrypt, kms_key_id, created_ms) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &s)) != 0)
		return rc;
	st_text(s, 1, session_id);
	st_text_bounded(s, 2, prefs->bucket, sizeof(prefs->bucket) - 1);
	st_text_bounded(s, 3, prefs->key_prefix,
	    sizeof(prefs->key_prefix) - 1);
	sqlite3_bind_int(s, 4, prefs->encrypt != 0);
	st_text_bounded(s, 5, prefs->kms_key_id,
	    sizeof(prefs->kms_key_id) - 1);
	sqlite3_bind_int64(s, 6, now_ms);
	rc = st_step_done(st, s, "record_create");
	sqlite3_finalize(s);
	return rc;
}

static void
rec_row(sqlite3_stmt *s, struct record_row *out)
{
	memset(out, 0, sizeof(*out));
	st_col(s, 0, out->session_id, sizeof(out->session_id));
	st_col(s, 1, out->prefs.bucket, sizeof(out->prefs.bucket));
	st_col(s, 2, out->prefs.key_prefix, sizeof(out->prefs.key_prefix));
	out->prefs.encrypt = sqlite3_column_int(s, 3) != 0;
	st_col(s, 4, out->prefs.kms_key_id, sizeof(out->prefs.kms_key_id));
	out->complete = sqlite3_column_int(s, 5) != 0;
	out->length = sqlite3_column_int64(s, 6);
	out->completed_ms = sqlite3_column_int64(s, 7);
	out->rendered = sqlite3_column_int(s, 8) != 0;
}

int
store_record_get(struct store *st, const char *session_id,
    struct record_row *out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT " REC_COLUMNS " FROM session_records "
	    "WHERE session_id = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, session_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		rec_row(s, out);
		rc = 0;
	} else
		rc = rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

int
store_record_complete(struct store *st, const char *session_id,
    int64_t length, int64_t now_ms)
{
	struct record_row r;
	sqlite3_stmt *s = NULL;
	int rc;

	if (length < 0)
		return PH_ERR_INVALID;
	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = store_record_get(st, session_id, &r)) != 0)
		goto fail;
	if (r.complete) {
		rc = r.length == length ? 0 : PH_ERR_STATE;
		goto fail;
	}
	if ((rc = st_prep(st, "UPDATE session_records SET complete = 1, "
	    "length = ?2, completed_ms = ?3 WHERE session_id = ?1",
	    &s)) != 0)
		goto fail;
	st_text(s, 1, session_id);
	sqlite3_bind_int64(s, 2, length);
	sqlite3_bind_int64(s, 3, now_ms);
	rc = st_step_done(st, s, "record_complete");
	sqlite3_finalize(s);
	if (rc != 0)
		goto fail;
	return st_commit(st);
fail:
	st_rollback(st);
	return rc;
}

int
store_record_set_rendered(struct store *st, const char *session_id)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "UPDATE session_records SET rendered = 1 "
	    "WHERE session_id = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, session_id);
	rc = st_step_done(st, s, "record_rendered");
	sqlite3_finalize(s);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = PH_ERR_NOTFOUND;
	return rc;
}

int
store_record_foreach_unrendered(struct store *st, int limit,
    int (*fn)(void *arg, const struct record_row *r), void *arg)
{
	struct record_row *rows = NULL;
	sqlite3_stmt *s = NULL;
	int n = 0, i, rc;

	if (limit <= 0)
		return 0;
	if ((rows = calloc((size_t)limit, sizeof(*rows))) == NULL)
		return PH_ERR_NOMEM;
	/* Collected first: fn may write to the store. */
	if ((rc = st_prep(st, "SELECT " REC_COLUMNS " FROM session_records "
	    "WHERE complete = 1 AND rendered = 0 ORDER BY completed_ms "
	    "LIMIT ?1", &s)) != 0)
		goto done;
	sqlite3_bind_int(s, 1, limit);
	while (n < limit && (rc = sqlite3_step(s)) == SQLITE_ROW)
		rec_row(s, &rows[n++]);
	rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : PH_ERR_IO;
	sqlite3_finalize(s);
	for (i = 0; rc == 0 && i < n; i++)
		if (fn(arg, &rows[i]) != 0)
			break;
done:
	free(rows);
	return rc;
}
