/* store_commands: the commands and command_invocations tables (see
 * store_commands.h). Queries collect their rows before calling back, so
 * a callback may write to the store. */
#include "server/store_commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "server/store_internal.h"

/* Rows one query hands back at most when no limit is given. */
#define CMD_QUERY_MAX 100000

#define CMD_COLUMNS "command_id, document_name, document_version, " \
	"comment, parameters_json, targets_json, instance_ids_json, " \
	"content_json, owner_arn, requested_ms, expires_ms, " \
	"timeout_seconds, max_concurrency, max_errors, status, " \
	"status_details, target_count, completed_count, error_count, " \
	"delivery_timed_out_count, output_s3_bucket, output_s3_prefix, " \
	"output_s3_region, service_role_arn, notification_json, " \
	"cloudwatch_json"

#define INV_COLUMNS "command_id, instance_id, instance_name, seq, " \
	"status, status_details, requested_ms, delivered_ms, started_ms, " \
	"ended_ms, response_code, stdout_text, stderr_text, stdout_url, " \
	"stderr_url, plugins_json"

void
command_rec_clear(struct command_rec *c)
{
	if (c == NULL)
		return;
	free(c->document_name);
	free(c->comment);
	free(c->parameters_json);
	free(c->targets_json);
	free(c->instance_ids_json);
	free(c->content_json);
	free(c->owner_arn);
	free(c->output_s3_bucket);
	free(c->output_s3_prefix);
	free(c->output_s3_region);
	free(c->service_role_arn);
	free(c->notification_json);
	free(c->cloudwatch_json);
	memset(c, 0, sizeof(*c));
}

void
invocation_rec_clear(struct invocation_rec *v)
{
	if (v == NULL)
		return;
	free(v->instance_name);
	free(v->stdout_text);
	free(v->stderr_text);
	free(v->stdout_url);
	free(v->stderr_url);
	free(v->plugins_json);
	memset(v, 0, sizeof(*v));
}

/* A text column as a new string; NULL stays NULL. -1 if out of memory. */
static int
col_dup(sqlite3_stmt *s, int i, char **out)
{
	const char *v = (const char *)sqlite3_column_text(s, i);

	*out = NULL;
	if (v == NULL)
		return 0;
	if ((*out = strdup(v)) == NULL)
		return -1;
	return 0;
}

static int
cmd_row(sqlite3_stmt *s, struct command_rec *c)
{
	int bad = 0;

	memset(c, 0, sizeof(*c));
	st_col(s, 0, c->command_id, sizeof(c->command_id));
	bad |= col_dup(s, 1, &c->document_name);
	st_col(s, 2, c->document_version, sizeof(c->document_version));
	bad |= col_dup(s, 3, &c->comment);
	bad |= col_dup(s, 4, &c->parameters_json);
	bad |= col_dup(s, 5, &c->targets_json);
	bad |= col_dup(s, 6, &c->instance_ids_json);
	bad |= col_dup(s, 7, &c->content_json);
	bad |= col_dup(s, 8, &c->owner_arn);
	c->requested_ms = sqlite3_column_int64(s, 9);
	c->expires_ms = sqlite3_column_int64(s, 10);
	c->timeout_seconds = sqlite3_column_int(s, 11);
	st_col(s, 12, c->max_concurrency, sizeof(c->max_concurrency));
	st_col(s, 13, c->max_errors, sizeof(c->max_errors));
	st_col(s, 14, c->status, sizeof(c->status));
	st_col(s, 15, c->status_details, sizeof(c->status_details));
	c->target_count = sqlite3_column_int(s, 16);
	c->completed_count = sqlite3_column_int(s, 17);
	c->error_count = sqlite3_column_int(s, 18);
	c->delivery_timed_out_count = sqlite3_column_int(s, 19);
	bad |= col_dup(s, 20, &c->output_s3_bucket);
	bad |= col_dup(s, 21, &c->output_s3_prefix);
	bad |= col_dup(s, 22, &c->output_s3_region);
	bad |= col_dup(s, 23, &c->service_role_arn);
	bad |= col_dup(s, 24, &c->notification_json);
	bad |= col_dup(s, 25, &c->cloudwatch_json);
	if (bad) {
		command_rec_clear(c);
		return PH_ERR_NOMEM;
	}
	return 0;
}

