/* authz: the policy decision point. The root admin may do anything; any
 * other principal is decided by its identity policies (policy.c) against
 * a request context built here. Parsing dominates the cost of a decision,
 * so each principal's parsed policies and tags are cached until the
 * store's authorisation generation moves (every IAM write and tag change
 * bumps it); the evaluation itself runs for every request, so time and
 * address conditions stay exact. A role session given session policies
 * at AssumeRole gets the intersection: its role's policies and its
 * session policies must both allow (cached per access key id, with the
 * same generation, since a managed session policy may change). */
#include "server/authz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "common/err.h"
#include "common/log.h"
#include "server/store.h"
#include "server/store_iam.h"
#include "server/store_sts.h"

#define AUTHZ_CACHE_MAX 256     /* principals */
#define AUTHZ_POLICIES_MAX 1024 /* documents of one principal */
#define AUTHZ_TAGS_MAX 64       /* tags of one principal or resource */
#define AUTHZ_GLOBAL_KEYS 16    /* condition keys besides the tags */

/* One principal's policies and tags, parsed. */
struct authz_entry {
	char key[300];               /* aws:PrincipalArn */
	uint64_t used;               /* LRU clock */
	int broken;                  /* a stored document failed to parse */
	int session;                 /* session policies: 1 if any given */
	struct policy **pols;
	size_t npols;
	char **tag_keys;             /* "aws:PrincipalTag/KEY" */
	char **tag_vals;
	size_t ntags;
};

struct authz_cache {
	uint64_t gen;                /* store_authz_generation of entries */
	uint64_t clock;
	uint64_t loads;
	struct authz_entry *e[AUTHZ_CACHE_MAX];
	size_t n;
};

static void
authz_entry_free(struct authz_entry *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->npols; i++)
		policy_free(e->pols[i]);
	for (i = 0; i < e->ntags; i++) {
		free(e->tag_keys[i]);
		free(e->tag_vals[i]);
	}
	free(e->pols);
	free(e->tag_keys);
	free(e->tag_vals);
	free(e);
}

static void
authz_cache_clear(struct authz_cache *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		authz_entry_free(c->e[i]);
	c->n = 0;
}

void
authz_free(struct server *srv)
{
	if (srv == NULL || srv->authz == NULL)
		return;
	authz_cache_clear(srv->authz);
	free(srv->authz);
	srv->authz = NULL;
}

uint64_t
authz_cache_loads(const struct server *srv)
{
	return srv != NULL && srv->authz != NULL ? srv->authz->loads : 0;
}

/* ---- loading a principal ------------------------------------------------ */

struct authz_load {
	struct authz_entry *e;
	size_t cap;
	int failed;                  /* out of memory */
};

static int
authz_policy_cb(void *arg, const char *source, const char *document)
{
	struct authz_load *l = arg;
	struct authz_entry *e = l->e;
	struct policy *p = NULL, **n;
	char why[256];

	if (e->npols >= AUTHZ_POLICIES_MAX)
		return PH_ERR_TOOBIG;
	if (policy_parse(document, strlen(document), &p, why,
	    sizeof(why)) != 0) {
		/* Checked when written, so this is damage: fail closed. */
		log_error("event=authz_policy_unparsable principal=%s "
		    "source=%s why=\"%s\"", e->key, source, why);
		e->broken = 1;
		return 0;
	}
	if (e->npols == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		if ((n = realloc(e->pols, l->cap * sizeof(*n))) == NULL) {
			policy_free(p);
			return PH_ERR_NOMEM;
		}
		e->pols = n;
	}
	e->pols[e->npols++] = p;
	return 0;
}

static void
authz_tag_cb(void *arg, const char *key, const char *value)
{
	struct authz_load *l = arg;
	struct authz_entry *e = l->e;
	size_t n;

	if (l->failed || e->ntags >= AUTHZ_TAGS_MAX)
		return;
	n = strlen("aws:PrincipalTag/") + strlen(key) + 1;
	if ((e->tag_keys[e->ntags] = malloc(n)) == NULL ||
	    (e->tag_vals[e->ntags] = strdup(value)) == NULL) {
		free(e->tag_keys[e->ntags]);
		l->failed = 1;
		return;
	}
	snprintf(e->tag_keys[e->ntags], n, "aws:PrincipalTag/%s", key);
	e->ntags++;
}

