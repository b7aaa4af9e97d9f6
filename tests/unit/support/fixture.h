/* fixture: what the store and API tests set up alike: a database in a
 * temporary directory, a server with the test account, its users. */
#ifndef PORTHOLE_TEST_FIXTURE_H
#define PORTHOLE_TEST_FIXTURE_H

#include <stdint.h>

#include <jansson.h>

#include "server/api.h"
#include "server/authz.h"
#include "server/server.h"
#include "server/store.h"

#define TEST_ACCOUNT "123456789012"
#define TEST_REGION "us-east-1"

/* A database file in a directory of its own. */
struct tmpdb {
	char dir[64];
	char path[128];
};

/* Makes /tmp/PREFIX-XXXXXX and opens a store at porthole.db in it. */
int tmpdb_open(struct tmpdb *db, const char *prefix, struct store **st);
/* Removes the database, its -wal and -shm files and the directory. */
void tmpdb_remove(const struct tmpdb *db);

/* The fixture of the store tests (cmocka setup and teardown). */
struct store_fx {
	struct tmpdb db;
	struct store *st;
};

int store_fx_setup(void **state, const char *prefix);
int store_fx_teardown(void **state);

/* A server of TEST_ACCOUNT in TEST_REGION over a fresh store; close
 * frees its authorizer and store and removes the database. */
int test_server_open(struct server *srv, struct tmpdb *db,
    const char *prefix);
void test_server_close(struct server *srv, const struct tmpdb *db);

/* An active user NAME of TEST_ACCOUNT, root admin when admin is set. */
void test_user(struct principal *p, const char *name, int admin);

/* An SSM action as p on srv at now_ms (Host porthole.example:8443,
 * request id "test") with request in (reference stolen): the output, or
 * NULL with err filled in (status 400 or more). */
json_t *test_ssm_call(struct server *srv, const struct principal *p,
    int64_t now_ms, const char *action, json_t *in, struct api_error *err);

#endif
