/* fuzz_records_render: portholed's renderers (src/server/records_render.c)
 * on any bytes: the asciicast and the transcript of whatever record the
 * input is, and the incremental UTF-8 repair over the input cut in two
 * at a point the input's first byte picks. The repair's output must be
 * valid UTF-8 (jansson accepts it); nothing may read past the input.
 * Input: a record (see corpus/record) or anything else. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/buf.h"
#include "server/records_render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct render_stats st;
	struct utf8_fix u;
	struct buf b;
	uint8_t *copy;
	size_t cut;
	json_t *s;
	FILE *out;

	/* An exact-size copy, so a read past the end is ASan's. */
	if ((copy = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	if ((out = fopen("/dev/null", "w")) != NULL) {
		(void)records_render_cast(copy, size, out, &st);
		(void)records_render_log(copy, size, out, &st);
		fclose(out);
	}
	memset(&u, 0, sizeof(u));
	buf_init(&b, 0);
	cut = size > 0 ? copy[0] % (size + 1) : 0;
	if (utf8_fix_append(&u, copy, cut, 0, &b) != 0 ||
	    utf8_fix_append(&u, copy + cut, size - cut, 1, &b) != 0 ||
	    u.nheld != 0)
		abort();
	s = json_stringn(b.len > 0 ? (const char *)b.data : "", b.len);
	if (s == NULL)
		abort();
	json_decref(s);
	buf_free(&b);
	free(copy);
	return 0;
}