static int
inv_row(sqlite3_stmt *s, struct invocation_rec *v)
{
	int bad = 0;

	memset(v, 0, sizeof(*v));
	st_col(s, 0, v->command_id, sizeof(v->command_id));
	st_col(s, 1, v->instance_id, sizeof(v->instance_id));
	bad |= col_dup(s, 2, &v->instance_name);
	v->seq = sqlite3_column_int(s, 3);
	st_col(s, 4, v->status, sizeof(v->status));
	st_col(s, 5, v->status_details, sizeof(v->status_details));
	v->requested_ms = sqlite3_column_int64(s, 6);
	v->delivered_ms = sqlite3_column_int64(s, 7);
	v->started_ms = sqlite3_column_int64(s, 8);
	v->ended_ms = sqlite3_column_int64(s, 9);
	v->response_code = sqlite3_column_int(s, 10);
	bad |= col_dup(s, 11, &v->stdout_text);
	bad |= col_dup(s, 12, &v->stderr_text);
	bad |= col_dup(s, 13, &v->stdout_url);
	bad |= col_dup(s, 14, &v->stderr_url);
	bad |= col_dup(s, 15, &v->plugins_json);
	if (bad) {
		invocation_rec_clear(v);
		return PH_ERR_NOMEM;
	}
	return 0;
}

/* Bind a JSON text column: NULL becomes dflt. */
static void
bind_json(sqlite3_stmt *s, int i, const char *v, const char *dflt)
{
	st_text(s, i, v != NULL ? v : dflt);
}

static int
inv_insert(struct store *st, const struct invocation_rec *v)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (v->command_id[0] == '\0' || v->instance_id[0] == '\0')
		return PH_ERR_INVALID;
	if ((rc = st_prep(st, "INSERT INTO command_invocations (command_id, "
	    "instance_id, instance_name, seq, status, status_details, "
	    "requested_ms, delivered_ms, started_ms, ended_ms, "
	    "response_code, stdout_text, stderr_text, stdout_url, "
	    "stderr_url, plugins_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
	    "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)", &s)) != 0)
		return rc;
	st_text(s, 1, v->command_id);
	st_text(s, 2, v->instance_id);
	st_text_bounded(s, 3, v->instance_name != NULL ? v->instance_name :
	    "", 255);
	sqlite3_bind_int(s, 4, v->seq);
	st_text(s, 5, v->status[0] != '\0' ? v->status : "Pending");
	st_text(s, 6, v->status_details[0] != '\0' ? v->status_details :
	    (v->status[0] != '\0' ? v->status : "Pending"));
	sqlite3_bind_int64(s, 7, v->requested_ms);
	sqlite3_bind_int64(s, 8, v->delivered_ms);
	sqlite3_bind_int64(s, 9, v->started_ms);
	sqlite3_bind_int64(s, 10, v->ended_ms);
	sqlite3_bind_int(s, 11, v->response_code);
	st_text(s, 12, v->stdout_text != NULL ? v->stdout_text : "");
	st_text(s, 13, v->stderr_text != NULL ? v->stderr_text : "");
	st_text(s, 14, v->stdout_url);
	st_text(s, 15, v->stderr_url);
	bind_json(s, 16, v->plugins_json, "[]");
	rc = st_step_done(st, s, "invocation_create");
	sqlite3_finalize(s);
	return rc;
}

