/* api_query: AWS's Query protocol for IAM and STS. Form bodies are
 * decoded into name/value pairs (bounded in size and count, UTF-8
 * checked, no NUL bytes); answers and errors are written with libxml2's
 * xmlwriter so every text is escaped by the library. */
#include "server/api_query.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/xmlwriter.h>

#include "common/err.h"
#include "common/hex.h"
#include "common/log.h"
#include "server/api_json.h"

struct api_form_pair {
	char *name;
	char *value;
};

struct api_form {
	struct api_form_pair *pairs;
	size_t n;
};

struct api_xml {
	xmlTextWriterPtr w;
	int failed;
};

/* ---- form --------------------------------------------------------------- */

/* Well-formed UTF-8 without NUL, overlong forms or surrogates. */
static int
aq_utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0, k, len;
	uint32_t cp;

	while (i < n) {
		unsigned char c = s[i];

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else
			return 0;
		if (n - i < len)
			return 0;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 ||
		    cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/* Decode s[0..n) into a new string; NULL on a malformed escape, invalid
 * UTF-8 or out of memory (*rc says which). */
static char *
aq_decode(const char *s, size_t n, int *rc)
{
	char *out;
	size_t i, j = 0;
	int b;

	if ((out = malloc(n + 1)) == NULL) {
		*rc = PH_ERR_NOMEM;
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (s[i] == '+')
			out[j++] = ' ';
		else if (s[i] == '%') {
			if (n - i < 3 || (b = hex_byte(s + i + 1)) < 0)
				goto bad;
			out[j++] = (char)b;
			i += 2;
		} else
			out[j++] = s[i];
	}
	out[j] = '\0';
	if (!aq_utf8_ok((const unsigned char *)out, j))
		goto bad;
	return out;
bad:
	free(out);
	*rc = PH_ERR_INVALID;
	return NULL;
}

int
api_form_parse(const char *body, size_t len, struct api_form **out)
{
	struct api_form *f;
	const char *p, *end, *amp, *eq;
	size_t cap = 0;
	int rc = PH_ERR_NOMEM;

	*out = NULL;
	if (len > API_FORM_MAX_BODY)
		return PH_ERR_TOOBIG;
	if (len > 0 && body == NULL)
		return PH_ERR_INVALID;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return PH_ERR_NOMEM;
	p = body;
	end = body + len;
	while (p != NULL && p < end) {
		struct api_form_pair *pair;

		amp = memchr(p, '&', (size_t)(end - p));
		if (amp == NULL)
			amp = end;
		if (amp == p) {                 /* "a=1&&b=2" */
			p = amp + 1;
			continue;
		}
		if (f->n == API_FORM_MAX_PAIRS) {
			rc = PH_ERR_TOOBIG;
			goto fail;
		}
		if (f->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct api_form_pair *np;

			np = realloc(f->pairs, ncap * sizeof(*np));
			if (np == NULL)
				goto fail;
			f->pairs = np;
			cap = ncap;
		}
		pair = &f->pairs[f->n];
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq == NULL)
			eq = amp;
		if (eq == p) {                  /* "=value": no name */
			rc = PH_ERR_INVALID;
			goto fail;
		}
		if ((pair->name = aq_decode(p, (size_t)(eq - p), &rc)) == NULL)
			goto fail;
		pair->value = aq_decode(eq < amp ? eq + 1 : amp,
		    eq < amp ? (size_t)(amp - eq - 1) : 0, &rc);
		if (pair->value == NULL) {
			free(pair->name);
			goto fail;
		}
		f->n++;
		p = amp < end ? amp + 1 : end;
	}
	*out = f;
	return 0;
fail:
	api_form_free(f);
	return rc;
}

void
api_form_free(struct api_form *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->n; i++) {
		free(f->pairs[i].name);
		free(f->pairs[i].value);
	}
	free(f->pairs);
	free(f);
}

const char *
api_form_get(const struct api_form *f, const char *name)
{
	size_t i;

	if (f == NULL || name == NULL)
		return NULL;
	for (i = 0; i < f->n; i++)
		if (strcmp(f->pairs[i].name, name) == 0)
			return f->pairs[i].value;
	return NULL;
}

/* The i-th pair in body order (the audit trail copies them all). */
int
api_form_pair(const struct api_form *f, size_t i, const char **name,
    const char **value)
{
	if (f == NULL || i >= f->n)
		return PH_ERR_NOTFOUND;
	*name = f->pairs[i].name;
	*value = f->pairs[i].value;
	return 0;
}

const char *
api_form_getf(const struct api_form *f, const char *fmt, ...)
{
	char name[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(name))
		return NULL;
	return api_form_get(f, name);
}

/* ---- XML ---------------------------------------------------------------- */

static int
aq_ok(struct api_xml *x, int rc)
{
	if (rc < 0)
		x->failed = 1;
	return x->failed ? PH_ERR_NOMEM : 0;
}

