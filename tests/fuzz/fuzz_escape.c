/* fuzz_escape: the client's escape-sequence filter (~. ~? ~~) and the
 * PORTHOLE_ESCAPE_CHAR parser. Input: a byte choosing the escape
 * character, then keyboard bytes fed in chunks whose sizes come from the
 * input. The filter must never write more than the room it promises
 * (n + 1) and must consume every byte it is given across calls. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/escape.h"
#include "fuzzin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzzin f = { data, size };
	struct client_escape e;
	enum client_escape_event ev;
	uint8_t *out;
	char help[512], name[8], *s;
	size_t chunk, outlen, used, total = 0, guard = 0;
	const uint8_t *p;
	int ch, sel;

	sel = fuzzin_u8(&f);
	ch = sel == 0xff ? -1 : sel == 0xfe ? CLIENT_ESCAPE_DEFAULT : sel;
	client_escape_init(&e, ch);
	client_escape_help(ch, help, sizeof(help));
	client_escape_name(ch, name, sizeof(name));
	while (f.n > 0 && guard++ < 4096) {
		chunk = fuzzin_u8(&f) % 64 + 1;
		if (chunk > f.n)
			chunk = f.n;
		p = f.p;
		f.p += chunk;
		f.n -= chunk;
		/* Exactly the promised room, so ASan sees any overrun. */
		if ((out = malloc(chunk + 1)) == NULL)
			return 0;
		while (chunk > 0) {
			outlen = 0;
			used = client_escape_filter(&e, p, chunk, out, &outlen,
			    &ev);
			if (used > chunk || outlen > chunk + 1 ||
			    (used < chunk && ev == CLIENT_ESCAPE_NONE))
				abort();
			if (used == 0 && ev == CLIENT_ESCAPE_NONE)
				abort();
			p += used;
			chunk -= used;
			total += used;
		}
		free(out);
	}
	(void)total;
	/* The rest of the input as an escape character setting. */
	if ((s = strndup((const char *)data, size < 16 ? size : 16)) != NULL) {
		(void)client_escape_parse(s, &ch);
		free(s);
	}
	return 0;
}
