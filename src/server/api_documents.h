/* api_documents: SSM documents with versions (CreateDocument,
 * UpdateDocument, GetDocument, DescribeDocument, ListDocuments,
 * ListDocumentVersions, UpdateDocumentDefaultVersion, DeleteDocument) and
 * the account's Session Manager preferences, the SSM-SessionManagerRunShell
 * document, applied to new sessions (spec 9.1). Request and response shapes
 * as botocore's ssm 2014-11-06 model; api_ssm_dispatch routes the actions
 * here. */
#ifndef PORTHOLE_API_DOCUMENTS_H
#define PORTHOLE_API_DOCUMENTS_H

#include <stddef.h>

#include <jansson.h>

#include "server/api.h"

/* The preferences document (spec 9.1, 9.4). */
#define API_DOCUMENTS_PREFS "SSM-SessionManagerRunShell"
/* AWS: a document's content is at most 64 KB. */
#define API_DOCUMENTS_MAX_BYTES ((size_t)64 * 1024)
/* The oldest SSM Agent that can encrypt sessions with KMS (AWS). */
#define API_DOCUMENTS_KMS_MIN_AGENT "2.3.68.0"

/* The actions, with api_ssm's handler signature: in is the request
 * object, out the (empty) response object to fill. 0, or a negative code
 * with err set. */
int api_documents_create(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err);
int api_documents_update(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err);
int api_documents_get(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err);
int api_documents_describe(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err);
int api_documents_list(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err);
int api_documents_list_versions(const struct api_call *c, json_t *in,
    json_t *out, struct api_error *err);
int api_documents_update_default_version(const struct api_call *c,
    json_t *in, json_t *out, struct api_error *err);
int api_documents_delete(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err);

/* Check a document's content for its type: size (MaxDocumentSizeExceeded),
 * JSON or YAML syntax (YAML through libyaml, docyaml.h), and every rule of
 * the Session or Command schema (InvalidDocumentContent naming each
 * violation, or InvalidDocumentSchemaVersion; docs/documents.md). format
 * is JSON, YAML or TEXT (NULL: JSON). 0, or PH_ERR_INVALID with err
 * set. */
int api_documents_check_content(const char *document_type,
    const char *format, const char *content, size_t len,
    struct api_error *err);

/* StartSession: fill the session document's "inputs" with the account's
 * preferences (the inputs of SSM-SessionManagerRunShell's default
 * version) for every key the document does not set itself, and write the
 * minute values as strings, as the agent reads them. doc is changed in
 * place. 0, or a negative code with err set. */
int api_documents_apply_preferences(const struct api_call *c,
    const char *document_name, json_t *doc, struct api_error *err);

/* StartSession: may this target run a session of this (resolved)
 * document? A kmsKeyId needs an agent of API_DOCUMENTS_KMS_MIN_AGENT or
 * later (Port sessions are never encrypted). 0, or InvalidDocument. */
int api_documents_check_target(const struct api_call *c, const char *target,
    json_t *doc, struct api_error *err);

/* Compare dotted versions numerically, a missing part counting as 0:
 * negative, 0 or positive like strcmp. */
int api_documents_version_cmp(const char *a, const char *b);

#endif
