/* docyaml: a document's YAML content read into the same jansson tree its
 * JSON form gives, with libyaml's parser. Quoted scalars stay strings;
 * plain ones that YAML's core schema reads as null, a boolean or a
 * decimal integer become those JSON types (as AWS converts YAML
 * documents), every other scalar a string (so schemaVersion: 2.2 is
 * "2.2"). Aliases, several documents in one stream, non-scalar or
 * duplicate keys are refused; nesting and node count are bounded. */
#ifndef PORTHOLE_SERVER_DOCYAML_H
#define PORTHOLE_SERVER_DOCYAML_H

#include <stddef.h>

#include <jansson.h>

#define DOCYAML_MAX_DEPTH 64
#define DOCYAML_MAX_NODES 100000

/* The tree, or NULL with why (a sentence with the line) filled in. */
json_t *docyaml_load(const char *s, size_t len, char *why, size_t whysz);

#endif
