#include "agent/jsonci.h"

#include <strings.h>

#include "common/err.h"

json_t *
agent_json_get(const json_t *obj, const char *key)
{
	const char *k;
	json_t *v;

	if (!json_is_object(obj) || key == NULL)
		return NULL;
	/* jansson's getters take non-const objects but do not modify them. */
	v = json_object_get(obj, key);
	if (v != NULL)
		return v;
	json_object_foreach((json_t *)obj, k, v) {
		if (strcasecmp(k, key) == 0)
			return v;
	}
	return NULL;
}

const char *
agent_json_str(const json_t *obj, const char *key)
{
	json_t *v = agent_json_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

int
agent_json_bool(const json_t *obj, const char *key, int def, int *out)
{
	json_t *v = agent_json_get(obj, key);
	const char *s;

	if (v == NULL || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	if (json_is_string(v)) {
		s = json_string_value(v);
		if (strcasecmp(s, "true") == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, "false") == 0 || s[0] == '\0') {
			*out = 0;
			return 0;
		}
	}
	return PH_ERR_INVALID;
}
