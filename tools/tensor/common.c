// What tensor(1)'s subcommands share (cmd.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/util/escape.h"
#include "libcommon/util/io.h"
#include "cmd.h"

int cmd_getopt(int argc, char **argv, const char *opts, const struct option *lo,
               void (*on)(int c, const char *arg))
{
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, opts, lo, NULL)) != -1) {
		if (c == '?' || c == ':')
			die_usage("%s: bad option or missing argument", argv[0]);
		on(c, optarg);
	}
	return optind;
}

void no_opts(int c, const char *arg) { (void)c; (void)arg; }

const char *one_input(int argc, char **argv, int i)
{
	if (argc - i > 1)
		die_usage("%s: one input at most", argv[0]);
	return i < argc ? argv[i] : "-";
}

// Binary output to a terminal is refused before the work (atomic_open
// would refuse it too, but only once the input has been read).
void check_stream_out(const char *out)
{
	if (strcmp(out, "-") == 0)
		refuse_terminal_stdout();
}

void print_escaped(const char *s, size_t max)
{
	char *e = text_escape(s, max);
	fputs(e, stdout);
	free(e);
}

void schema_take(Schema *s, const Record *r)
{
	s->n = r->n;
	s->t = xmalloc_array((size_t)(r->n ? r->n : 1), sizeof(Tensor));
	memcpy(s->t, r->t, sizeof(Tensor) * (size_t)r->n);
}

const char *schema_diff(const Schema *s, const Record *r, int any_dims, char *buf,
                        size_t cap)
{
	if (s->n != r->n) {
		snprintf(buf, cap, "%d tensors, the first record had %d", r->n, s->n);
		return buf;
	}
	for (int i = 0; i < s->n; i++) {
		const Tensor *a = &s->t[i], *b = &r->t[i];
		if (strcmp(a->name, b->name)) {
			snprintf(buf, cap, "tensor %d is %s, the first record had %s", i, b->name, a->name);
			return buf;
		}
		int same = a->dtype == b->dtype && a->ndim == b->ndim;
		for (int d = 0; same && d < a->ndim; d++)
			same = a->dims[d] == b->dims[d] || a->dtype == DT_STR || any_dims;
		if (!same) {
			char sa[TENSOR_SHAPE_STR_CAP], sb[TENSOR_SHAPE_STR_CAP];
			snprintf(buf, cap, "tensor %s is %s %s, the first record had %s %s", a->name,
			         dtype_name(b->dtype), SHAPE(b, sb), dtype_name(a->dtype), SHAPE(a, sa));
			return buf;
		}
	}
	return NULL;
}

void kv_take_header(StrMap *kv, const Stream *s)
{
	strmap_init(kv);
	for (int i = 0; i < stream_meta_len(s); i++) {
		const char *k = stream_meta_key(s, i), *v = stream_meta_val(s, i);
		strmap_add(kv, k, strlen(k), v, strlen(v));
	}
}