/* The name whose policies and tags a principal has: a user's own, a role
 * session's and an instance's role's. NULL: none (nothing is allowed). */
static const char *
authz_subject(const struct principal *p, const char **rtype)
{
	if (p->kind == PRINCIPAL_USER && !p->is_instance) {
		*rtype = "IamUser";
		return p->name;
	}
	*rtype = "IamRole";
	return p->role_name[0] != '\0' ? p->role_name : NULL;
}

static int
authz_load(struct server *srv, const struct principal *p, const char *key,
    struct authz_entry **out)
{
	struct authz_entry *e;
	struct authz_load l;
	const char *name, *rtype;
	int rc = 0;

	*out = NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return PH_ERR_NOMEM;
	snprintf(e->key, sizeof(e->key), "%s", key);
	memset(&l, 0, sizeof(l));
	l.e = e;
	e->tag_keys = calloc(AUTHZ_TAGS_MAX, sizeof(char *));
	e->tag_vals = calloc(AUTHZ_TAGS_MAX, sizeof(char *));
	if (e->tag_keys == NULL || e->tag_vals == NULL) {
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	if ((name = authz_subject(p, &rtype)) == NULL)
		goto done;
	if (strcmp(rtype, "IamUser") == 0)
		rc = store_iam_user_policies(srv->store, name,
		    authz_policy_cb, &l);
	else
		rc = store_iam_role_policies(srv->store, name,
		    authz_policy_cb, &l);
	/* A role that does not exist (any more) grants nothing. */
	if (rc == PH_ERR_NOTFOUND)
		rc = 0;
	if (rc != 0)
		goto fail;
	if ((rc = store_tags_foreach(srv->store, rtype, name, authz_tag_cb,
	    &l)) != 0)
		goto fail;
	if (l.failed) {
		rc = PH_ERR_NOMEM;
		goto fail;
	}
done:
	*out = e;
	return 0;
fail:
	log_error("event=authz_load_failed principal=%s rc=%d", key, rc);
	authz_entry_free(e);
	return rc;
}

/* The session policies of a role session's credentials: the inline
 * document and the default versions of the managed ones. A managed
 * policy deleted since grants nothing; the session still has session
 * policies, so it is then allowed nothing. */
static int
authz_load_session(struct server *srv, const struct principal *p,
    const char *key, struct authz_entry **out)
{
	struct iam_policy_rec *rec = NULL;
	struct authz_entry *e;
	struct authz_load l;
	char *pol = NULL, *arns = NULL, *doc = NULL;
	json_t *list = NULL, *v;
	size_t i;
	int rc;

	*out = NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return PH_ERR_NOMEM;
	snprintf(e->key, sizeof(e->key), "%s", key);
	memset(&l, 0, sizeof(l));
	l.e = e;
	rc = store_sts_session_policies(srv->store, p->access_key_id, &pol,
	    &arns);
	if (rc == PH_ERR_NOTFOUND) {
		/* Revoked since authentication: nothing is allowed. */
		e->session = 1;
		goto done;
	}
	if (rc != 0)
		goto fail;
	if (pol[0] != '\0') {
		e->session = 1;
		if ((rc = authz_policy_cb(&l, "session", pol)) != 0)
			goto fail;
	}
	if (arns[0] != '\0') {
		e->session = 1;
		list = json_loads(arns, 0, NULL);
		if (!json_is_array(list)) {
			log_error("event=authz_session_arns_unparsable "
			    "principal=%s", key);
			e->broken = 1;
			goto done;
		}
		if ((rec = calloc(1, sizeof(*rec))) == NULL) {
			rc = PH_ERR_NOMEM;
			goto fail;
		}
		json_array_foreach(list, i, v) {
			if (!json_is_string(v)) {
				e->broken = 1;
				break;
			}
			rc = store_iam_policy_get(srv->store,
			    json_string_value(v), rec);
			if (rc == PH_ERR_NOTFOUND)
				continue;
			if (rc != 0 || (rc = store_iam_policy_version_get(
			    srv->store, rec->arn, rec->default_version, &doc,
			    NULL)) != 0)
				goto fail;
			rc = authz_policy_cb(&l, rec->arn, doc);
			free(doc);
			doc = NULL;
			if (rc != 0)
				goto fail;
		}
	}
done:
	json_decref(list);
	free(rec);
	free(pol);
	free(arns);
	*out = e;
	return 0;
fail:
	log_error("event=authz_load_failed principal=%s rc=%d", key, rc);
	json_decref(list);
	free(rec);
	free(pol);
	free(arns);
	authz_entry_free(e);
	return rc;
}

typedef int (*authz_loader)(struct server *, const struct principal *,
    const char *, struct authz_entry **);

/* The cached entry of a principal, loading it on a miss. */
static int
authz_entry(struct server *srv, const struct principal *p, const char *key,
    authz_loader load, struct authz_entry **out)
{
	struct authz_cache *c = srv->authz;
	uint64_t gen = store_authz_generation(srv->store);
	size_t i, lru = 0;
	int rc;

	if (c == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return PH_ERR_NOMEM;
		c->gen = gen;
		srv->authz = c;
	}
	if (c->gen != gen) {
		authz_cache_clear(c);
		c->gen = gen;
	}
	c->clock++;
	for (i = 0; i < c->n; i++)
		if (strcmp(c->e[i]->key, key) == 0) {
			c->e[i]->used = c->clock;
			*out = c->e[i];
			return 0;
		}
	if ((rc = load(srv, p, key, out)) != 0)
		return rc;
	c->loads++;
	(*out)->used = c->clock;
	if (c->n < AUTHZ_CACHE_MAX) {
		c->e[c->n++] = *out;
		return 0;
	}
	for (i = 1; i < c->n; i++)
		if (c->e[i]->used < c->e[lru]->used)
			lru = i;
	authz_entry_free(c->e[lru]);
	c->e[lru] = *out;
	return 0;
}

/* ---- the request context ------------------------------------------------ */

struct authz_ctx {
	struct policy_ctx *ctx;
	const char **vals;
	char **own;                  /* strings to free */
	size_t n, nown, cap;
	int failed;
};

static void
ctx_add(struct authz_ctx *x, const char *key, const char *value)
{
	if (x->n >= x->cap || value == NULL || value[0] == '\0')
		return;
	x->vals[x->n] = value;
	x->ctx[x->n].key = key;
	x->ctx[x->n].values = &x->vals[x->n];
	x->ctx[x->n].nvalues = 1;
	x->n++;
}

/* Add a key and value the context owns. */
static void
ctx_add_own(struct authz_ctx *x, const char *prefix, const char *key,
    const char *value)
{
	size_t n = strlen(prefix) + strlen(key) + 1;
	char *k, *v;

	if (x->n >= x->cap || x->nown + 2 > 2 * x->cap)
		return;
	k = malloc(n);
	v = strdup(value);
	if (k == NULL || v == NULL) {
		free(k);
		free(v);
		x->failed = 1;
		return;
	}
	snprintf(k, n, "%s%s", prefix, key);
	x->own[x->nown++] = k;
	x->own[x->nown++] = v;
	/* An empty tag value is still a value: StringEquals "" matches. */
	x->vals[x->n] = v;
	x->ctx[x->n].key = k;
	x->ctx[x->n].values = &x->vals[x->n];
	x->ctx[x->n].nvalues = 1;
	x->n++;
}

struct authz_rtags {
	struct authz_ctx *x;
	size_t n;
};

static void
authz_rtag_cb(void *arg, const char *key, const char *value)
{
	struct authz_rtags *r = arg;

	if (r->n++ >= AUTHZ_TAGS_MAX)
		return;
	ctx_add_own(r->x, "aws:ResourceTag/", key, value);
	ctx_add_own(r->x, "ssm:resourceTag/", key, value);
}

/* The tags of the resource an SSM ARN names: a managed instance's or a
 * document's. Other resources have none here. */
static void
authz_resource_tags(struct server *srv, const char *arn,
    struct authz_ctx *x)
{
	struct authz_rtags r;
	const char *s = arn, *rtype;
	int i;

