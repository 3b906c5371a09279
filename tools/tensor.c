// tensor: inspect, validate, join and convert cnnpipe tensor streams.
// See tensor(1) and cnnpipe-tensor(5).
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "formats/half.h"
#include "libcommon/util/io.h"
#include "formats/npy.h"
#include "formats/stream.h"

#define USAGE \
	"tensor info [FILE|-]\n" \
	"       tensor validate [FILE|-] ...\n" \
	"       tensor meta [-k KEY] [FILE|-]\n" \
	"       tensor head [-n N] [-o OUT] [FILE|-]\n" \
	"       tensor cat [-o OUT] FILE|- ...\n" \
	"       tensor dump [-t TENSOR] [-r INDEX] [FILE|-]\n" \
	"       tensor to-npy [-t TENSOR] [-o OUT] [FILE|-]\n" \
	"       tensor from-npy [-n NAME] [-m KEY=VALUE] ... [-o OUT] FILE.npy|- [NAME=FILE.npy] ..."

// ---- helpers ----------------------------------------------------------------

// Parses the options of one command; `opts` is a getopt string.  Returns
// the index of the first operand in argv.
static int cmd_getopt(int argc, char **argv, const char *opts,
                      const struct option *lo, void (*on)(int c, const char *arg))
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

// The one optional input operand of a command.
static const char *one_input(int argc, char **argv, int i)
{
	if (argc - i > 1)
		die_usage("%s: one input at most", argv[0]);
	return i < argc ? argv[i] : "-";
}

// A stream written to a terminal is of no use to anyone.
static void check_stream_out(const char *out)
{
	if (strcmp(out, "-") == 0 && isatty(STDOUT_FILENO))
		die("refusing to write a binary stream to a terminal (redirect it or use -o)");
}

// Prints s with \n, \t, \\ and other control bytes escaped; at most `max`
// bytes (0 = all), then " ... (N bytes)".
static void print_escaped(const char *s, size_t max)
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

static void shape_str(const Tensor *t, char *buf, size_t cap)
{
	size_t n = (size_t)snprintf(buf, cap, "(");
	for (int d = 0; d < t->ndim && n < cap; d++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? "," : "", (long long)t->dims[d]);
	if (n < cap)
		snprintf(buf + n, cap - n, ")");
}

// The schema of a record: tensor names in order, dtypes and shapes (the
// length of a str tensor may vary).
typedef struct {
	int n;
	Tensor *t;   // copies of the descriptors, data pointers unused
} Schema;

static void schema_take(Schema *s, const Record *r)
{
	s->n = r->n;
	s->t = xmalloc_array((size_t)(r->n ? r->n : 1), sizeof(Tensor));
	memcpy(s->t, r->t, sizeof(Tensor) * (size_t)r->n);
}

// NULL when r matches, else what differs.
static const char *schema_diff(const Schema *s, const Record *r, char *buf, size_t cap)
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
			same = a->dims[d] == b->dims[d] || a->dtype == DT_STR;
		if (!same) {
			char sa[200], sb[200];
			shape_str(a, sa, sizeof sa);
			shape_str(b, sb, sizeof sb);
			snprintf(buf, cap, "tensor %s is %s %s, the first record had %s %s", a->name,
			         dtype_name(b->dtype), sb, dtype_name(a->dtype), sa);
			return buf;
		}
	}
	return NULL;
}

// Copies of a stream's header metadata (taken right after opening).
typedef struct {
	int n;
	char **k, **v;
} KV;

static void kv_take_header(KV *kv, const Stream *s)
{
	kv->n = stream_meta_len(s);
	kv->k = xmalloc_array((size_t)kv->n + 1, sizeof(char *));
	kv->v = xmalloc_array((size_t)kv->n + 1, sizeof(char *));
	for (int i = 0; i < kv->n; i++) {
		kv->k[i] = xstrdup(stream_meta_key(s, i));
		kv->v[i] = xstrdup(stream_meta_val(s, i));
	}
}

static const char *kv_get(const KV *kv, const char *key)
{
	for (int i = 0; i < kv->n; i++)
		if (strcmp(kv->k[i], key) == 0)
			return kv->v[i];
	return NULL;
}

