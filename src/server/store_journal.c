/* store_journal: pending state changes in a doubly linked list (oldest
 * first) with a strmap from "s/<session id>" or "i/<instance id>" to the
 * entry, so a change finds and merges into its record's entry in O(1). */
#include "server/store_journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "server/strmap.h"

/* As the store bounds a status reason. */
#define SJ_REASON_MAX 1024
#define SJ_KEY_SIZE (SESSION_ID_MAX + 2)

struct store_journal {
	struct strmap *byid;
	struct sj_entry *head, *tail;
	size_t count, max;
};

int
sj_is_terminal(const char *status)
{
	return strcmp(status, "Terminated") == 0 ||
	    strcmp(status, "Failed") == 0;
}

int
sj_new(struct store_journal **out, size_t max)
{
	struct store_journal *j;

	*out = NULL;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return PH_ERR_NOMEM;
	if (strmap_new(&j->byid) != 0) {
		free(j);
		return PH_ERR_NOMEM;
	}
	j->max = max;
	*out = j;
	return 0;
}

void
sj_free(struct store_journal *j)
{
	struct sj_entry *e, *next;

	if (j == NULL)
		return;
	for (e = j->head; e != NULL; e = next) {
		next = e->next;
		free(e->reason);
		free(e);
	}
	strmap_free(j->byid);
	free(j);
}

size_t
sj_count(const struct store_journal *j)
{
	return j != NULL ? j->count : 0;
}

static int
sj_key(char *key, enum sj_kind kind, const char *id)
{
	int n;

	n = snprintf(key, SJ_KEY_SIZE, "%c/%s", kind == SJ_SESSION ? 's' :
	    'i', id);
	return n < 0 || n >= SJ_KEY_SIZE ? PH_ERR_TOOBIG : 0;
}

const struct sj_entry *
sj_find(const struct store_journal *j, enum sj_kind kind, const char *id)
{
	char key[SJ_KEY_SIZE];

	if (j == NULL || j->count == 0 || id == NULL ||
	    sj_key(key, kind, id) != 0)
		return NULL;
	return strmap_get(j->byid, key);
}

const struct sj_entry *
sj_first(const struct store_journal *j)
{
	return j != NULL ? j->head : NULL;
}

static void
sj_unlink(struct store_journal *j, struct sj_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		j->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		j->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
sj_append(struct store_journal *j, struct sj_entry *e)
{
	e->prev = j->tail;
	e->next = NULL;
	if (j->tail != NULL)
		j->tail->next = e;
	else
		j->head = e;
	j->tail = e;
}

void
sj_drop(struct store_journal *j, const struct sj_entry *ce)
{
	struct sj_entry *e = (struct sj_entry *)ce;
	char key[SJ_KEY_SIZE];

	if (j == NULL || e == NULL)
		return;
	if (sj_key(key, e->kind, e->id) == 0)
		strmap_del(j->byid, key, e);
	sj_unlink(j, e);
	j->count--;
	free(e->reason);
	free(e);
}

/* The record's entry, moved to the end as its latest change; a new one
 * if there is none. PH_ERR_TOOBIG when a new one would pass the bound. */
static int
sj_touch(struct store_journal *j, enum sj_kind kind, const char *id,
    struct sj_entry **out)
{
	char key[SJ_KEY_SIZE];
	struct sj_entry *e;
	int rc;

	*out = NULL;
	if (id == NULL || id[0] == '\0')
		return PH_ERR_INVALID;
	if ((rc = sj_key(key, kind, id)) != 0)
		return rc;
	if ((e = strmap_get(j->byid, key)) != NULL) {
		sj_unlink(j, e);
		sj_append(j, e);
		*out = e;
		return 0;
	}
	if (j->count >= j->max)
		return PH_ERR_TOOBIG;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return PH_ERR_NOMEM;
	e->kind = kind;
	snprintf(e->id, sizeof(e->id), "%s", id);
	if (strmap_put(j->byid, key, e, NULL) != 0) {
		free(e);
		return PH_ERR_NOMEM;
	}
	sj_append(j, e);
	j->count++;
	*out = e;
	return 0;
}

int
sj_session(struct store_journal *j, const char *session_id,
    const char *status, const char *reason, int64_t at_ms)
{
	const struct sj_entry *cur;
	struct sj_entry *e;
	char *r = NULL;
	int rc;

	if (status == NULL || strlen(status) >= sizeof(e->status))
		return PH_ERR_INVALID;
	/* What the database would say to this change after the pending one. */
	cur = sj_find(j, SJ_SESSION, session_id);
	if (cur != NULL && sj_is_terminal(cur->status))
		return strcmp(cur->status, status) == 0 ? 0 : PH_ERR_STATE;
	if (reason != NULL && reason[0] != '\0' &&
	    (r = strndup(reason, SJ_REASON_MAX)) == NULL)
		return PH_ERR_NOMEM;
	if ((rc = sj_touch(j, SJ_SESSION, session_id, &e)) != 0) {
		free(r);
		return rc;
	}
	snprintf(e->status, sizeof(e->status), "%s", status);
	/* An empty reason keeps the earlier one, as the database does. */
	if (r != NULL) {
		free(e->reason);
		e->reason = r;
	}
	e->at_ms = at_ms;
	return 0;
}

int
sj_instance_connected(struct store_journal *j, const char *instance_id,
    const struct instance_conn_info *info, int64_t at_ms)
{
	struct sj_entry *e;
	int rc;

	if ((rc = sj_touch(j, SJ_INSTANCE, instance_id, &e)) != 0)
		return rc;
	e->ping = SJ_PING_ONLINE;
	e->has_info = 1;
#define SJ_SET(f) snprintf(e->f, sizeof(e->f), "%s", \
	    info != NULL && info->f != NULL ? info->f : "")
	SJ_SET(agent_version);
	SJ_SET(platform_type);
	SJ_SET(platform_name);
	SJ_SET(platform_version);
	SJ_SET(ip_address);
	SJ_SET(computer_name);
#undef SJ_SET
	if (at_ms > e->last_ping_ms)
		e->last_ping_ms = at_ms;
	return 0;
}

int
sj_instance_disconnected(struct store_journal *j, const char *instance_id)
{
	struct sj_entry *e;
	int rc;

	if ((rc = sj_touch(j, SJ_INSTANCE, instance_id, &e)) != 0)
		return rc;
	e->ping = SJ_PING_LOST;
	return 0;
}

int
sj_instance_seen(struct store_journal *j, const char *instance_id,
    int64_t at_ms)
{
	struct sj_entry *e;
	int rc;

	rc = sj_touch(j, SJ_INSTANCE, instance_id, &e);
	if (rc == PH_ERR_TOOBIG)
		return 0;
	if (rc != 0)
		return rc;
	if (at_ms > e->last_ping_ms)
		e->last_ping_ms = at_ms;
	return 0;
}
