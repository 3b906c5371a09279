// tensor dump: tensors' values as text, one line each.
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "libcommon/util/err.h"
#include "formats/half.h"
#include "cmd.h"

static const char *opt_tensor;
static long opt_index = -1;

static void dump_opts(int c, const char *arg)
{
	if (c == 't')
		opt_tensor = arg;
	else if (c == 'r')
		opt_index = parse_long("-r", arg, 0, LONG_MAX);
}

static void dump_tensor(const Record *r, const Tensor *t)
{
	char sh[TENSOR_SHAPE_STR_CAP];
	printf("%llu %s %s %s", (unsigned long long)r->index, t->name, dtype_name(t->dtype),
	       SHAPE(t, sh));
	const unsigned char *p = t->data;
	if (t->dtype == DT_STR) {
		printf(" \"");
		for (size_t i = 0; i < t->nbytes; i++) {
			unsigned char c = p[i];
			if (c == '"' || c == '\\')
				printf("\\%c", c);
			else if (c < 0x20 || c == 0x7f)
				printf("\\x%02x", c);
			else
				putchar(c);
		}
		printf("\"\n");
		return;
	}
	int64_t n = tensor_numel(t);
	for (int64_t i = 0; i < n; i++) {
		switch (t->dtype) {
		case DT_U8: printf(" %u", p[i]); break;
		case DT_I8: printf(" %d", (int8_t)p[i]); break;
		case DT_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); printf(" %d", v); break; }
		case DT_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); printf(" %lld", (long long)v); break; }
		case DT_F16: { uint16_t v; memcpy(&v, p + 2 * i, 2); printf(" %.9g", f16_to_f32(v)); break; }
		case DT_BF16: { uint16_t v; memcpy(&v, p + 2 * i, 2); printf(" %.9g", bf16_to_f32(v)); break; }
		case DT_F32: { float v; memcpy(&v, p + 4 * i, 4); printf(" %.9g", v); break; }
		case DT_F64: { double v; memcpy(&v, p + 8 * i, 8); printf(" %.17g", v); break; }
		}
	}
	putchar('\n');
}

int cmd_dump(int argc, char **argv)
{
	int i = cmd_getopt(argc, argv, "+t:r:", NULL, dump_opts);
	const char *in = one_input(argc, argv, i);
	Stream *s = xstream_open_read(in);
	Record r;
	record_init(&r);
	int found = opt_tensor == NULL;
	while (xstream_read_record(s, &r)) {
		if (opt_index >= 0 && r.index != (uint64_t)opt_index)
			continue;
		for (int k = 0; k < r.n; k++)
			if (!opt_tensor || strcmp(r.t[k].name, opt_tensor) == 0) {
				dump_tensor(&r, &r.t[k]);
				found = 1;
			}
		if (opt_index >= 0)
			break;   // the rest of the stream is not needed
	}
	if (opt_index >= 0 && (uint64_t)opt_index >= stream_count(s))
		die("%s: no record %ld (the stream has %llu)", stream_path(s), opt_index,
		    (unsigned long long)stream_count(s));
	if (!found && stream_count(s))
		die("%s: no tensor %s", stream_path(s), opt_tensor);
	record_free(&r);
	stream_close(s);
	return 0;
}
