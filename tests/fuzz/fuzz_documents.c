/* fuzz_documents: SSM documents and their parameters. The content check
 * of CreateDocument/UpdateDocument (JSON syntax, the Session and Command
 * schemas) and the resolution of {{ parameters }} that StartSession and
 * SendCommand perform, which also runs on documents the check would
 * refuse (built-in or older ones). Version comparison too.
 *
 * Input: selector byte (document type and format), the request's
 * Parameters as length-prefixed JSON, then the document content. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "server/api.h"
#include "server/api_documents.h"
#include "server/api_ssm.h"
#include "fuzzin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const doc_types[] = { "Session", "Command" };
static const char *const formats[] = { NULL, "JSON", "YAML", "TEXT" };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzzin in = { data, size };
	struct api_error err;
	json_t *doc, *params, *d_out = NULL, *p_out = NULL;
	const uint8_t *pp, *content;
	char *a, *b, *nl;
	size_t pn, cn;
	uint8_t sel;

	sel = fuzzin_u8(&in);
	pp = fuzzin_bytes(&in, 4096, &pn);
	content = fuzzin_rest(&in, &cn);
	memset(&err, 0, sizeof(err));
	if (api_documents_check_content(doc_types[sel & 1],
	    formats[(sel >> 1) & 3], (const char *)content, cn, &err) != 0 &&
	    (err.status == 0 || err.type[0] == '\0'))
		abort();	/* a refusal is an AWS error */
	doc = json_loadb((const char *)content, cn, 0, NULL);
	params = json_loadb((const char *)pp, pn, 0, NULL);
	if (params == NULL || !json_is_object(params)) {
		json_decref(params);
		params = json_object();
	}
	if (doc != NULL && params != NULL &&
	    api_ssm_resolve_document("Fuzz-Document", doc, params, &d_out,
	    &p_out, &err) == 0) {
		if (d_out == NULL || p_out == NULL)
			abort();
		json_decref(d_out);
		json_decref(p_out);
	}
	json_decref(doc);
	json_decref(params);
	/* Dotted versions: "a\nb" from the parameters' bytes. */
	if ((a = strndup((const char *)pp, pn)) != NULL) {
		if ((nl = strchr(a, '\n')) != NULL) {
			*nl = '\0';
			b = nl + 1;
			if ((api_documents_version_cmp(a, b) > 0) !=
			    (api_documents_version_cmp(b, a) < 0))
				abort();	/* antisymmetric */
		}
		free(a);
	}
	return 0;
}
