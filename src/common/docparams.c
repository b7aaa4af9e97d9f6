/* docparams: {{ name }} substitution in a document's strings. A string
 * that is one whole reference takes the value itself (a list stays a
 * list); references inside longer text become the value's text. Every
 * byte produced is counted against max_bytes, so a small document with
 * many references to a large value cannot grow without bound. */
#include "common/docparams.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"

#define DP_MAX_DEPTH 64
#define DP_MAX_NAME 128

struct dp {
	json_t *params;
	size_t max;       /* 0: no limit */
	size_t used;      /* bytes produced by substitution so far */
};

static int
dp_charge(struct dp *p, size_t n)
{
	if (p->max == 0)
		return 0;
	if (n > p->max || p->used > p->max - n)
		return PH_ERR_INVALID;
	p->used += n;
	return 0;
}

/* The reference between s and e ("{{" .. "}}" excluded), trimmed, as the
 * value it names; NULL if it names none (or is {{ssm:...}}). */
static json_t *
dp_lookup(struct dp *p, const char *s, const char *e)
{
	char name[DP_MAX_NAME + 1];
	size_t n;

	while (s < e && isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	n = (size_t)(e - s);
	if (n == 0 || n > DP_MAX_NAME)
		return NULL;
	memcpy(name, s, n);
	name[n] = '\0';
	if (strncmp(name, "ssm:", 4) == 0)
		return NULL;
	return json_object_get(p->params, name);
}

/* The text of a value inside a longer string. */
static int
dp_append_value(struct buf *b, json_t *v)
{
	char *s;
	int rc;

	if (json_is_string(v))
		return buf_append(b, json_string_value(v),
		    json_string_length(v));
	if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
		return PH_ERR_NOMEM;
	rc = buf_append_str(b, s);
	free(s);
	return rc;
}

static size_t
dp_size(json_t *v)
{
	size_t n;

	if (json_is_string(v))
		return json_string_length(v);
	n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	return n;
}

/* The new value of the string v, or NULL (*rc 0) if it stays. */
static json_t *
dp_string(struct dp *p, json_t *v, int *rc)
{
	const char *s = json_string_value(v), *end, *open, *close;
	json_t *val, *out = NULL;
	struct buf b;
	int changed = 0;

	*rc = 0;
	if (strstr(s, "{{") == NULL)
		return NULL;
	end = s + json_string_length(v);
	/* The whole string is one reference: the value, typed. */
	open = s;
	while (open < end && isspace((unsigned char)*open))
		open++;
	if (end - open >= 4 && strncmp(open, "{{", 2) == 0) {
		close = strstr(open + 2, "}}");
		if (close != NULL) {
			const char *t = close + 2;

			while (t < end && isspace((unsigned char)*t))
				t++;
			if (t == end && (val = dp_lookup(p, open + 2,
			    close)) != NULL) {
				if ((*rc = dp_charge(p, dp_size(val))) != 0)
					return NULL;
				if ((out = json_deep_copy(val)) == NULL)
					*rc = PH_ERR_NOMEM;
				return out;
			}
		}
	}
	buf_init(&b, p->max != 0 ? p->max : 0);
	while ((open = strstr(s, "{{")) != NULL &&
	    (close = strstr(open + 2, "}}")) != NULL) {
		if ((*rc = buf_append(&b, s, (size_t)(open - s))) != 0)
			goto fail;
		if ((val = dp_lookup(p, open + 2, close)) != NULL) {
			*rc = dp_append_value(&b, val);
			changed = 1;
		} else
			*rc = buf_append(&b, open, (size_t)(close + 2 - open));
		if (*rc != 0)
			goto fail;
		s = close + 2;
	}
	if (!changed)
		goto done;
	if ((*rc = buf_append(&b, s, (size_t)(end - s))) != 0 ||
	    (*rc = dp_charge(p, b.len)) != 0)
		goto fail;
	if ((out = json_stringn(b.len > 0 ? (const char *)b.data : "",
	    b.len)) == NULL)
		*rc = PH_ERR_NOMEM;
done:
	buf_free(&b);
	return out;
fail:
	if (*rc == PH_ERR_TOOBIG)
		*rc = PH_ERR_INVALID;
	buf_free(&b);
	return NULL;
}

static int
dp_walk(struct dp *p, json_t *v, int depth, int top)
{
	const char *key;
	json_t *x, *nv;
	size_t i;
	int rc;

	if (depth > DP_MAX_DEPTH)
		return PH_ERR_INVALID;
	if (json_is_object(v)) {
		json_object_foreach(v, key, x) {
			/* The definitions hold defaults, not references. */
			if (top && strcmp(key, "parameters") == 0)
				continue;
			if (json_is_string(x)) {
				nv = dp_string(p, x, &rc);
				if (rc != 0)
					return rc;
				if (nv != NULL &&
				    json_object_set_new(v, key, nv) != 0)
					return PH_ERR_NOMEM;
			} else if ((rc = dp_walk(p, x, depth + 1, 0)) != 0)
				return rc;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x) {
			if (json_is_string(x)) {
				nv = dp_string(p, x, &rc);
				if (rc != 0)
					return rc;
				if (nv != NULL &&
				    json_array_set_new(v, i, nv) != 0)
					return PH_ERR_NOMEM;
			} else if ((rc = dp_walk(p, x, depth + 1, 0)) != 0)
				return rc;
		}
	}
	return 0;
}

int
docparams_substitute(json_t *doc, json_t *params, size_t max_bytes)
{
	struct dp p;

	if (doc == NULL)
		return PH_ERR_INVALID;
	p.params = json_is_object(params) ? params : NULL;
	p.max = max_bytes;
	p.used = 0;
	return dp_walk(&p, doc, 0, 1);
}