int
store_command_create(struct store *st, const struct command_rec *c,
    const struct invocation_rec *inv, size_t n)
{
	sqlite3_stmt *s = NULL;
	size_t i;
	int rc;

	if (c == NULL || c->command_id[0] == '\0' ||
	    c->document_name == NULL || (n > 0 && inv == NULL))
		return PH_ERR_INVALID;
	for (i = 0; i < n; i++)
		if (strcmp(inv[i].command_id, c->command_id) != 0)
			return PH_ERR_INVALID;
	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_prep(st, "INSERT INTO commands (" CMD_COLUMNS ") VALUES "
	    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
	    "?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)",
	    &s)) != 0)
		goto fail;
	st_text(s, 1, c->command_id);
	st_text(s, 2, c->document_name);
	st_text(s, 3, c->document_version);
	st_text(s, 4, c->comment);
	bind_json(s, 5, c->parameters_json, "{}");
	bind_json(s, 6, c->targets_json, "[]");
	bind_json(s, 7, c->instance_ids_json, "[]");
	bind_json(s, 8, c->content_json, "{}");
	st_text(s, 9, c->owner_arn != NULL ? c->owner_arn : "");
	sqlite3_bind_int64(s, 10, c->requested_ms);
	sqlite3_bind_int64(s, 11, c->expires_ms);
	sqlite3_bind_int(s, 12, c->timeout_seconds);
	st_text(s, 13, c->max_concurrency[0] != '\0' ? c->max_concurrency :
	    "50");
	st_text(s, 14, c->max_errors[0] != '\0' ? c->max_errors : "0");
	st_text(s, 15, c->status[0] != '\0' ? c->status : "Pending");
	st_text(s, 16, c->status_details[0] != '\0' ? c->status_details :
	    (c->status[0] != '\0' ? c->status : "Pending"));
	sqlite3_bind_int(s, 17, c->target_count);
	sqlite3_bind_int(s, 18, c->completed_count);
	sqlite3_bind_int(s, 19, c->error_count);
	sqlite3_bind_int(s, 20, c->delivery_timed_out_count);
	st_text(s, 21, c->output_s3_bucket);
	st_text(s, 22, c->output_s3_prefix);
	st_text(s, 23, c->output_s3_region);
	st_text(s, 24, c->service_role_arn);
	st_text(s, 25, c->notification_json);
	st_text(s, 26, c->cloudwatch_json);
	rc = st_step_done(st, s, "command_create");
	sqlite3_finalize(s);
	if (rc != 0)
		goto fail;
	for (i = 0; i < n; i++)
		if ((rc = inv_insert(st, &inv[i])) != 0)
			goto fail;
	return st_commit(st);
fail:
	st_rollback(st);
	return rc;
}

