/* policy: IAM identity, resource and trust policies, driven by a corpus
 * of cases (fixtures/policy_cases.json: policies, a request, the decision
 * or "Malformed"; "kind": "resource" or "trust" parses with
 * policy_parse_ex, and the request's "principals" and "principal_type"
 * say who calls), plus the limits the corpus cannot express. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "common/err.h"
#include "server/policy.h"

#define CASES "fixtures/policy_cases.json"
#define MAXP 8
#define MAXCTX 16
#define MAXV 8

static const char *
decision_name(int d)
{
	switch (d) {
	case POLICY_ALLOW:
		return "Allow";
	case POLICY_DENY_EXPLICIT:
		return "ExplicitDeny";
	default:
		return "ImplicitDeny";
	}
}

/* One case; 0 if it holds, else a message on stderr. */
static int
run_case(json_t *c)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	const char *expect = json_string_value(json_object_get(c, "expect"));
	const char *want_why = json_string_value(json_object_get(c, "why"));
	const char *kind = json_string_value(json_object_get(c, "kind"));
	const char *pvals[MAXV];
	unsigned flags = 0;
	struct policy *ps[MAXP] = { NULL };
	struct policy_ctx ctx[MAXCTX];
	const char *vals[MAXCTX][MAXV];
	struct policy_request req = { NULL, NULL, ctx, 0, NULL, NULL, 0 };
	json_t *pols = json_object_get(c, "policies"), *r, *cx, *v, *e;
	char why[512], *text;
	const char *key;
	size_t i, j, np = 0;
	int rc, d, bad = 0, failed = 0;

	assert_non_null(name);
	assert_non_null(expect);
	if (kind != NULL && strcmp(kind, "resource") == 0)
		flags = POLICY_F_PRINCIPAL;
	else if (kind != NULL && strcmp(kind, "trust") == 0)
		flags = POLICY_F_TRUST;
	else
		assert_null(kind);
	assert_true(json_is_array(pols));
	assert_true(json_array_size(pols) <= MAXP);
	for (i = 0; i < json_array_size(pols); i++) {
		v = json_array_get(pols, i);
		/* A string is the document's text as is (for bad JSON). */
		text = json_is_string(v) ? strdup(json_string_value(v)) :
		    json_dumps(v, JSON_COMPACT);
		assert_non_null(text);
		why[0] = '\0';
		rc = flags == 0 ? policy_parse(text, strlen(text), &ps[np],
		    why, sizeof(why)) : policy_parse_ex(text, strlen(text),
		    flags, &ps[np], why, sizeof(why));
		free(text);
		if (rc != 0) {
			assert_null(ps[np]);
			failed = 1;
			if (why[0] == '\0') {
				fprintf(stderr, "%s: refusal without a "
				    "reason\n", name);
				bad = 1;
			}
			if (want_why != NULL && strstr(why, want_why) == NULL) {
				fprintf(stderr, "%s: reason '%s' lacks '%s'\n",
				    name, why, want_why);
				bad = 1;
			}
			if (strcmp(expect, "Malformed") != 0) {
				fprintf(stderr, "%s: refused: %s\n", name, why);
				bad = 1;
			}
			continue;
		}
		np++;
	}
	if (strcmp(expect, "Malformed") == 0) {
		if (!failed) {
			fprintf(stderr, "%s: accepted a malformed policy\n",
			    name);
			bad = 1;
		}
		goto out;
	}
	r = json_object_get(c, "request");
	req.action = json_string_value(json_object_get(r, "action"));
	req.resource = json_string_value(json_object_get(r, "resource"));
	req.principal_type = json_string_value(json_object_get(r,
	    "principal_type"));
	v = json_object_get(r, "principals");
	if (v != NULL) {
		assert_true(json_is_array(v) && json_array_size(v) <= MAXV);
		json_array_foreach(v, j, e)
			pvals[j] = json_string_value(e);
		req.principals = pvals;
		req.nprincipals = json_array_size(v);
	}
	cx = json_object_get(r, "context");
	json_object_foreach(cx, key, v) {
		assert_true(req.nctx < MAXCTX);
		ctx[req.nctx].key = key;
		ctx[req.nctx].values = vals[req.nctx];
		if (json_is_array(v)) {
			assert_true(json_array_size(v) <= MAXV);
			json_array_foreach(v, j, e)
				vals[req.nctx][j] = json_string_value(e);
			ctx[req.nctx].nvalues = json_array_size(v);
		} else {
			vals[req.nctx][0] = json_string_value(v);
			ctx[req.nctx].nvalues = 1;
		}
		req.nctx++;
	}
	d = policy_evaluate((const struct policy *const *)ps, np, &req);
	if (strcmp(decision_name(d), expect) != 0) {
		fprintf(stderr, "%s: got %s, want %s\n", name,
		    decision_name(d), expect);
		bad = 1;
	}
out:
	for (i = 0; i < np; i++)
		policy_free(ps[i]);
	return bad;
}

static void
t_corpus(void **state)
{
	json_error_t err;
	json_t *all, *c;
	size_t i, bad = 0;

	(void)state;
	all = json_load_file(CASES, JSON_REJECT_DUPLICATES, &err);
	if (all == NULL)
		fail_msg("%s:%d: %s", CASES, err.line, err.text);
	assert_true(json_is_array(all));
	assert_true(json_array_size(all) >= 100);
	json_array_foreach(all, i, c)
		bad += (size_t)run_case(c);
	json_decref(all);
	assert_int_equal(bad, 0);
}

