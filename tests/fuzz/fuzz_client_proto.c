/* fuzz_client_proto: the client's parsers of what the agent and portholed
 * send on the data channel (spec 3.5, 5, 6.4, 7.3): ChannelClosed,
 * HandshakeRequest (parsed and answered, with and without a KMS outcome),
 * EncChallengeRequest, HandshakeComplete and ExitCode. Input: one payload,
 * given to every parser. Text that reaches the terminal must come out
 * with no control characters but \n, \r and \t. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/proto.h"
#include "common/buf.h"
#include "fuzzin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_text(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\r' &&
		    *s != '\t')
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client_kms_outcome ok = { 1, "AQIDBAUGBwg=", 1, NULL };
	struct client_kms_outcome bad = { 0, NULL, 0, "KMS said no" };
	struct client_handshake hs;
	struct client_closed cc;
	struct buf out;
	char *msg = NULL;
	int code;

	memset(&cc, 0, sizeof(cc));
	if (client_proto_parse_closed(&cc, data, size) == 0) {
		check_text(cc.output);
		client_closed_free(&cc);
	}
	buf_init(&out, (size_t)1 << 20);
	(void)client_proto_handshake_parse(data, size, &hs);
	(void)client_proto_handshake_response(data, size, "1.2.700.0", &ok,
	    &hs, &out);
	buf_reset(&out);
	(void)client_proto_handshake_response(data, size, "1.2.700.0", &bad,
	    &hs, &out);
	buf_reset(&out);
	(void)client_proto_handshake_response(data, size, "1.2.700.0", NULL,
	    &hs, &out);
	buf_reset(&out);
	(void)client_proto_parse_challenge(data, size, &out);
	buf_free(&out);
	if (client_proto_parse_handshake_complete(data, size, &msg) == 0) {
		check_text(msg);
		free(msg);
	}
	if (client_proto_parse_exit_code(data, size, &code) == 0 &&
	    (code < 0 || code > 255))
		abort();
	return 0;
}