int
store_command_get(struct store *st, const char *command_id,
    struct command_rec *out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (command_id == NULL)
		return PH_ERR_NOTFOUND;
	if ((rc = st_prep(st, "SELECT " CMD_COLUMNS " FROM commands "
	    "WHERE command_id = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, command_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		rc = cmd_row(s, out);
	else
		rc = rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

int
store_command_set_status(struct store *st, const struct command_rec *c)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "UPDATE commands SET status = ?2, "
	    "status_details = ?3, target_count = ?4, completed_count = ?5, "
	    "error_count = ?6, delivery_timed_out_count = ?7 "
	    "WHERE command_id = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, c->command_id);
	st_text(s, 2, c->status);
	st_text(s, 3, c->status_details);
	sqlite3_bind_int(s, 4, c->target_count);
	sqlite3_bind_int(s, 5, c->completed_count);
	sqlite3_bind_int(s, 6, c->error_count);
	sqlite3_bind_int(s, 7, c->delivery_timed_out_count);
	rc = st_step_done(st, s, "command_set_status");
	sqlite3_finalize(s);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = PH_ERR_NOTFOUND;
	return rc;
}

int
store_command_set_alarm(struct store *st, const char *command_id,
    const char *alarm_json)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "UPDATE commands SET alarm_json = ?2 "
	    "WHERE command_id = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, command_id);
	st_text(s, 2, alarm_json);
	rc = st_step_done(st, s, "command_set_alarm");
	sqlite3_finalize(s);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = PH_ERR_NOTFOUND;
	return rc;
}

int
store_command_get_alarm(struct store *st, const char *command_id,
    char **out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*out = NULL;
	if ((rc = st_prep(st, "SELECT alarm_json FROM commands "
	    "WHERE command_id = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, command_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		rc = col_dup(s, 0, out) == 0 ? 0 : PH_ERR_NOMEM;
	else
		rc = rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

/* ---- collected rows ---------------------------------------------------- */

struct cmd_rows {
	struct command_rec *v;
	size_t n, cap;
};

static int
cmd_rows_collect(sqlite3_stmt *s, struct cmd_rows *r)
{
	struct command_rec *nv;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (r->n >= CMD_QUERY_MAX)
			break;
		if (r->n == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 16;
			if ((nv = realloc(r->v, r->cap * sizeof(*nv))) == NULL)
				return PH_ERR_NOMEM;
			r->v = nv;
		}
		if ((rc = cmd_row(s, &r->v[r->n])) != 0)
			return rc;
		r->n++;
	}
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : PH_ERR_IO;
}

static int
cmd_rows_deliver(struct cmd_rows *r,
    int (*fn)(void *arg, const struct command_rec *c), void *arg)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (fn(arg, &r->v[i]) != 0)
			break;
	return 0;
}

static void
cmd_rows_free(struct cmd_rows *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		command_rec_clear(&r->v[i]);
	free(r->v);
}

struct inv_rows {
	struct invocation_rec *v;
	size_t n, cap;
};

static int
inv_rows_collect(sqlite3_stmt *s, struct inv_rows *r)
{
	struct invocation_rec *nv;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (r->n >= CMD_QUERY_MAX)
			break;
		if (r->n == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 16;
			if ((nv = realloc(r->v, r->cap * sizeof(*nv))) == NULL)
				return PH_ERR_NOMEM;
			r->v = nv;
		}
		if ((rc = inv_row(s, &r->v[r->n])) != 0)
			return rc;
		r->n++;
	}
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : PH_ERR_IO;
}

static void
inv_rows_free(struct inv_rows *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		invocation_rec_clear(&r->v[i]);
	free(r->v);
}

static int64_t
query_limit(size_t limit)
{
	return limit == 0 || limit > CMD_QUERY_MAX ? CMD_QUERY_MAX :
	    (int64_t)limit;
}

int
store_command_query(struct store *st, const struct command_query *q,
    int (*fn)(void *arg, const struct command_rec *c), void *arg)
{
	struct cmd_rows r = { NULL, 0, 0 };
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT " CMD_COLUMNS " FROM commands c "
	    "WHERE (?1 IS NULL OR c.command_id = ?1) "
	    "AND (?2 IS NULL OR EXISTS (SELECT 1 FROM command_invocations i "
	    "WHERE i.command_id = c.command_id AND i.instance_id = ?2)) "
	    "AND (?3 IS NULL OR c.status = ?3) "
	    "AND (?4 IS NULL OR c.document_name = ?4) "
	    "AND (?5 = 0 OR c.requested_ms >= ?5) "
	    "AND (?6 = 0 OR c.requested_ms < ?6) "
	    "ORDER BY c.requested_ms DESC, c.command_id DESC "
	    "LIMIT ?7 OFFSET ?8", &s)) != 0)
		return rc;
	st_text(s, 1, q->command_id);
	st_text(s, 2, q->instance_id);
	st_text(s, 3, q->status);
	st_text(s, 4, q->document_name);
	sqlite3_bind_int64(s, 5, q->after_ms);
	sqlite3_bind_int64(s, 6, q->before_ms);
	sqlite3_bind_int64(s, 7, query_limit(q->limit));
	sqlite3_bind_int64(s, 8, (int64_t)q->offset);
	rc = cmd_rows_collect(s, &r);
	sqlite3_finalize(s);
	if (rc == 0)
		rc = cmd_rows_deliver(&r, fn, arg);
	cmd_rows_free(&r);
	return rc;
}

