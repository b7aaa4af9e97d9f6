/* fuzz_record: the raw record reader (src/common/record.c) on any bytes.
 * Every frame it returns lies inside the input, and re-encoding what it
 * read gives back the same bytes (frames) or the same fields (header).
 * Input: a record (magic, header line, frames) or anything else. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_header(const struct record_header *h)
{
	struct record_header h2;
	struct record_reader r;
	struct buf b;

	buf_init(&b, 0);
	if (record_header_encode(h, &b) != 0)
		abort();
	record_reader_init(&r, b.data, b.len);
	if (record_read_header(&r, &h2) != 0 || r.off != b.len ||
	    strcmp(h->session_id, h2.session_id) != 0 ||
	    strcmp(h->instance_id, h2.instance_id) != 0 ||
	    strcmp(h->session_type, h2.session_type) != 0 ||
	    strcmp(h->run_as, h2.run_as) != 0 ||
	    h->start_ms != h2.start_ms || h->width != h2.width ||
	    h->height != h2.height)
		abort();
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct record_header h;
	struct record_reader r;
	struct record_frame f;
	struct buf b;
	size_t start;
	int rc;

	record_reader_init(&r, data, size);
	if (record_read_header(&r, &h) != 0) {
		/* Frames alone, as a reader resuming mid-record sees them. */
		record_reader_init(&r, data, size);
	} else
		check_header(&h);
	buf_init(&b, 0);
	for (;;) {
		start = r.off;
		if ((rc = record_read_frame(&r, &f)) != 1)
			break;
		if (r.off <= start || r.off > size || f.len > RECORD_FRAME_MAX ||
		    (f.len > 0 && (f.data < data ||
		    f.data + f.len > data + size)))
			abort();
		buf_reset(&b);
		if (record_frame_encode(&b, f.type, f.t_us, f.data,
		    f.len) != 0 || b.len != r.off - start ||
		    memcmp(b.data, data + start, b.len) != 0)
			abort();
	}
	if (rc == 0 && !r.partial && r.off != size)
		abort();
	buf_free(&b);
	return 0;
}
