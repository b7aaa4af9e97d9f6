/* fuzz_sts: the STS dispatcher (src/server/api_sts.c) behind the Query
 * protocol's form parser, on a real store with two roles (one that trusts
 * the account, one that trusts nobody here). Input: a byte choosing the
 * caller (the root admin, an IAM user without policies, a role session),
 * then the form body as botocore would POST it. A success must be an
 * XML answer; a failure must carry an error code and an HTTP status. The
 * store is made once (AssumeRole adds rows; each expires like any
 * other). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "server/api.h"
#include "server/api_query.h"
#include "server/api_sts.h"
#include "server/authz.h"
#include "server/server.h"
#include "server/store.h"
#include "server/store_iam.h"

#define ACCT "123456789012"
#define TRUST "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":" \
	"\"Allow\",\"Principal\":{\"AWS\":\"" ACCT "\"},\"Action\":[" \
	"\"sts:AssumeRole\",\"sts:TagSession\"],\"Condition\":{" \
	"\"StringLikeIfExists\":{\"sts:ExternalId\":\"x*\"}}}}"
#define CLOSED "{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":" \
	"{\"AWS\":\"arn:aws:iam::210987654321:root\"},\"Action\":" \
	"\"sts:AssumeRole\"}}"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct server srv;
static struct principal callers[3];
static char dir[64];

static int
role(const char *name, const char *trust, int max)
{
	struct iam_role_rec r;
	int rc;

	memset(&r, 0, sizeof(r));
	snprintf(r.name, sizeof(r.name), "%s", name);
	snprintf(r.arn, sizeof(r.arn), "arn:aws:iam::" ACCT ":role/%s", name);
	r.max_session_duration = max;
	if ((r.trust_policy = strdup(trust)) == NULL)
		return PH_ERR_NOMEM;
	rc = store_iam_role_create(srv.store, &r);
	iam_role_rec_clear(&r);
	return rc;
}

static void
cleanup(void)
{
	char p[128];

	authz_free(&srv);
	store_close(srv.store);
	snprintf(p, sizeof(p), "%s/porthole.db", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/porthole.db-wal", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/porthole.db-shm", dir);
	unlink(p);
	rmdir(dir);
}

static void
init(void)
{
	char path[128];
	struct principal *p;

	log_set_level(LOG_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/ph-fuzz-sts-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/porthole.db", dir);
	if (store_open(&srv.store, path) != 0)
		abort();
	atexit(cleanup);
	snprintf(srv.region, sizeof(srv.region), "us-east-1");
	snprintf(srv.account_id, sizeof(srv.account_id), ACCT);
	if (store_iam_create_user(srv.store, "admin", "arn:aws:iam::" ACCT
	    ":user/admin", 1) != 0 || store_iam_create_user(srv.store, "bob",
	    "arn:aws:iam::" ACCT ":user/bob", 0) != 0 ||
	    role("deploy", TRUST, 7200) != 0 ||
	    role("closed", CLOSED, 3600) != 0)
		abort();
	p = &callers[0];
	p->kind = PRINCIPAL_USER;
	p->active = p->is_root_admin = 1;
	snprintf(p->name, sizeof(p->name), "admin");
	snprintf(p->arn, sizeof(p->arn), "arn:aws:iam::" ACCT ":user/admin");
	p = &callers[1];
	p->kind = PRINCIPAL_USER;
	p->active = 1;
	snprintf(p->name, sizeof(p->name), "bob");
	snprintf(p->arn, sizeof(p->arn), "arn:aws:iam::" ACCT ":user/bob");
	p = &callers[2];
	p->kind = PRINCIPAL_ASSUMED_ROLE;
	p->active = 1;
	snprintf(p->name, sizeof(p->name), "s1");
	snprintf(p->arn, sizeof(p->arn), "arn:aws:sts::" ACCT
	    ":assumed-role/deploy/s1");
	snprintf(p->role_name, sizeof(p->role_name), "deploy");
	snprintf(p->role_arn, sizeof(p->role_arn), "arn:aws:iam::" ACCT
	    ":role/deploy");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_error err;
	struct api_call call;
	char action[128], *xml = NULL;
	size_t len = 0;
	int rc;

	if (srv.store == NULL)
		init();
	if (size == 0)
		return 0;
	memset(&call, 0, sizeof(call));
	memset(&err, 0, sizeof(err));
	call.srv = &srv;
	call.principal = &callers[data[0] % 3];
	call.host = "localhost";
	call.request_id = "00000000-0000-4000-8000-000000000000";
	call.now_ms = (int64_t)time(NULL) * 1000;
	rc = api_query_run(&call, API_STS_NAMESPACE, api_sts_dispatch,
	    data + 1, size - 1, action, sizeof(action), &xml, &len, &err);
	if (rc == 0) {
		if (xml == NULL || len == 0 || memchr(xml, '<', len) == NULL)
			abort();
	} else if (xml != NULL || err.type[0] == '\0' || err.status < 400 ||
	    err.status > 599)
		abort();
	free(xml);
	return 0;
}
