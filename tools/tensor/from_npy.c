// tensor from-npy: .npy arrays (the first dimension the records) → a stream.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/util/io.h"
#include "formats/npy.h"
#include "cmd.h"

static const char *opt_out = "-", *opt_name = "x";
static int n_meta;
static char **opt_meta;

static void fromnpy_opts(int c, const char *arg)
{
	if (c == 'n')
		opt_name = arg;
	else if (c == 'o')
		opt_out = arg;
	else if (c == 'm') {
		if (!strchr(arg, '='))
			die_usage("-m %s: expected KEY=VALUE", arg);
		opt_meta = xrealloc(opt_meta, sizeof(char *) * (size_t)(n_meta + 1));
		opt_meta[n_meta++] = (char *)arg;
	}
}

typedef struct {
	const char *name, *path;
	FILE *f;
	NpyHeader h;
	size_t row;   // bytes per record
} NpyIn;

static const char *label_of(const NpyIn *in)
{
	return strcmp(in->path, "-") ? in->path : "standard input";
}

// Opens input k (operand a) and checks it against the earlier ones; adds
// its record bytes to *total.
static void open_input(NpyIn *in, int k, char *a, uint64_t *total)
{
	if (k == 0) {
		in[k].name = opt_name;
		in[k].path = a;
	} else {
		char *eq = strchr(a, '=');
		if (!eq || eq == a)
			die_usage("from-npy: %s: expected NAME=FILE.npy after the first input", a);
		*eq = 0;
		in[k].name = a;
		in[k].path = eq + 1;
	}
	for (int j = 0; j < k; j++)
		if (strcmp(in[j].name, in[k].name) == 0)
			die_usage("from-npy: tensor name %s used twice", in[k].name);
	for (int j = 0; j < k; j++)
		if (strcmp(in[k].path, "-") == 0 && strcmp(in[j].path, "-") == 0)
			die_usage("from-npy: standard input named more than once");
	in[k].f = xfopen(in[k].path, "rb");
	const char *label = label_of(&in[k]);
	char err[300];
	if (npy_read_header(in[k].f, &in[k].h, err, sizeof err) < 0)
		die("%s: %s", label, err);
	NpyHeader *h = &in[k].h;
	if (h->ndim < 1)
		die("%s: a 0-d array has no leading record dimension", label);
	if (h->ndim - 1 > TENSOR_MAX_DIMS)
		die("%s: %d dimensions per record (at most %d)", label, h->ndim - 1, TENSOR_MAX_DIMS);
	if (h->dims[0] != in[0].h.dims[0])
		die("%s: %lld records, %s has %lld", label, (long long)h->dims[0], in[0].path,
		    (long long)in[0].h.dims[0]);
	uint64_t row = dtype_size(h->dtype);
	for (int d = 1; d < h->ndim; d++) {
		if (h->dims[d] == 0)
			die("%s: dimension %d is zero (streams have no empty tensors)", label, d);
		if ((uint64_t)h->dims[d] >= ((uint64_t)1 << 40) ||
		    row > STREAM_MAX_RECORD_BYTES / (uint64_t)h->dims[d])
			die("%s: a record would exceed %llu bytes", label,
			    (unsigned long long)STREAM_MAX_RECORD_BYTES);
		row *= (uint64_t)h->dims[d];
	}
	*total += row + 64;
	if (*total > STREAM_MAX_RECORD_BYTES)
		die("%s: a record would exceed %llu bytes", label,
		    (unsigned long long)STREAM_MAX_RECORD_BYTES);
	in[k].row = (size_t)row;
}

int cmd_from_npy(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "meta", required_argument, NULL, 'm' },
		{ "name", required_argument, NULL, 'n' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	int i = cmd_getopt(argc, argv, "+n:m:o:", lo, fromnpy_opts);
	if (i == argc)
		die_usage("from-npy: no input");
	check_stream_out(opt_out);
	int nin = argc - i;
	NpyIn *in = xcalloc((size_t)nin, sizeof(NpyIn));
	uint64_t total = 0;
	for (int k = 0; k < nin; k++)
		open_input(in, k, argv[i + k], &total);
	Stream *w = xstream_open_write(opt_out);
	for (int k = 0; k < n_meta; k++) {
		char *eq = strchr(opt_meta[k], '=');
		*eq = 0;
		stream_meta_set(w, opt_meta[k], eq + 1);
	}
	xstream_write_header(w);
	Record r;
	record_init(&r);
	for (int64_t row = 0; row < in[0].h.dims[0]; row++) {
		record_clear(&r);
		for (int k = 0; k < nin; k++)
			record_add(&r, in[k].name, in[k].h.dtype, in[k].h.ndim - 1, in[k].h.dims + 1, NULL);
		for (int k = 0; k < nin; k++)
			if (read_full(in[k].f, r.t[k].data, in[k].row, label_of(&in[k])) != in[k].row)
				die("%s: truncated .npy data (record %lld of %lld)", label_of(&in[k]),
				    (long long)row, (long long)in[0].h.dims[0]);
		xstream_write_record(w, &r);
	}
	for (int k = 0; k < nin; k++) {
		char extra;
		if (read_full(in[k].f, &extra, 1, label_of(&in[k])))
			die("%s: data after the array's end", label_of(&in[k]));
		if (in[k].f != stdin)
			fclose(in[k].f);
	}
	xstream_finish(w);
	record_free(&r);
	free(in);
	free(opt_meta);
	return 0;
}
