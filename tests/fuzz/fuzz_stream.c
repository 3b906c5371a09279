// libFuzzer harness for the stream reader: every input must be read to a
// clean end or a clean error, never a crash, a leak or an allocation beyond
// the input's size.  Each input is read twice: as given (mostly CRC
// failures) and with every chunk's CRC recomputed, so that the fuzzer
// reaches the structural checks behind the checksum.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "formats/crc32.h"
#include "formats/stream.h"
#include "libcommon/util/le.h"

static void read_all(const uint8_t *data, size_t size)
{
	Stream *s = stream_open_mem(data, size, "fuzz");
	if (!s) {
		(void)stream_last_error();
		return;
	}
	Record r;
	record_init(&r);
	volatile uint64_t sink = 0;
	while (stream_read_record(s, &r) > 0) {
		for (int i = 0; i < r.n; i++) {
			const Tensor *t = &r.t[i];
			sink += (uint64_t)tensor_numel(t) + t->nbytes;
			if (t->nbytes)   // touch first and last data bytes
				sink += ((const uint8_t *)t->data)[0] +
				        ((const uint8_t *)t->data)[t->nbytes - 1];
			if (t->dtype == DT_STR) {
				char buf[16];
				tensor_str(t, buf, sizeof buf);
			}
			if (record_find(&r, t->name) != t)
				abort();   // names are unique within a record
		}
	}
	for (int i = 0; i < stream_meta_len(s); i++) {
		const char *k = stream_meta_key(s, i);
		if (stream_meta_get(s, k) != stream_meta_val(s, i))
			abort();
		sink += strlen(stream_meta_val(s, i));
	}
	(void)stream_error(s);
	stream_close(s);
	record_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_all(data, size);
	if (size < 64 + 32)
		return 0;
	uint8_t *c = malloc(size);
	memcpy(c, data, size);
	for (size_t off = 64; off + 32 <= size;) {
		uint64_t len = le_get64(c + off + 8);
		if (len < 32 || len > size - off)
			break;
		uint32_t crc = crc32_update(0, c + off + 8, (size_t)len - 8);
		le_put32(c + off + 4, crc);
		off += (size_t)len;
	}
	read_all(c, size);
	free(c);
	return 0;
}