static void kv_free(KV *kv)
{
	for (int i = 0; i < kv->n; i++) {
		free(kv->k[i]);
		free(kv->v[i]);
	}
	free(kv->k);
	free(kv->v);
}

// ---- info -------------------------------------------------------------------

static void no_opts(int c, const char *arg) { (void)c; (void)arg; }

static int cmd_info(int argc, char **argv)
{
	int i = cmd_getopt(argc, argv, "+", NULL, no_opts);
	const char *in = one_input(argc, argv, i);
	Stream *s = xstream_open_read(in);
	KV header;
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
		const char *d = schema_diff(&sch, &r, buf, sizeof buf);
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
	for (int k = 0; k < header.n; k++) {
		printf("  %s=", header.k[k]);
		print_escaped(header.v[k], 200);
		putchar('\n');
	}
	if (stream_trailer_len(s)) {
		printf("end metadata:\n");
		for (int k = 0; k < stream_trailer_len(s); k++) {
			printf("  %s=", stream_trailer_key(s, k));
			print_escaped(stream_trailer_val(s, k), 200);
			putchar('\n');
		}
	}
	if (have) {
		printf("tensors:\n");
		for (int k = 0; k < sch.n; k++) {
			char sh[200];
			shape_str(&sch.t[k], sh, sizeof sh);
			printf("  %s %s %s%s\n", sch.t[k].name, dtype_name(sch.t[k].dtype),
			       varies[k] ? "(varies)" : sh, "");
		}
	}
	free(varies);
	free(sch.t);
	kv_free(&header);
	record_free(&r);
	stream_close(s);
	return 0;
}

// ---- validate -----------------------------------------------------------------

static int cmd_validate(int argc, char **argv)
{
	int i = cmd_getopt(argc, argv, "+", NULL, no_opts);
	int bad = 0;
	Record r;
	record_init(&r);
	if (i == argc)
		argv[--i] = "-";
	for (; i < argc; i++) {
		Stream *s = stream_open_read(argv[i]);
		if (!s) {
			warn("%s", stream_last_error());
			bad = 1;
			continue;
		}
		int rc;
		while ((rc = stream_read_record(s, &r)) > 0)
			;
		if (rc < 0) {
			warn("%s", stream_error(s));
			bad = 1;
		}
		stream_close(s);
	}
	record_free(&r);
	return bad ? EXIT_FAIL : 0;
}

// ---- meta -------------------------------------------------------------------

static const char *opt_key, *opt_out = "-", *opt_tensor, *opt_name = "x";
static long opt_n = 10, opt_index = -1;
static int n_meta;
static char **opt_meta;

static void meta_opts(int c, const char *arg)
{
	if (c == 'k')
		opt_key = arg;
}

static int cmd_meta(int argc, char **argv)
{
	int i = cmd_getopt(argc, argv, "+k:", NULL, meta_opts);
	const char *in = one_input(argc, argv, i);
	Stream *s = xstream_open_read(in);
	Record r;
	record_init(&r);
	while (xstream_read_record(s, &r))
		;
	record_free(&r);
	if (opt_key) {
		const char *v = stream_meta_get(s, opt_key);
		if (!v)
			die("%s: no metadata key %s", stream_path(s), opt_key);
		printf("%s\n", v);
	} else {
		for (int k = 0; k < stream_meta_len(s); k++) {
			printf("%s=", stream_meta_key(s, k));
			print_escaped(stream_meta_val(s, k), 0);
			putchar('\n');
		}
	}
	stream_close(s);
	return 0;
}

// ---- head -------------------------------------------------------------------

static void head_opts(int c, const char *arg)
{
	if (c == 'n')
		opt_n = parse_long("-n", arg, 0, LONG_MAX);
	else if (c == 'o')
		opt_out = arg;
}

static int cmd_head(int argc, char **argv)
{
	int i = cmd_getopt(argc, argv, "+n:o:", NULL, head_opts);
	const char *in = one_input(argc, argv, i);
	check_stream_out(opt_out);
	Stream *s = xstream_open_read(in);
	Stream *w = xstream_open_write(opt_out);
	stream_meta_copy(w, s);
	xstream_write_header(w);
	Record r;
	record_init(&r);
	for (long k = 0; k < opt_n && xstream_read_record(s, &r); k++)
		xstream_write_record(w, &r);
	xstream_finish(w);
	record_free(&r);
	stream_close(s);
	return 0;
}

