// tensor to-npy: one numeric tensor of every record → a .npy array with the
// records as its first dimension.
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "libcommon/util/err.h"
#include "formats/npy.h"
#include "cmd.h"

static const char *opt_out = "-", *opt_tensor;

static void tonpy_opts(int c, const char *arg)
{
	if (c == 't')
		opt_tensor = arg;
	else if (c == 'o')
		opt_out = arg;
}

int cmd_to_npy(int argc, char **argv)
{
	int i = cmd_getopt(argc, argv, "+t:o:", NULL, tonpy_opts);
	const char *in = one_input(argc, argv, i);
	check_stream_out(opt_out);
	Stream *s = xstream_open_read(in);
	Record r;
	record_init(&r);
	if (!xstream_read_record(s, &r))
		die("%s: no records: the array's dtype and shape are unknown", stream_path(s));
	const Tensor *t0 = NULL;   // -t's, or the one numeric tensor
	if (opt_tensor) {
		t0 = record_find(&r, opt_tensor);
		if (!t0)
			die("%s: no tensor %s", stream_path(s), opt_tensor);
	} else {
		for (int k = 0; k < r.n; k++)
			if (r.t[k].dtype != DT_STR) {
				if (t0)
					die("%s: several tensors (%s, %s...): choose one with -t",
					    stream_path(s), t0->name, r.t[k].name);
				t0 = &r.t[k];
			}
		if (!t0)
			die("%s: no numeric tensor", stream_path(s));
	}
	char name[TENSOR_NAME_MAX + 1];
	snprintf(name, sizeof name, "%s", t0->name);
	int dtype = t0->dtype, ndim = t0->ndim;
	int64_t dims[TENSOR_MAX_DIMS];
	memcpy(dims, t0->dims, sizeof(int64_t) * (size_t)ndim);
	if (dtype == DT_STR)
		die("%s: tensor %s is text (str): .npy output is numeric only; see tensor dump",
		    stream_path(s), name);
	NpyWriter *w = npy_writer_open(opt_out, dtype, ndim, dims);
	if (!w)
		die("%s: tensor %s: no .npy form", stream_path(s), name);
	do {
		Tensor *t = record_find(&r, name);
		if (!t)
			die("%s: record %llu has no tensor %s", stream_path(s),
			    (unsigned long long)r.index, name);
		if (t->dtype != dtype || t->ndim != ndim ||
		    memcmp(t->dims, dims, sizeof(int64_t) * (size_t)ndim)) {
			char a[TENSOR_SHAPE_STR_CAP];
			die("%s: record %llu: tensor %s is %s %s, unlike record 0", stream_path(s),
			    (unsigned long long)r.index, name, dtype_name(t->dtype), SHAPE(t, a));
		}
		npy_writer_add(w, t->data);
	} while (xstream_read_record(s, &r));
	npy_writer_finish(w);
	record_free(&r);
	stream_close(s);
	return 0;
}
