/* jsonci: JSON object lookups that ignore the case of keys, as the
 * official agent's decoder does (spec 8.1: "sessionId" fills SessionId). */
#ifndef PORTHOLE_AGENT_JSONCI_H
#define PORTHOLE_AGENT_JSONCI_H

#include <jansson.h>

/* The member of obj named key: an exact match first, else the first key
 * equal to it ignoring ASCII case. NULL if obj is not an object or has no
 * such key. The reference is borrowed. */
json_t *agent_json_get(const json_t *obj, const char *key);
/* The string member, or NULL if absent or not a string. */
const char *agent_json_str(const json_t *obj, const char *key);
/* A "bool*" member (spec 9.1): JSON true/false or the strings "true",
 * "false" and "" (false). *out = def when absent or null. PH_ERR_INVALID for
 * any other value. */
int agent_json_bool(const json_t *obj, const char *key, int def, int *out);

#endif