// ---- cat --------------------------------------------------------------------

static void out_opts(int c, const char *arg)
{
	if (c == 'o')
		opt_out = arg;
}

// An unsigned decimal integer that fits 64 bits.
static int parse_counter(const char *s, uint64_t *v)
{
	if (!*s || strlen(s) > 19)
		return 0;
	*v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		*v = *v * 10 + (uint64_t)(*s - '0');
	}
	return 1;
}

typedef struct {
	char *key, *val;
	int counter;
	uint64_t sum;
} Trail;

static int cmd_cat(int argc, char **argv)
{
	int i = cmd_getopt(argc, argv, "+o:", NULL, out_opts);
	if (i == argc)
		die_usage("cat: no input");
	int stdin_uses = 0;
	for (int k = i; k < argc; k++)
		stdin_uses += strcmp(argv[k], "-") == 0;
	if (stdin_uses > 1)
		die_usage("cat: standard input named more than once");
	check_stream_out(opt_out);
	Stream *w = NULL;
	KV first = { 0, NULL, NULL };
	const char *first_path = NULL;
	Schema sch = { 0, NULL };
	int have = 0;
	Trail *tr = NULL;
	int ntr = 0;
	Record r;
	record_init(&r);
	for (int k = i; k < argc; k++) {
		Stream *s = xstream_open_read(argv[k]);
		if (!w) {
			kv_take_header(&first, s);
			first_path = argv[k];
			w = xstream_open_write(opt_out);
			stream_meta_copy(w, s);
			xstream_write_header(w);
		} else {
			KV h;
			kv_take_header(&h, s);
			for (int j = 0; j < first.n; j++) {
				const char *v = kv_get(&h, first.k[j]);
				if (!v)
					die("%s: header metadata differs from %s: no key %s", stream_path(s),
					    first_path, first.k[j]);
				if (strcmp(v, first.v[j]))
					die("%s: header metadata differs from %s: key %s", stream_path(s),
					    first_path, first.k[j]);
			}
			for (int j = 0; j < h.n; j++)
				if (!kv_get(&first, h.k[j]))
					die("%s: header metadata differs from %s: extra key %s",
					    stream_path(s), first_path, h.k[j]);
			kv_free(&h);
		}
		while (xstream_read_record(s, &r)) {
			if (!have) {
				schema_take(&sch, &r);
				have = 1;
			} else {
				char buf[600];
				const char *d = schema_diff(&sch, &r, buf, sizeof buf);
				if (d)
					die("%s: record %llu: schema differs: %s", stream_path(s),
					    (unsigned long long)r.index, d);
			}
			xstream_write_record(w, &r);
		}
		// End-chunk metadata: counters are summed, other values must agree.
		for (int j = 0; j < stream_trailer_len(s); j++) {
			const char *key = stream_trailer_key(s, j), *val = stream_trailer_val(s, j);
			uint64_t v;
			int is_counter = parse_counter(val, &v);
			Trail *t = NULL;
			for (int q = 0; q < ntr; q++)
				if (strcmp(tr[q].key, key) == 0)
					t = &tr[q];
			if (!t) {
				tr = xrealloc(tr, sizeof(Trail) * (size_t)(ntr + 1));
				t = &tr[ntr++];
				t->key = xstrdup(key);
				t->val = xstrdup(val);
				t->counter = is_counter;
				t->sum = is_counter ? v : 0;
			} else if (t->counter && is_counter) {
				if (t->sum + v < t->sum)
					die("%s: end metadata %s: counter overflows", stream_path(s), key);
				t->sum += v;
			} else if (t->counter || is_counter || strcmp(t->val, val)) {
				die("%s: end metadata %s: '%s' differs from earlier inputs' and is not a "
				    "counter", stream_path(s), key, val);
			}
		}
		stream_close(s);
	}
	for (int q = 0; q < ntr; q++) {
		char num[32];
		snprintf(num, sizeof num, "%llu", (unsigned long long)tr[q].sum);
		stream_meta_set_end(w, tr[q].key, tr[q].counter ? num : tr[q].val);
		free(tr[q].key);
		free(tr[q].val);
	}
	free(tr);
	xstream_finish(w);
	kv_free(&first);
	free(sch.t);
	record_free(&r);
	return 0;
}