int
api_xml_open(struct api_xml *x, const char *element)
{
	return aq_ok(x, xmlTextWriterStartElement(x->w, BAD_CAST element));
}

int
api_xml_close(struct api_xml *x)
{
	return aq_ok(x, xmlTextWriterEndElement(x->w));
}

/* XML 1.0 has no place for control characters other than tab, newline
 * and carriage return, even escaped: they are written as '?' so the
 * answer stays well-formed whatever a caller stored. */
static char *
aq_clean(const char *text)
{
	const unsigned char *p;
	char *out;
	size_t i;

	for (p = (const unsigned char *)text; *p != '\0'; p++)
		if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
			break;
	if (*p == '\0')
		return NULL;
	if ((out = strdup(text)) == NULL)
		return NULL;
	for (i = 0; out[i] != '\0'; i++)
		if ((unsigned char)out[i] < 0x20 && out[i] != '\t' &&
		    out[i] != '\n' && out[i] != '\r')
			out[i] = '?';
	return out;
}

static int
aq_element(xmlTextWriterPtr w, const char *element, const char *text)
{
	char *clean;
	int rc;

	if (text == NULL)
		text = "";
	clean = aq_clean(text);
	rc = xmlTextWriterWriteElement(w, BAD_CAST element,
	    BAD_CAST (clean != NULL ? clean : text));
	free(clean);
	return rc;
}

int
api_xml_text(struct api_xml *x, const char *element, const char *text)
{
	return aq_ok(x, aq_element(x->w, element, text));
}

int
api_xml_int(struct api_xml *x, const char *element, int64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return api_xml_text(x, element, buf);
}

int
api_xml_bool(struct api_xml *x, const char *element, int v)
{
	return api_xml_text(x, element, v ? "true" : "false");
}

int
api_xml_time(struct api_xml *x, const char *element, int64_t ms)
{
	char buf[96];
	struct tm tm;
	time_t t;

	if (ms < 0)
		ms = 0;
	t = (time_t)(ms / 1000);
	if (gmtime_r(&t, &tm) == NULL)
		return aq_ok(x, -1);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return api_xml_text(x, element, buf);
}

int
api_xml_urlencoded(struct api_xml *x, const char *element, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	char *out, *o;
	int rc;

	if (text == NULL)
		text = "";
	if (strlen(text) > (SIZE_MAX - 1) / 3 ||
	    (out = malloc(strlen(text) * 3 + 1)) == NULL)
		return aq_ok(x, -1);
	for (p = (const unsigned char *)text, o = out; *p != '\0'; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		    *p == '.' || *p == '~')
			*o++ = (char)*p;
		else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	rc = api_xml_text(x, element, out);
	free(out);
	return rc;
}

/* ---- responses ---------------------------------------------------------- */

/* Take the writer's buffer as a malloc'd string. */
static int
aq_take(xmlBufferPtr buf, char **out, size_t *len)
{
	size_t n = (size_t)xmlBufferLength(buf);

	if ((*out = malloc(n + 1)) == NULL)
		return PH_ERR_NOMEM;
	memcpy(*out, xmlBufferContent(buf), n);
	(*out)[n] = '\0';
	*len = n;
	return 0;
}

static xmlTextWriterPtr
aq_writer(xmlBufferPtr buf, const char *root, const char *ns)
{
	xmlTextWriterPtr w;

	if ((w = xmlNewTextWriterMemory(buf, 0)) == NULL)
		return NULL;
	if (xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL) < 0 ||
	    xmlTextWriterStartElement(w, BAD_CAST root) < 0 ||
	    xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns", BAD_CAST ns) < 0) {
		xmlFreeTextWriter(w);
		return NULL;
	}
	return w;
}

/* AWS JSON error types that IAM and STS name otherwise. */
static const struct {
	const char *json;
	const char *query;
	int status;
} aq_codes[] = {
	{ "AccessDeniedException", "AccessDenied", 403 },
	{ "UnrecognizedClientException", "InvalidClientTokenId", 403 },
	{ "InvalidSignatureException", "SignatureDoesNotMatch", 403 },
	{ "ValidationException", "ValidationError", 400 },
	{ "InternalServerError", "ServiceFailure", 500 },
	{ "UnknownOperationException", "InvalidAction", 400 },
};

const char *
api_query_error_code(const char *type)
{
	size_t i;

	if (type == NULL || type[0] == '\0')
		return "ServiceFailure";
	for (i = 0; i < sizeof(aq_codes) / sizeof(aq_codes[0]); i++)
		if (strcmp(type, aq_codes[i].json) == 0)
			return aq_codes[i].query;
	return type;
}

