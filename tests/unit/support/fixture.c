/* fixture: temporary databases, servers and users for the unit tests. */
#include "fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "server/api_ssm.h"

int
tmpdb_open(struct tmpdb *db, const char *prefix, struct store **st)
{
	snprintf(db->dir, sizeof(db->dir), "/tmp/%s-XXXXXX", prefix);
	if (mkdtemp(db->dir) == NULL)
		return -1;
	snprintf(db->path, sizeof(db->path), "%s/porthole.db", db->dir);
	if (store_open(st, db->path) != 0)
		return -1;
	return 0;
}

void
tmpdb_remove(const struct tmpdb *db)
{
	char p[160];

	unlink(db->path);
	snprintf(p, sizeof(p), "%s-wal", db->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", db->path);
	unlink(p);
	rmdir(db->dir);
}

int
store_fx_setup(void **state, const char *prefix)
{
	struct store_fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (tmpdb_open(&f->db, prefix, &f->st) != 0)
		return -1;
	*state = f;
	return 0;
}

int
store_fx_teardown(void **state)
{
	struct store_fx *f = *state;

	store_close(f->st);
	tmpdb_remove(&f->db);
	free(f);
	return 0;
}

int
test_server_open(struct server *srv, struct tmpdb *db, const char *prefix)
{
	if (tmpdb_open(db, prefix, &srv->store) != 0)
		return -1;
	snprintf(srv->region, sizeof(srv->region), TEST_REGION);
	snprintf(srv->account_id, sizeof(srv->account_id), TEST_ACCOUNT);
	return 0;
}

void
test_server_close(struct server *srv, const struct tmpdb *db)
{
	authz_free(srv);
	store_close(srv->store);
	tmpdb_remove(db);
}

void
test_user(struct principal *p, const char *name, int admin)
{
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->arn, sizeof(p->arn), "arn:aws:iam::" TEST_ACCOUNT
	    ":user/%s", name);
	p->is_root_admin = admin;
	p->active = 1;
}

json_t *
test_ssm_call(struct server *srv, const struct principal *p, int64_t now_ms,
    const char *action, json_t *in, struct api_error *err)
{
	struct api_call c;
	json_t *out = NULL;
	int rc;

	assert_non_null(in);
	memset(&c, 0, sizeof(c));
	memset(err, 0, sizeof(*err));
	c.srv = srv;
	c.principal = p;
	c.host = "porthole.example:8443";
	c.request_id = "test";
	c.now_ms = now_ms;
	rc = api_ssm_dispatch(&c, action, in, &out, err);
	json_decref(in);
	if (rc != 0) {
		assert_null(out);
		assert_true(err->status >= 400);
		return NULL;
	}
	assert_non_null(out);
	return out;
}