int
store_invocation_get(struct store *st, const char *command_id,
    const char *instance_id, struct invocation_rec *out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (command_id == NULL || instance_id == NULL)
		return PH_ERR_NOTFOUND;
	if ((rc = st_prep(st, "SELECT " INV_COLUMNS " FROM "
	    "command_invocations WHERE command_id = ?1 AND instance_id = ?2",
	    &s)) != 0)
		return rc;
	st_text(s, 1, command_id);
	st_text(s, 2, instance_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		rc = inv_row(s, out);
	else
		rc = rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

int
store_invocation_update(struct store *st, const struct invocation_rec *v)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "UPDATE command_invocations SET status = ?3, "
	    "status_details = ?4, delivered_ms = ?5, started_ms = ?6, "
	    "ended_ms = ?7, response_code = ?8, stdout_text = ?9, "
	    "stderr_text = ?10, stdout_url = ?11, stderr_url = ?12, "
	    "plugins_json = ?13 WHERE command_id = ?1 AND instance_id = ?2",
	    &s)) != 0)
		return rc;
	st_text(s, 1, v->command_id);
	st_text(s, 2, v->instance_id);
	st_text(s, 3, v->status);
	st_text(s, 4, v->status_details);
	sqlite3_bind_int64(s, 5, v->delivered_ms);
	sqlite3_bind_int64(s, 6, v->started_ms);
	sqlite3_bind_int64(s, 7, v->ended_ms);
	sqlite3_bind_int(s, 8, v->response_code);
	st_text(s, 9, v->stdout_text != NULL ? v->stdout_text : "");
	st_text(s, 10, v->stderr_text != NULL ? v->stderr_text : "");
	st_text(s, 11, v->stdout_url);
	st_text(s, 12, v->stderr_url);
	bind_json(s, 13, v->plugins_json, "[]");
	rc = st_step_done(st, s, "invocation_update");
	sqlite3_finalize(s);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = PH_ERR_NOTFOUND;
	return rc;
}

int
store_invocation_query(struct store *st, const char *command_id,
    const char *instance_id, size_t offset, size_t limit,
    int (*fn)(void *arg, const struct invocation_rec *v), void *arg)
{
	struct inv_rows r = { NULL, 0, 0 };
	sqlite3_stmt *s = NULL;
	size_t i;
	int rc;

	/* A command's rows in target order; an instance's newest first. */
	if (command_id != NULL)
		rc = st_prep(st, "SELECT " INV_COLUMNS " FROM "
		    "command_invocations WHERE command_id = ?1 "
		    "AND (?2 IS NULL OR instance_id = ?2) "
		    "ORDER BY seq, instance_id LIMIT ?3 OFFSET ?4", &s);
	else
		rc = st_prep(st, "SELECT " INV_COLUMNS " FROM "
		    "command_invocations WHERE (?2 IS NULL OR "
		    "instance_id = ?2) AND (?1 IS NULL OR command_id = ?1) "
		    "ORDER BY requested_ms DESC, command_id DESC, seq, "
		    "instance_id LIMIT ?3 OFFSET ?4", &s);
	if (rc != 0)
		return rc;
	st_text(s, 1, command_id);
	st_text(s, 2, instance_id);
	sqlite3_bind_int64(s, 3, query_limit(limit));
	sqlite3_bind_int64(s, 4, (int64_t)offset);
	rc = inv_rows_collect(s, &r);
	sqlite3_finalize(s);
	if (rc == 0)
		for (i = 0; i < r.n; i++)
			if (fn(arg, &r.v[i]) != 0)
				break;
	inv_rows_free(&r);
	return rc;
}

int
store_command_foreach_active(struct store *st,
    int (*fn)(void *arg, const struct command_rec *c), void *arg)
{
	struct cmd_rows r = { NULL, 0, 0 };
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT " CMD_COLUMNS " FROM commands "
	    "WHERE status IN ('Pending', 'InProgress', 'Cancelling') "
	    "ORDER BY requested_ms, command_id", &s)) != 0)
		return rc;
	rc = cmd_rows_collect(s, &r);
	sqlite3_finalize(s);
	if (rc == 0)
		rc = cmd_rows_deliver(&r, fn, arg);
	cmd_rows_free(&r);
	return rc;
}
