/* fuzz_cmddoc: Command documents as SendCommand uses them. The content is
 * read as JSON or YAML (libyaml, docyaml.c), checked as CreateDocument
 * checks it, then, accepted or not, its platforms are computed, the
 * parameters resolved against it and the document rendered with
 * docparams_substitute, as the agent's copy is. Checks: a refusal is an
 * AWS error; content the check accepts parses; a resolution that succeeds
 * gives a list of strings for every defined parameter.
 *
 * Input: selector byte (bit 0: YAML, else JSON), SendCommand's Parameters
 * as length-prefixed JSON, then the document content. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/docparams.h"
#include "server/api.h"
#include "server/api_documents.h"
#include "server/cmddoc.h"
#include "fuzzin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_resolved(const struct cmddoc *d, json_t *resolved)
{
	json_t *defs = json_object_get(d->content, "parameters"), *v, *x;
	const char *name;
	size_t i;

	json_object_foreach(defs, name, v) {
		x = json_object_get(resolved, name);
		if (!json_is_array(x))
			abort();
		json_array_foreach(x, i, v)
			if (!json_is_string(v))
				abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzzin in = { data, size };
	struct api_error err;
	struct cmddoc d;
	json_t *params, *resolved = NULL, *out, *copy;
	const uint8_t *pp, *content;
	const char *format;
	char why[160];
	size_t pn, cn;
	int ok;

	format = (fuzzin_u8(&in) & 1) ? "YAML" : "JSON";
	pp = fuzzin_bytes(&in, 4096, &pn);
	content = fuzzin_rest(&in, &cn);
	memset(&err, 0, sizeof(err));
	ok = api_documents_check_content("Command", format,
	    (const char *)content, cn, &err) == 0;
	if (!ok && (err.status != 400 || err.type[0] == '\0'))
		abort();	/* a refusal is an AWS error */
	memset(&d, 0, sizeof(d));
	d.content = cmddoc_parse(format, (const char *)content, cn, why,
	    sizeof(why));
	if (ok && !json_is_object(d.content))
		abort();	/* accepted content must parse */
	if (!json_is_object(d.content)) {
		json_decref(d.content);
		return 0;
	}
	(void)cmddoc_runs_on(&d, "Linux");
	(void)cmddoc_runs_on(&d, "Windows");
	(void)cmddoc_runs_on(&d, "MacOS");
	params = json_loadb((const char *)pp, pn, 0, NULL);
	memset(&err, 0, sizeof(err));
	if (cmddoc_resolve_params(&d, params, &resolved, &err) == 0) {
		check_resolved(&d, resolved);
		out = cmddoc_render(&d, resolved);
		json_decref(out);
		json_decref(resolved);
	} else if (resolved != NULL || err.type[0] == '\0') {
		abort();
	}
	/* The substitution on its own, with the raw parameters. */
	if ((copy = json_deep_copy(d.content)) != NULL) {
		(void)docparams_substitute(copy, params, 64 * 1024);
		json_decref(copy);
	}
	json_decref(params);
	cmddoc_clear(&d);
	return 0;
}
