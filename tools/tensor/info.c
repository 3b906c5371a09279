// tensor info: records, schema, metadata and tensors of a stream.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "cmd.h"

static void print_meta(const char *k, const char *v)
{
	printf("  %s=", k);
	print_escaped(v, 200);
	putchar('\n');
}

int cmd_info(int argc, char **argv)
{
	int i = cmd_getopt(argc, argv, "+", NULL, no_opts);
	const char *in = one_input(argc, argv, i);
	Stream *s = xstream_open_read(in);
	StrMap header;
	kv_take_header(&header, s);
	Record r;
	record_init(&r);
	Schema sch = { 0, NULL };
	int have = 0;
	uint64_t differs_at = 0;
	char why[600] = "";
	int *varies = NULL;
	while (xstream_read_record(s, &r)) {
		if (!have) {
			schema_take(&sch, &r);
			varies = xcalloc((size_t)r.n + 1, sizeof(int));
			have = 1;
			continue;
		}
		char buf[600];
		const char *d = schema_diff(&sch, &r, 0, buf, sizeof buf);
		if (d && !why[0]) {
			differs_at = r.index;
			snprintf(why, sizeof why, "%s", d);
		}
		if (!d)
			for (int k = 0; k < r.n; k++)
				if (r.t[k].dtype == DT_STR && r.t[k].ndim &&
				    memcmp(r.t[k].dims, sch.t[k].dims, sizeof(int64_t) * (size_t)r.t[k].ndim))
					varies[k] = 1;
	}
	printf("file: %s\n", stream_path(s));
	printf("format: cnnpipe tensor stream, version 1\n");
	printf("records: %llu\n", (unsigned long long)stream_count(s));
	if (!have)
		printf("schema: none (no records)\n");
	else if (why[0])
		printf("schema: varies (record %llu: %s)\n", (unsigned long long)differs_at, why);
	else
		printf("schema: uniform\n");
	printf("checksums: ok\n");
	printf("metadata:\n");
	for (size_t k = 0; k < header.n; k++)
		print_meta(header.e[k].key, header.e[k].val);
	if (stream_trailer_len(s)) {
		printf("end metadata:\n");
		for (int k = 0; k < stream_trailer_len(s); k++)
			print_meta(stream_trailer_key(s, k), stream_trailer_val(s, k));
	}
	if (have) {
		printf("tensors:\n");
		for (int k = 0; k < sch.n; k++) {
			char sh[TENSOR_SHAPE_STR_CAP];
			printf("  %s %s %s\n", sch.t[k].name, dtype_name(sch.t[k].dtype),
			       varies[k] ? "(varies)" : SHAPE(&sch.t[k], sh));
		}
	}
	free(varies);
	free(sch.t);
	strmap_free(&header);
	record_free(&r);
	stream_close(s);
	return 0;
}
