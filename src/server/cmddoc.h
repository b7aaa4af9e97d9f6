/* cmddoc: Command documents as SendCommand uses them: look one up (name
 * or ARN, version), read its content (JSON or YAML), check and complete
 * the caller's Parameters against the document's parameter definitions,
 * render the DocumentContent each agent receives, and tell which
 * platforms it runs on (the steps' plugins and their precondition). */
#ifndef PORTHOLE_SERVER_CMDDOC_H
#define PORTHOLE_SERVER_CMDDOC_H

#include <jansson.h>

#include "server/api.h"

struct cmddoc {
	char name[129];
	char version[16];      /* the version resolved, e.g. "3" */
	char hash[65];         /* SHA-256 hex of the stored content */
	json_t *content;       /* the content, parsed (YAML read as JSON) */
};

/* Look up a Command document: name (or arn:...:document/NAME) at version
 * (NULL or "$DEFAULT": the default version; "$LATEST"; a number).
 * InvalidDocument if it does not exist or is not a Command document,
 * InvalidDocumentVersion for an unknown version. 0, or a negative code
 * with err set. */
int cmddoc_load(const struct api_call *c, const char *name,
    const char *version, struct cmddoc *out, struct api_error *err);
void cmddoc_clear(struct cmddoc *d);

/* SendCommand's Parameters (name -> list of strings; NULL: none) checked
 * against the document: unknown names, missing required values, type
 * (String, StringList, Integer, Boolean, StringMap, MapList),
 * allowedValues, allowedPattern; defaults filled in. *resolved gets
 * name -> list of strings for every defined parameter. InvalidParameters
 * with AWS's wording on failure. */
int cmddoc_resolve_params(const struct cmddoc *d, json_t *given,
    json_t **resolved, struct api_error *err);

/* The DocumentContent for agent_job: the document with every
 * {{ name }} replaced (docparams_substitute). New reference. */
json_t *cmddoc_render(const struct cmddoc *d, json_t *resolved);

/* 1 if at least one step of the document runs on platform_type ("Linux",
 * "Windows", "MacOS"): its plugin exists there and its precondition
 * (platformType) allows it; 0 if none does. */
int cmddoc_runs_on(const struct cmddoc *d, const char *platform_type);

/* A document's content in its format (JSON, YAML; NULL: JSON) as a JSON
 * tree, or NULL with why filled in. */
json_t *cmddoc_parse(const char *format, const char *content, size_t len,
    char *why, size_t whysz);
/* 1 if an allowedPattern compiles (POSIX extended, regcomp) and is cheap
 * enough to run: at most 1,024 characters, repetition bounds of at most
 * 255 that expand it to at most 1,000 atoms, 32 nested groups. */
int cmddoc_pattern_ok(const char *pattern);
/* cmddoc_runs_on for a parsed content (DescribeDocument's PlatformTypes). */
int cmddoc_content_runs_on(json_t *content, const char *platform_type);
/* The platforms a plugin (aws:runShellScript, ...) exists on: 1 if it runs
 * on platform_type, 0 if not or if the plugin is unknown. */
int cmddoc_plugin_runs_on(const char *action, const char *platform_type);

#endif
