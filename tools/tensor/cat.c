// tensor cat: joins streams of one schema and header metadata; end-chunk
// counters are summed.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "cmd.h"

static const char *opt_out = "-";

static void cat_opts(int c, const char *arg)
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

// The end-chunk metadata so far: each key's first value (map), and whether
// it is a counter with the sum so far (by the key's index in the map).
typedef struct {
	StrMap map;
	int *counter;
	uint64_t *sum;
	size_t cap;
} Trails;

// Every input's header metadata must equal the first's.
static void same_header(const Stream *s, const StrMap *first, const char *first_path)
{
	StrMap h;
	kv_take_header(&h, s);
	for (size_t j = 0; j < first->n; j++) {
		const char *v = strmap_get(&h, first->e[j].key);
		if (!v)
			die("%s: header metadata differs from %s: no key %s", stream_path(s),
			    first_path, first->e[j].key);
		if (strcmp(v, first->e[j].val))
			die("%s: header metadata differs from %s: key %s", stream_path(s),
			    first_path, first->e[j].key);
	}
	for (size_t j = 0; j < h.n; j++)
		if (!strmap_get(first, h.e[j].key))
			die("%s: header metadata differs from %s: extra key %s",
			    stream_path(s), first_path, h.e[j].key);
	strmap_free(&h);
}

// Folds s's end-chunk metadata into tr: counters are summed, other values
// must agree.
static void add_trailer(Trails *tr, const Stream *s)
{
	for (int j = 0; j < stream_trailer_len(s); j++) {
		const char *key = stream_trailer_key(s, j), *val = stream_trailer_val(s, j);
		uint64_t v;
		int is_counter = parse_counter(val, &v);
		long q = strmap_find(&tr->map, key, strlen(key));
		if (q < 0) {
			q = (long)tr->map.n;
			strmap_add(&tr->map, key, strlen(key), val, strlen(val));
			if (tr->map.n > tr->cap) {
				tr->cap = 2 * tr->map.n;
				tr->counter = xrealloc(tr->counter, sizeof *tr->counter * tr->cap);
				tr->sum = xrealloc(tr->sum, sizeof *tr->sum * tr->cap);
			}
			tr->counter[q] = is_counter;
			tr->sum[q] = is_counter ? v : 0;
		} else if (tr->counter[q] && is_counter) {
			if (tr->sum[q] + v < tr->sum[q])
				die("%s: end metadata %s: counter overflows", stream_path(s), key);
			tr->sum[q] += v;
		} else if (tr->counter[q] || is_counter || strcmp(tr->map.e[q].val, val)) {
			die("%s: end metadata %s: '%s' differs from earlier inputs' and is not a "
			    "counter", stream_path(s), key, val);
		}
	}
}

int cmd_cat(int argc, char **argv)
{
	int i = cmd_getopt(argc, argv, "+o:", NULL, cat_opts);
	if (i == argc)
		die_usage("cat: no input");
	int stdin_uses = 0;
	for (int k = i; k < argc; k++)
		stdin_uses += strcmp(argv[k], "-") == 0;
	if (stdin_uses > 1)
		die_usage("cat: standard input named more than once");
	check_stream_out(opt_out);
	Stream *w = NULL;
	StrMap first;
	strmap_init(&first);
	const char *first_path = NULL;
	Schema sch = { 0, NULL };
	int have = 0, any_dims = 0;
	Trails tr = { .counter = NULL };
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
			// imgprep --scale: each image its own (H, W, 3)
			any_dims = stream_meta_get(s, "scale") != NULL;
		} else {
			same_header(s, &first, first_path);
		}
		while (xstream_read_record(s, &r)) {
			if (!have) {
				schema_take(&sch, &r);
				have = 1;
			} else {
				char buf[600];
				const char *d = schema_diff(&sch, &r, any_dims, buf, sizeof buf);
				if (d)
					die("%s: record %llu: schema differs: %s", stream_path(s),
					    (unsigned long long)r.index, d);
			}
			xstream_write_record(w, &r);
		}
		add_trailer(&tr, s);
		stream_close(s);
	}
	for (size_t q = 0; q < tr.map.n; q++) {
		char num[32];
		snprintf(num, sizeof num, "%llu", (unsigned long long)tr.sum[q]);
		stream_meta_set_end(w, tr.map.e[q].key, tr.counter[q] ? num : tr.map.e[q].val);
	}
	strmap_free(&tr.map);
	free(tr.counter);
	free(tr.sum);
	xstream_finish(w);
	strmap_free(&first);
	free(sch.t);
	record_free(&r);
	return 0;
}
