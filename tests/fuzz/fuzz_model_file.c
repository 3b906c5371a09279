// libFuzzer harness for the model-file reader (model_read: metadata, the
// network it describes, built no larger than its record allows, then filled
// from the record and checked).  Every input must end in a model or a clean
// error, never a crash, an exit, a leak or an allocation beyond the caps.
// As in fuzz_stream, each input is read as given and with its chunks' CRCs
// recomputed, so that mutations reach the model checks behind the checksum.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "formats/crc32.h"
#include "formats/stream.h"
#include "libcommon/engine/model_check.h"
#include "libcommon/engine/model_file.h"
#include "libcommon/util/le.h"

static void read_model(const uint8_t *data, size_t size)
{
	Stream *s = stream_open_mem(data, size, "fuzz.model");
	if (!s)
		return;
	Model m;
	char err[1024];
	if (model_read(&m, s, "model", err, sizeof err) == 0) {
		// what the reader accepts passes the writer's check too
		if (model_check(&m, err, sizeof err) < 0)
			abort();
		model_free(&m);
	}
	stream_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_model(data, size);
	if (size < 64 + 32)
		return 0;
	uint8_t *c = malloc(size);
	memcpy(c, data, size);
	for (size_t off = 64; off + 32 <= size;) {
		uint64_t len = le_get64(c + off + 8);
		if (len < 32 || len > size - off)
			break;
		le_put32(c + off + 4, crc32_update(0, c + off + 8, (size_t)len - 8));
		off += (size_t)len;
	}
	read_model(c, size);
	free(c);
	return 0;
}
