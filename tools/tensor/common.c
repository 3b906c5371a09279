// What tensor(1)'s subcommands share (cmd.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
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
	size_t n = strlen(s);
	size_t lim = max && n > max ? max : n;
	for (size_t i = 0; i < lim; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c == '\\')
			fputs("\\\\", stdout);
		else if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	if (lim < n)
		printf(" ... (%zu bytes)", n);
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

void kv_take_header(KV *kv, const Stream *s)
{
	kv->n = stream_meta_len(s);
	kv->k = xmalloc_array((size_t)kv->n + 1, sizeof(char *));
	kv->v = xmalloc_array((size_t)kv->n + 1, sizeof(char *));
	for (int i = 0; i < kv->n; i++) {
		kv->k[i] = xstrdup(stream_meta_key(s, i));
		kv->v[i] = xstrdup(stream_meta_val(s, i));
	}
}

const char *kv_get(const KV *kv, const char *key)
{
	for (int i = 0; i < kv->n; i++)
		if (strcmp(kv->k[i], key) == 0)
			return kv->v[i];
	return NULL;
}

void kv_free(KV *kv)
{
	for (int i = 0; i < kv->n; i++) {
		free(kv->k[i]);
		free(kv->v[i]);
	}
	free(kv->k);
	free(kv->v);
}
