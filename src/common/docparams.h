/* docparams: {{ name }} parameter references in SSM documents, shared by
 * portholed (rendering a Command document for its targets) and the agent
 * (which substitutes whatever references the DocumentContent it receives
 * still holds, as AWS's agent does; spec 8.2). */
#ifndef PORTHOLE_COMMON_DOCPARAMS_H
#define PORTHOLE_COMMON_DOCPARAMS_H

#include <jansson.h>

/* Replace parameter references in every string of doc (not in its
 * "parameters" definitions), in place. params maps name -> value (a string
 * or a list of strings). A string that is exactly "{{ name }}" (spaces
 * optional) becomes the value with its JSON type, so a list stays a list;
 * a reference inside a longer string is replaced by the value as text, a
 * non-string JSON-encoded (spec 8.2). References to unknown names and {{ssm:...}} are left as they
 * are. 0, or PH_ERR_NOMEM / PH_ERR_INVALID (depth over 64 or a result
 * over max_bytes). */
int docparams_substitute(json_t *doc, json_t *params, size_t max_bytes);

#endif