	if (strncmp(arn, "arn:aws:ssm:", 12) != 0)
		return;
	/* Skip partition, service, region and account. */
	for (i = 0; i < 5; i++) {
		if ((s = strchr(s, ':')) == NULL)
			return;
		s++;
	}
	if (strncmp(s, "managed-instance/", 17) == 0) {
		rtype = "ManagedInstance";
		s += 17;
	} else if (strncmp(s, "document/", 9) == 0) {
		rtype = "Document";
		s += 9;
	} else
		return;
	if (*s == '\0' || strpbrk(s, "*?") != NULL)
		return;
	memset(&r, 0, sizeof(r));
	r.x = x;
	if (store_tags_foreach(srv->store, rtype, s, authz_rtag_cb, &r) != 0)
		x->failed = 1;
}

static void
authz_ctx_free(struct authz_ctx *x)
{
	size_t i;

	for (i = 0; i < x->nown; i++)
		free(x->own[i]);
	free(x->own);
	free(x->ctx);
	free(x->vals);
}

/* ---- decisions ---------------------------------------------------------- */

static int
authz_extra_has(const struct policy_ctx *extra, size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (extra[i].key != NULL && strcasecmp(extra[i].key, key) == 0)
			return 1;
	return 0;
}

static int
authz_is_root(const struct principal *p)
{
	return p->is_root_admin && p->kind == PRINCIPAL_USER &&
	    !p->is_instance;
}

int
authz_decide(struct server *srv, const struct principal *p,
    const char *action, const char *resource_arn,
    const struct policy_ctx *extra, size_t nextra)
{
	return authz_decide_src(srv, p, action, resource_arn, extra, nextra,
	    NULL);
}

int
authz_decide_src(struct server *srv, const struct principal *p,
    const char *action, const char *resource_arn,
    const struct policy_ctx *extra, size_t nextra, int *source)
{
	char now_iso[32], now_epoch[24], skey[32];
	const struct policy *const *pols;
	struct policy_request req;
	struct authz_entry *e, *se = NULL;
	struct authz_ctx x;
	const char *parn;
	struct tm tm;
	time_t now;
	size_t i;
	int d, sd;

	if (source != NULL)
		*source = AUTHZ_SRC_IDENTITY;
	if (p == NULL || !p->active || action == NULL ||
	    resource_arn == NULL)
		return POLICY_DENY_IMPLICIT;
	if (authz_is_root(p))
		return POLICY_ALLOW;
	if (srv == NULL || srv->store == NULL)
		return POLICY_DENY_EXPLICIT;
	/* A role session is its role: aws:PrincipalArn names the role. */
	parn = p->kind != PRINCIPAL_USER && p->role_arn[0] != '\0' ?
	    p->role_arn : p->arn;
	if (authz_entry(srv, p, parn, authz_load, &e) != 0)
		return POLICY_DENY_EXPLICIT;
	if (e->broken)
		return POLICY_DENY_EXPLICIT;
	if (e->npols == 0)
		return POLICY_DENY_IMPLICIT;
	/* A role session's own session policies ("sts:" is no ARN, so the
	 * keys cannot meet). Loaded after e, which the LRU then keeps. */
	if (p->kind == PRINCIPAL_ASSUMED_ROLE) {
		if (p->access_key_id[0] == '\0')
			return POLICY_DENY_EXPLICIT;
		snprintf(skey, sizeof(skey), "sts:%s", p->access_key_id);
		if (authz_entry(srv, p, skey, authz_load_session, &se) != 0)
			return POLICY_DENY_EXPLICIT;
		if (se->broken) {
			if (source != NULL)
				*source = AUTHZ_SRC_SESSION;
			return POLICY_DENY_EXPLICIT;
		}
		if (!se->session)
			se = NULL;
	}

	memset(&x, 0, sizeof(x));
	x.cap = AUTHZ_GLOBAL_KEYS + e->ntags + 2 * AUTHZ_TAGS_MAX + nextra;
	x.ctx = calloc(x.cap, sizeof(*x.ctx));
	x.vals = calloc(x.cap, sizeof(*x.vals));
	x.own = calloc(2 * x.cap, sizeof(*x.own));
	if (x.ctx == NULL || x.vals == NULL || x.own == NULL) {
		authz_ctx_free(&x);
		return POLICY_DENY_EXPLICIT;
	}
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(now_iso, sizeof(now_iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(now_epoch, sizeof(now_epoch), "%lld", (long long)now);

	if (p->kind == PRINCIPAL_USER && !p->is_instance)
		ctx_add(&x, "aws:username", p->name);
	ctx_add(&x, "aws:userid", p->user_id);
	ctx_add(&x, "aws:PrincipalArn", parn);
	ctx_add(&x, "aws:PrincipalAccount", srv->account_id);
	ctx_add(&x, "aws:PrincipalType", p->kind == PRINCIPAL_USER &&
	    !p->is_instance ? "User" : "AssumedRole");
	ctx_add(&x, "aws:CurrentTime", now_iso);
	ctx_add(&x, "aws:EpochTime", now_epoch);
	ctx_add(&x, "aws:SourceIp", p->origin.source_ip);
	ctx_add(&x, "aws:SecureTransport",
	    p->origin.secure_transport ? "true" : "false");
	ctx_add(&x, "aws:RequestedRegion", p->origin.region);
	/* StartSession's caller says whether a document was named; true
	 * unless it says otherwise. */
	if (strcmp(action, "ssm:StartSession") == 0 &&
	    !authz_extra_has(extra, nextra, "ssm:SessionDocumentAccessCheck"))
		ctx_add(&x, "ssm:SessionDocumentAccessCheck", "true");
	for (i = 0; i < e->ntags; i++) {
		/* An empty value still counts (ctx_add would drop it). */
		x.vals[x.n] = e->tag_vals[i];
		x.ctx[x.n].key = e->tag_keys[i];
		x.ctx[x.n].values = &x.vals[x.n];
		x.ctx[x.n].nvalues = 1;
		x.n++;
	}
	authz_resource_tags(srv, resource_arn, &x);
	for (i = 0; i < nextra && x.n < x.cap; i++)
		x.ctx[x.n++] = extra[i];
	if (x.failed) {
		authz_ctx_free(&x);
		return POLICY_DENY_EXPLICIT;
	}

	memset(&req, 0, sizeof(req));
	req.action = action;
	req.resource = resource_arn;
	req.ctx = x.ctx;
	req.nctx = x.n;
	pols = (const struct policy *const *)e->pols;
	d = policy_evaluate(pols, e->npols, &req);
	/* An explicit deny in either wins, then either's implicit deny. */
	if (se != NULL && d != POLICY_DENY_EXPLICIT) {
		pols = (const struct policy *const *)se->pols;
		sd = se->npols > 0 ? policy_evaluate(pols, se->npols, &req) :
		    POLICY_DENY_IMPLICIT;
		if (sd == POLICY_DENY_EXPLICIT || (d == POLICY_ALLOW &&
		    sd != POLICY_ALLOW)) {
			d = sd;
			if (source != NULL)
				*source = AUTHZ_SRC_SESSION;
		}
	}
	authz_ctx_free(&x);
	return d;
}

int
authz_check_ctx(struct server *srv, const struct principal *p,
    const char *action, const char *resource_arn,
    const struct policy_ctx *extra, size_t nextra)
{
	return authz_decide(srv, p, action, resource_arn, extra,
	    nextra) == POLICY_ALLOW ? 0 : PH_ERR_DENIED;
}

int
authz_check(struct server *srv, const struct principal *p,
    const char *action, const char *resource_arn)
{
	return authz_check_ctx(srv, p, action, resource_arn, NULL, 0);
}