int
api_query_error_xml(const char *ns, const struct api_error *err,
    const char *request_id, char **out, size_t *len, int *status_out)
{
	const char *code = err->type[0] != '\0' ? err->type : "ServiceFailure";
	int status = err->status ? err->status : 500;
	xmlBufferPtr buf;
	xmlTextWriterPtr w = NULL;
	size_t i;
	int rc = PH_ERR_NOMEM;

	*out = NULL;
	*len = 0;
	for (i = 0; i < sizeof(aq_codes) / sizeof(aq_codes[0]); i++)
		if (strcmp(code, aq_codes[i].json) == 0) {
			code = aq_codes[i].query;
			status = aq_codes[i].status;
			break;
		}
	*status_out = status;
	if ((buf = xmlBufferCreate()) == NULL)
		return PH_ERR_NOMEM;
	if ((w = aq_writer(buf, "ErrorResponse", ns)) == NULL)
		goto out;
	if (xmlTextWriterStartElement(w, BAD_CAST "Error") < 0 ||
	    xmlTextWriterWriteElement(w, BAD_CAST "Type",
	    BAD_CAST (status >= 500 ? "Receiver" : "Sender")) < 0 ||
	    xmlTextWriterWriteElement(w, BAD_CAST "Code", BAD_CAST code) < 0 ||
	    aq_element(w, "Message", err->message) < 0 ||
	    xmlTextWriterEndElement(w) < 0 ||
	    xmlTextWriterWriteElement(w, BAD_CAST "RequestId",
	    BAD_CAST request_id) < 0 ||
	    xmlTextWriterEndDocument(w) < 0)
		goto out;
	xmlFreeTextWriter(w);
	w = NULL;
	rc = aq_take(buf, out, len);
out:
	if (w != NULL)
		xmlFreeTextWriter(w);
	xmlBufferFree(buf);
	return rc;
}

/* Action names: letters only, as every IAM and STS action is. */
static int
aq_action_ok(const char *a)
{
	size_t i;

	for (i = 0; a[i] != '\0'; i++)
		if (!((a[i] >= 'A' && a[i] <= 'Z') ||
		    (a[i] >= 'a' && a[i] <= 'z')))
			return 0;
	return i > 0 && i < 64;
}

int
api_query_run(const struct api_call *c, const char *ns,
    api_query_dispatch_fn dispatch, const void *body, size_t len,
    char *action_out, size_t action_size, char **xml_out, size_t *xml_len,
    struct api_error *err)
{
	struct api_form *f = NULL;
	struct api_xml x = { NULL, 0 };
	xmlBufferPtr buf = NULL;
	char root[96];
	const char *action;
	int rc;

	*xml_out = NULL;
	*xml_len = 0;
	snprintf(action_out, action_size, "-");
	if ((rc = api_form_parse(body, len, &f)) != 0) {
		if (rc == PH_ERR_NOMEM)
			return api_error_internal(err, "query_form", rc);
		return api_error_set(err, rc == PH_ERR_TOOBIG ? 413 : 400,
		    "MalformedQueryString", rc == PH_ERR_TOOBIG ?
		    "The request body is too large." :
		    "The request body is not a well-formed form "
		    "(application/x-www-form-urlencoded, UTF-8).");
	}
	action = api_form_get(f, "Action");
	if (action == NULL || action[0] == '\0') {
		rc = api_error_set(err, 400, "MissingAction",
		    "The request must contain the parameter Action.");
		goto out;
	}
	if (!aq_action_ok(action)) {
		rc = api_error_set(err, 400, "InvalidAction",
		    "The action is not valid for this web service.");
		goto out;
	}
	snprintf(action_out, action_size, "%s", action);
	if ((buf = xmlBufferCreate()) == NULL) {
		rc = api_error_internal(err, "query_xml", PH_ERR_NOMEM);
		goto out;
	}
	snprintf(root, sizeof(root), "%sResponse", action);
	if ((x.w = aq_writer(buf, root, ns)) == NULL) {
		rc = api_error_internal(err, "query_xml", PH_ERR_NOMEM);
		goto out;
	}
	snprintf(root, sizeof(root), "%sResult", action);
	if (xmlTextWriterStartElement(x.w, BAD_CAST root) < 0)
		x.failed = 1;
	rc = dispatch(c, action, f, &x, err);
	if (rc != 0) {
		if (err->status == 0)
			rc = api_error_internal(err, "query_dispatch", rc);
		goto out;
	}
	if (x.failed || xmlTextWriterEndElement(x.w) < 0 ||
	    xmlTextWriterStartElement(x.w, BAD_CAST "ResponseMetadata") < 0 ||
	    xmlTextWriterWriteElement(x.w, BAD_CAST "RequestId",
	    BAD_CAST (c->request_id != NULL ? c->request_id : "")) < 0 ||
	    xmlTextWriterEndDocument(x.w) < 0) {
		rc = api_error_internal(err, "query_xml", PH_ERR_NOMEM);
		goto out;
	}
	xmlFreeTextWriter(x.w);
	x.w = NULL;
	if ((rc = aq_take(buf, xml_out, xml_len)) != 0)
		rc = api_error_internal(err, "query_xml", rc);
out:
	if (x.w != NULL)
		xmlFreeTextWriter(x.w);
	if (buf != NULL)
		xmlBufferFree(buf);
	api_form_free(f);
	return rc;
}
