/* docyaml: YAML to jansson over libyaml's event parser. The tree is built
 * with an explicit stack (no recursion), so nesting costs no C stack and
 * is refused past DOCYAML_MAX_DEPTH. */
#include "server/docyaml.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

struct dy_frame {
	json_t *node;          /* borrowed: the parent holds it */
	char *key;             /* a mapping's key waiting for its value */
};

struct dy {
	struct dy_frame stack[DOCYAML_MAX_DEPTH + 1];
	int depth;
	size_t nodes;
	json_t *root;
	char *why;
	size_t whysz;
	int failed;
};

static void
dy_fail(struct dy *y, const yaml_mark_t *m, const char *what)
{
	if (y->failed)
		return;
	y->failed = 1;
	if (m != NULL)
		snprintf(y->why, y->whysz, "%s (line %zu, column %zu)", what,
		    (size_t)m->line + 1, (size_t)m->column + 1);
	else
		snprintf(y->why, y->whysz, "%s", what);
}

static int
dy_is(const char *s, const char *a, const char *b, const char *c)
{
	return strcmp(s, a) == 0 || strcmp(s, b) == 0 || strcmp(s, c) == 0;
}

/* A plain scalar read by YAML's core schema, as far as JSON has types. */
static json_t *
dy_plain(const char *s, size_t len)
{
	const char *p = s;
	long long v;
	char *end;

	if (len == 0 || dy_is(s, "null", "Null", "NULL") || strcmp(s, "~") == 0)
		return json_null();
	if (dy_is(s, "true", "True", "TRUE"))
		return json_true();
	if (dy_is(s, "false", "False", "FALSE"))
		return json_false();
	if (*p == '-' || *p == '+')
		p++;
	/* Decimal only, no leading zeros: "0755" stays a string. */
	if (*p >= '1' && *p <= '9' && strspn(p, "0123456789") ==
	    len - (size_t)(p - s)) {
		errno = 0;
		v = strtoll(s, &end, 10);
		if (errno == 0 && *end == '\0')
			return json_integer(v);
	} else if (strcmp(p, "0") == 0)
		return json_integer(0);
	return json_stringn(s, len);
}

static json_t *
dy_scalar(const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;

	if (strlen(s) != len)
		return NULL;              /* a NUL inside: not JSON text */
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    (tag != NULL && strcmp(tag, YAML_STR_TAG) == 0))
		return json_stringn(s, len);
	return dy_plain(s, len);
}

/* Put v (reference stolen) where the parser is. */
static int
dy_add(struct dy *y, json_t *v, const yaml_event_t *ev)
{
	struct dy_frame *f;

	if (v == NULL) {
		dy_fail(y, &ev->start_mark, "a value is not valid UTF-8 text");
		return -1;
	}
	if (++y->nodes > DOCYAML_MAX_NODES) {
		json_decref(v);
		dy_fail(y, &ev->start_mark, "the document has too many nodes");
		return -1;
	}
	if (y->depth == 0) {
		if (y->root != NULL) {
			json_decref(v);
			dy_fail(y, &ev->start_mark, "more than one root value");
			return -1;
		}
		y->root = v;
		return 0;
	}
	f = &y->stack[y->depth - 1];
	if (json_is_array(f->node)) {
		if (json_array_append_new(f->node, v) != 0) {
			dy_fail(y, NULL, "out of memory");
			return -1;
		}
		return 0;
	}
	if (f->key == NULL) {
		if (ev->type != YAML_SCALAR_EVENT) {
			json_decref(v);
			dy_fail(y, &ev->start_mark, "a mapping key must be a "
			    "scalar");
			return -1;
		}
		json_decref(v);
		f->key = strdup((const char *)ev->data.scalar.value);
		if (f->key == NULL) {
			dy_fail(y, NULL, "out of memory");
			return -1;
		}
		if (json_object_get(f->node, f->key) != NULL) {
			dy_fail(y, &ev->start_mark, "a key appears twice in "
			    "one mapping");
			return -1;
		}
		return 0;
	}
	if (json_object_set_new(f->node, f->key, v) != 0) {
		dy_fail(y, &ev->start_mark, "a key is not valid UTF-8 text");
		return -1;
	}
	free(f->key);
	f->key = NULL;
	return 0;
}

static int
dy_open(struct dy *y, json_t *v, const yaml_event_t *ev)
{
	if (y->depth >= DOCYAML_MAX_DEPTH) {
		json_decref(v);
		dy_fail(y, &ev->start_mark, "the document nests too deep");
		return -1;
	}
	if (v == NULL) {
		dy_fail(y, NULL, "out of memory");
		return -1;
	}
	json_incref(v);
	if (dy_add(y, v, ev) != 0) {
		json_decref(v);
		return -1;
	}
	y->stack[y->depth].node = v;
	y->stack[y->depth].key = NULL;
	y->depth++;
	json_decref(v);           /* the parent (or root) holds it */
	return 0;
}

json_t *
docyaml_load(const char *s, size_t len, char *why, size_t whysz)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct dy y;
	int done = 0, docs = 0, rc;

	memset(&y, 0, sizeof(y));
	y.why = why;
	y.whysz = whysz;
	if (whysz > 0)
		why[0] = '\0';
	if (!yaml_parser_initialize(&parser)) {
		dy_fail(&y, NULL, "out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)s, len);
	while (!done && !y.failed) {
		if (!yaml_parser_parse(&parser, &ev)) {
			dy_fail(&y, &parser.problem_mark, parser.problem != NULL ?
			    parser.problem : "not valid YAML");
			break;
		}
		rc = 0;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				dy_fail(&y, &ev.start_mark, "more than one "
				    "YAML document in the content");
				rc = -1;
			}
			break;
		case YAML_ALIAS_EVENT:
			dy_fail(&y, &ev.start_mark, "YAML aliases (*name) are "
			    "not accepted");
			rc = -1;
			break;
		case YAML_SCALAR_EVENT:
			rc = dy_add(&y, dy_scalar(&ev), &ev);
			break;
		case YAML_SEQUENCE_START_EVENT:
			rc = dy_open(&y, json_array(), &ev);
			break;
		case YAML_MAPPING_START_EVENT:
			rc = dy_open(&y, json_object(), &ev);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (y.depth > 0) {
				y.depth--;
				free(y.stack[y.depth].key);
				y.stack[y.depth].key = NULL;
			}
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (rc != 0)
			break;
	}
	yaml_parser_delete(&parser);
	while (y.depth > 0) {
		y.depth--;
		free(y.stack[y.depth].key);
	}
	if (!y.failed && y.root == NULL)
		dy_fail(&y, NULL, "the content is empty");
	if (y.failed) {
		json_decref(y.root);
		return NULL;
	}
	return y.root;
}