// ---- dump -------------------------------------------------------------------

static void dump_opts(int c, const char *arg)
{
	if (c == 't')
		opt_tensor = arg;
	else if (c == 'r')
		opt_index = parse_long("-r", arg, 0, LONG_MAX);
}

static void dump_tensor(const Record *r, const Tensor *t)
{
	char sh[200];
	shape_str(t, sh, sizeof sh);
	printf("%llu %s %s %s", (unsigned long long)r->index, t->name, dtype_name(t->dtype), sh);
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

static int cmd_dump(int argc, char **argv)
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

// ---- to-npy -----------------------------------------------------------------

static void tonpy_opts(int c, const char *arg)
{
	if (c == 't')
		opt_tensor = arg;
	else if (c == 'o')
		opt_out = arg;
}

static void copy_out(FILE *from, FILE *to, const char *label)
{
	static char buf[1 << 16];
	size_t k;
	rewind(from);
	while ((k = fread(buf, 1, sizeof buf, from)) > 0)
		write_full(to, buf, k, label);
	if (ferror(from))
		die_errno("temporary file: read error");
}

static int cmd_to_npy(int argc, char **argv)
{
	int i = cmd_getopt(argc, argv, "+t:o:", NULL, tonpy_opts);
	const char *in = one_input(argc, argv, i);
	if (strcmp(opt_out, "-") == 0 && isatty(STDOUT_FILENO))
		die("refusing to write a .npy file to a terminal (redirect it or use -o)");
	Stream *s = xstream_open_read(in);
	Record r;
	record_init(&r);
	if (!xstream_read_record(s, &r))
		die("%s: no records: the array's dtype and shape are unknown", stream_path(s));
	const Tensor *t0 = NULL;
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
	if (dtype == DT_STR)
		die("%s: tensor %s is text (str): .npy output is numeric only; see tensor dump",
		    stream_path(s), name);
	int out_dtype = dtype == DT_BF16 ? DT_F32 : dtype;   // numpy has no bfloat16
	int64_t dims[TENSOR_MAX_DIMS + 1];
	dims[0] = INT64_MAX;   // placeholder: as wide as any count
	memcpy(dims + 1, t0->dims, sizeof(int64_t) * (size_t)ndim);
	unsigned char hdr[1024];
	size_t hlen = npy_format_header(hdr, sizeof hdr, out_dtype, ndim + 1, dims, 0);
	if (!hlen)
		die("%s: tensor %s: no .npy form", stream_path(s), name);

	AtomicOut out;
	atomic_open(&out, opt_out);
	const char *label = strcmp(opt_out, "-") ? opt_out : "standard output";
	// The record count comes last: on a seekable output the header is written
	// first with room for any count and rewritten at the end; otherwise the
	// data wait in an unnamed temporary file.
	struct stat st;
	off_t start = ftello(out.f);
	int seekable = start >= 0 && fstat(fileno(out.f), &st) == 0 && S_ISREG(st.st_mode);
	FILE *data = seekable ? out.f : tmpfile();
	if (!data)
		die_errno("temporary file");
	if (seekable)
		write_full(data, hdr, hlen, label);
	const char *dlabel = seekable ? label : "temporary file";
	uint64_t count = 0;
	float *conv = NULL;
	size_t convcap = 0;
	do {
		Tensor *t = record_find(&r, name);
		if (!t)
			die("%s: record %llu has no tensor %s", stream_path(s),
			    (unsigned long long)r.index, name);
		int same = t->dtype == dtype && t->ndim == ndim &&
		           !memcmp(t->dims, dims + 1, sizeof(int64_t) * (size_t)ndim);
		if (!same) {
			char a[200];
			shape_str(t, a, sizeof a);
			die("%s: record %llu: tensor %s is %s %s, unlike record 0", stream_path(s),
			    (unsigned long long)r.index, name, dtype_name(t->dtype), a);
		}
		if (dtype == DT_BF16) {
			size_t n = t->nbytes / 2;
			if (n > convcap) {
				free(conv);
				conv = xmalloc_array(n, sizeof(float));
				convcap = n;
			}
			for (size_t q = 0; q < n; q++) {
				uint16_t v;
				memcpy(&v, (unsigned char *)t->data + 2 * q, 2);
				conv[q] = bf16_to_f32(v);
			}
			write_full(data, conv, n * sizeof(float), dlabel);
		} else {
			write_full(data, t->data, t->nbytes, dlabel);
		}
		count++;
	} while (xstream_read_record(s, &r));
	free(conv);
	dims[0] = (int64_t)count;
	unsigned char fin[1024];
	size_t flen = npy_format_header(fin, sizeof fin, out_dtype, ndim + 1, dims,
	                                seekable ? hlen : 0);
	if (seekable) {
		if (flen != hlen || fflush(out.f) || fseeko(out.f, start, SEEK_SET))
			die_errno("%s: cannot rewrite the .npy header", label);
		write_full(out.f, fin, flen, label);
		if (fseeko(out.f, 0, SEEK_END))
			die_errno("%s: seek", label);
	} else {
		write_full(out.f, fin, flen, label);
		copy_out(data, out.f, label);
		fclose(data);
	}
	atomic_commit(&out);
	record_free(&r);
	stream_close(s);
	return 0;
}

// ---- from-npy ---------------------------------------------------------------

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

static int cmd_from_npy(int argc, char **argv)
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
	for (int k = 0; k < nin; k++) {
		char *a = argv[i + k];
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
		const char *label = strcmp(in[k].path, "-") ? in[k].path : "standard input";
		char err[300];
		if (npy_read_header(in[k].f, &in[k].h, err, sizeof err) < 0)
			die("%s: %s", label, err);
		NpyHeader *h = &in[k].h;
		if (h->ndim < 1)
			die("%s: a 0-d array has no leading record dimension", label);
		if (h->ndim - 1 > TENSOR_MAX_DIMS)
			die("%s: %d dimensions per record (at most %d)", label, h->ndim - 1,
			    TENSOR_MAX_DIMS);
		if (h->dims[0] != in[0].h.dims[0])
			die("%s: %lld records, %s has %lld", label, (long long)h->dims[0],
			    in[0].path, (long long)in[0].h.dims[0]);
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
		total += row + 64;
		if (total > STREAM_MAX_RECORD_BYTES)
			die("%s: a record would exceed %llu bytes", label,
			    (unsigned long long)STREAM_MAX_RECORD_BYTES);
		in[k].row = (size_t)row;
	}
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
		for (int k = 0; k < nin; k++) {
			const char *label = strcmp(in[k].path, "-") ? in[k].path : "standard input";
			if (read_full(in[k].f, r.t[k].data, in[k].row, label) != in[k].row)
				die("%s: truncated .npy data (record %lld of %lld)", label,
				    (long long)row, (long long)in[0].h.dims[0]);
		}
		xstream_write_record(w, &r);
	}
	for (int k = 0; k < nin; k++) {
		const char *label = strcmp(in[k].path, "-") ? in[k].path : "standard input";
		char extra;
		if (read_full(in[k].f, &extra, 1, label))
			die("%s: data after the array's end", label);
		if (in[k].f != stdin)
			fclose(in[k].f);
	}
	xstream_finish(w);
	record_free(&r);
	free(in);
	free(opt_meta);
	return 0;
}

// ---- main -------------------------------------------------------------------

int main(int argc, char **argv)
{
	prog_init(argc, argv, USAGE);
	static const struct { const char *name; int (*fn)(int, char **); } CMDS[] = {
		{ "info", cmd_info }, { "validate", cmd_validate }, { "meta", cmd_meta },
		{ "head", cmd_head }, { "cat", cmd_cat }, { "dump", cmd_dump },
		{ "to-npy", cmd_to_npy }, { "from-npy", cmd_from_npy },
	};
	if (argc < 2)
		die_usage(NULL);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		printf("usage: %s\n", USAGE);
		return 0;
	}
	for (size_t k = 0; k < sizeof CMDS / sizeof CMDS[0]; k++)
		if (strcmp(argv[1], CMDS[k].name) == 0)
			return CMDS[k].fn(argc - 1, argv + 1);
	die_usage("unknown command '%s'", argv[1]);
}