static void
t_limits(void **state)
{
	static const char ok[] = "{\"Version\":\"2012-10-17\",\"Statement\":"
	    "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"*\"}}";
	const char *vals[] = { "x" };
	struct policy_ctx ctx[] = { { "aws:username", vals, 1 } };
	struct policy_request req = { "ssm:StartSession", "arn:aws:ssm:x",
	    ctx, 1, NULL, NULL, 0 };
	const struct policy *ps[2] = { NULL, NULL };
	struct policy *p = NULL;
	char why[128], *big;

	(void)state;
	/* Too big: refused before parsing. */
	big = calloc(1, POLICY_MAX + 2);
	assert_non_null(big);
	memset(big, ' ', POLICY_MAX + 1);
	assert_int_equal(policy_parse(big, POLICY_MAX + 1, &p, why,
	    sizeof(why)), PH_ERR_TOOBIG);
	assert_null(p);
	assert_non_null(strstr(why, "larger"));
	free(big);
	/* The length bounds the text: a prefix is not a document. */
	assert_int_equal(policy_parse(ok, sizeof(ok) - 3, &p, why,
	    sizeof(why)), PH_ERR_INVALID);
	/* A reason that does not fit is cut, not overflowed. */
	assert_int_equal(policy_parse("[]", 2, &p, why, 4), PH_ERR_INVALID);
	assert_int_equal(strlen(why), 3);
	assert_int_equal(policy_parse("[]", 2, &p, NULL, 0), PH_ERR_INVALID);
	/* NULL entries are skipped; no policy is an implicit deny. */
	assert_int_equal(policy_evaluate(ps, 2, &req), POLICY_DENY_IMPLICIT);
	assert_int_equal(policy_evaluate(ps, 0, &req), POLICY_DENY_IMPLICIT);
	assert_int_equal(policy_parse(ok, sizeof(ok) - 1, &p, why,
	    sizeof(why)), 0);
	ps[1] = p;
	assert_int_equal(policy_evaluate(ps, 2, &req), POLICY_ALLOW);
	/* A request with no action or resource matches nothing. */
	req.action = NULL;
	assert_int_equal(policy_evaluate(ps, 2, &req), POLICY_DENY_IMPLICIT);
	policy_free(p);
	policy_free(NULL);
}

/* A NULL context value is the caller's bug: an explicit deny. */
static void
t_null_value(void **state)
{
	static const char doc[] = "{\"Version\":\"2012-10-17\",\"Statement\":"
	    "{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\","
	    "\"Condition\":{\"StringNotEquals\":{\"aws:username\":\"x\"}}}}";
	const char *vals[] = { "alice", NULL };
	struct policy_ctx ctx[] = { { "aws:username", vals, 1 } };
	struct policy_request req = { "ssm:StartSession", "arn:aws:ssm:x",
	    ctx, 1, NULL, NULL, 0 };
	const struct policy *ps[1];
	struct policy *p = NULL;
	char why[128];

	(void)state;
	assert_int_equal(policy_parse(doc, sizeof(doc) - 1, &p, why,
	    sizeof(why)), 0);
	ps[0] = p;
	assert_int_equal(policy_evaluate(ps, 1, &req), POLICY_ALLOW);
	ctx[0].nvalues = 2;
	assert_int_equal(policy_evaluate(ps, 1, &req), POLICY_DENY_EXPLICIT);
	policy_free(p);
}

/* A wildcard match too slow to finish fails closed: the Deny applies. */
static void
t_slow_glob(void **state)
{
	static const char allow_doc[] = "{\"Statement\":{\"Effect\":"
	    "\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}";
	const struct policy *ps[2];
	struct policy *allow = NULL, *deny = NULL;
	struct policy_request req = { "s3:GetObject", NULL, NULL, 0, NULL,
	    NULL, 0 };
	char why[128], *doc, *res;
	size_t k = 3000;
	int n;

	(void)state;
	doc = malloc(k + 256);
	res = malloc(2 * k + 64);
	assert_non_null(doc);
	assert_non_null(res);
	/* Deny arn:aws:s3:::*a{k}b against arn:aws:s3:::a{2k}: about k * k
	 * steps. */
	n = snprintf(doc, k + 256, "{\"Version\":\"2012-10-17\",\"Statement\":"
	    "{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":"
	    "\"arn:aws:s3:::*");
	memset(doc + n, 'a', k);
	strcpy(doc + n + k, "b\"}}");
	assert_int_equal(policy_parse(doc, strlen(doc), &deny, why,
	    sizeof(why)), 0);
	strcpy(res, "arn:aws:s3:::");
	memset(res + 13, 'a', 2 * k);
	res[13 + 2 * k] = '\0';
	req.resource = res;
	assert_int_equal(policy_parse(allow_doc, sizeof(allow_doc) - 1, &allow,
	    why, sizeof(why)), 0);
	ps[0] = allow;
	ps[1] = deny;
	assert_int_equal(policy_evaluate(ps, 1, &req), POLICY_ALLOW);
	assert_int_equal(policy_evaluate(ps, 2, &req), POLICY_DENY_EXPLICIT);
	policy_free(allow);
	policy_free(deny);
	free(doc);
	free(res);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_corpus),
		cmocka_unit_test(t_limits),
		cmocka_unit_test(t_slow_glob),
		cmocka_unit_test(t_null_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
