// The ground floor's shared helpers: byte order (le.h), shapes as text,
// class lists, mapped files, the ordered parallel map.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "libcommon/util/classes.h"
#include "libcommon/util/err.h"
#include "libcommon/util/io.h"
#include "libcommon/util/le.h"
#include "libcommon/util/ordered.h"
#include "libcommon/util/tensor.h"
#include "check.h"

static void test_le(void)
{
	const unsigned char b[9] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x88 };
	// any alignment
	CHECK(le_get16(b + 1) == 0x0201);
	CHECK(le_get32(b + 1) == 0x04030201u);
	CHECK(le_get64(b + 1) == 0x8807060504030201ull);
	CHECK(be_get16(b + 1) == 0x0102);
	CHECK(be_get32(b + 1) == 0x01020304u);
	CHECK(be_get64(b + 1) == 0x0102030405060788ull);
	unsigned char o[11];
	memset(o, 0xee, sizeof o);
	le_put16(o + 1, 0xa1b2);
	CHECK(o[0] == 0xee && o[1] == 0xb2 && o[2] == 0xa1 && o[3] == 0xee);
	le_put32(o + 1, 0xa1b2c3d4u);
	CHECK(o[1] == 0xd4 && o[4] == 0xa1 && o[5] == 0xee);
	le_put64(o + 1, 0x0102030405060788ull);
	CHECK(o[1] == 0x88 && o[8] == 0x01 && o[9] == 0xee);
	CHECK(le_get64(o + 1) == 0x0102030405060788ull);
	// round trips at the extremes
	int bad = 0;
	const uint64_t v64[] = { 0, 1, 0x80, 0xff, 0x8000000000000000ull, UINT64_MAX };
	for (size_t i = 0; i < sizeof v64 / sizeof v64[0]; i++) {
		le_put64(o + 3, v64[i]);
		bad += le_get64(o + 3) != v64[i];
		le_put32(o + 3, (uint32_t)v64[i]);
		bad += le_get32(o + 3) != (uint32_t)v64[i];
		le_put16(o + 3, (uint16_t)v64[i]);
		bad += le_get16(o + 3) != (uint16_t)v64[i];
	}
	CHECK(bad == 0);
	// a double in pickle's BINFLOAT order
	const unsigned char one[8] = { 0x3f, 0xf0, 0, 0, 0, 0, 0, 0 };
	uint64_t u = be_get64(one);
	double d;
	memcpy(&d, &u, 8);
	CHECK(d == 1.0);
}

static void test_shape_str(void)
{
	Tensor t = { .ndim = 3, .dims = { 3, 224, 224 } };
	char b[TENSOR_SHAPE_STR_CAP];
	CHECK(strcmp(tensor_shape_str(&t, ", ", b, sizeof b), "(3, 224, 224)") == 0);
	CHECK(strcmp(tensor_shape_str(&t, ",", b, sizeof b), "(3,224,224)") == 0);
	t.ndim = 1;
	CHECK(strcmp(tensor_shape_str(&t, ", ", b, sizeof b), "(3)") == 0);
	t.ndim = 0;
	CHECK(strcmp(tensor_shape_str(&t, ", ", b, sizeof b), "()") == 0);
	// the widest shape fits the cap
	Tensor w = { .ndim = TENSOR_MAX_DIMS };
	for (int i = 0; i < TENSOR_MAX_DIMS; i++)
		w.dims[i] = INT64_MIN;
	tensor_shape_str(&w, ", ", b, sizeof b);
	CHECK(b[strlen(b) - 1] == ')' && strlen(b) == 2 + 8 * 20 + 7 * 2);
	// truncated, never overrun
	t.ndim = 3;
	char s[8];
	memset(s, 'z', sizeof s);
	CHECK(tensor_shape_str(&t, ", ", s, 6) == s && strcmp(s, "(3, 2") == 0 && s[6] == 'z');
	CHECK(strcmp(tensor_shape_str(&t, ", ", s, 1), "") == 0);
}

static void count_die(void *arg) { classes_count(arg, "-c"); }
static void name_die(void *arg) { classes_check_name(arg, "dir"); }
static void split_die(void *arg)
{
	ClassList l = { 0 };
	classes_split(&l, arg, "--classes");
}

static void test_classes(void)
{
	CHECK(classes_count("cats", "x") == 1);
	CHECK(classes_count("cats,dogs,birds", "x") == 3);
	CHECK(classes_count("0,1,2,3,4,5,6,7,8,9", "x") == 10);
	CHECK(classes_count("a b,c", "x") == 2);   // spaces are part of names
	// the messages of pretrained(1)'s checks
	CHECK(check_dies(count_die, "", 1, "-c: empty class list"));
	CHECK(check_dies(count_die, "a,,b", 1, "-c: empty class name in 'a,,b'"));
	CHECK(check_dies(count_die, ",a", 1, "-c: empty class name in ',a'"));
	CHECK(check_dies(count_die, "a,", 1, "-c: empty class name in 'a,'"));
	CHECK(check_dies(count_die, ",", 1, "-c: empty class name in ','"));
	CHECK(check_dies(count_die, "a\nb,c", 1, "-c: a class name may not contain a newline"));
	CHECK(check_dies(count_die, "a\n,,c", 1, "newline"));           // first fault from the left
	CHECK(check_dies(count_die, "a,,\nc", 1, "empty class name"));
	classes_check_name("cats", "dir");
	CHECK(check_dies(name_die, "a,b", 1, "dir: class name 'a,b' is empty or holds ',' or a newline"));
	CHECK(check_dies(name_die, "a\nb", 1, "dir: class name 'a\\nb' is empty"));   // escaped
	CHECK(check_dies(name_die, "", 1, "dir: class name '' is empty"));

	ClassList l = { 0 };
	char *j = classes_join(&l);
	CHECK(strcmp(j, "") == 0);
	free(j);
	classes_split(&l, "dogs,cats", "--classes");
	CHECK(l.n == 2 && strcmp(l.v[0], "dogs") == 0 && strcmp(l.v[1], "cats") == 0);
	CHECK(classes_find(&l, "cats") == 1 && classes_find(&l, "dogs") == 0);
	CHECK(classes_find(&l, "cat") == -1 && classes_find(&l, "") == -1);
	classes_push(&l, "birds");
	j = classes_join(&l);
	CHECK(strcmp(j, "dogs,cats,birds") == 0);
	free(j);
	classes_free(&l);
	CHECK(l.n == 0 && l.v == NULL);
	// many names: the list grows; join and split are inverses
	char big[6 * 1000 + 1], *p = big;
	for (int i = 0; i < 1000; i++)
		p += sprintf(p, "%sc%03d", i ? "," : "", i);
	CHECK(classes_count(big, "x") == 1000);
	classes_split(&l, big, "x");
	j = classes_join(&l);
	CHECK(l.n == 1000 && strcmp(j, big) == 0 && strcmp(l.v[999], "c999") == 0);
	free(j);
	classes_free(&l);
	CHECK(check_dies(split_die, "cats,dogs,cats", 1, "--classes: class 'cats' listed twice"));
	CHECK(check_dies(split_die, "cats,,dogs", 1, "--classes: empty class name in 'cats,,dogs'"));
	CHECK(check_dies(split_die, "", 1, "--classes: empty class list"));
}

static void test_map_file(void)
{
	char *path = check_tmp("test_util.map");
	check_write_file(path, "hello, world", 12);
	MappedFile m;
	char err[300];
	CHECK(map_file(path, &m, err, sizeof err) == 0);
	CHECK(m.len == 12 && memcmp(m.p, "hello, world", 12) == 0 && m.map != NULL);
	unmap_file(&m);
	CHECK(m.p == NULL && m.len == 0 && m.map == NULL);
	check_write_file(path, "", 0);
	CHECK(map_file(path, &m, err, sizeof err) == 0 && m.len == 0 && m.p && !m.map);
	unmap_file(&m);
	unlink(path);
	CHECK(map_file(path, &m, err, sizeof err) == -1 && strstr(err, path) == err &&
	      strstr(err, "No such file"));
	CHECK(map_file("/tmp", &m, err, sizeof err) == -1 && strcmp(err, "/tmp: not a regular file") == 0);
	CHECK(map_file("/tmp", &m, NULL, 0) == -1);
	// read_file, the whole-file reader, reads what map_file maps
	check_write_file(path, "abc\0def", 7);
	size_t len;
	char *t = read_file(path, 1 << 20, &len);
	CHECK(len == 7 && memcmp(t, "abc\0def", 8) == 0);   // NUL-terminated beyond
	free(t);
	unlink(path);
	free(path);
}

// ---- ordered_map ----------------------------------------------------------

typedef struct {
	size_t next, bad, window, inflight, max_inflight;
	size_t states, items;   // states freed, items they counted
	pthread_mutex_t mu;
} Ord;

static void ord_work(void *ctx, size_t i, void *slot, void *state)
{
	Ord *o = ctx;
	pthread_mutex_lock(&o->mu);
	if (++o->inflight > o->max_inflight)
		o->max_inflight = o->inflight;
	pthread_mutex_unlock(&o->mu);
	if (i % 7 == 0)
		usleep(200);   // finish out of order
	uint64_t v = (uint64_t)i * i + 1;
	memcpy(slot, &v, sizeof v);
	if (state)
		++*(size_t *)state;
}

static void ord_consume(void *ctx, size_t i, void *slot)
{
	Ord *o = ctx;
	uint64_t v;
	memcpy(&v, slot, sizeof v);
	o->bad += i != o->next || v != (uint64_t)i * i + 1;
	o->next++;
	pthread_mutex_lock(&o->mu);
	o->inflight--;
	pthread_mutex_unlock(&o->mu);
}

static Ord *ord_ctx;
static void ord_count_free(void *state)
{
	pthread_mutex_lock(&ord_ctx->mu);
	ord_ctx->states++;
	ord_ctx->items += *(size_t *)state;
	pthread_mutex_unlock(&ord_ctx->mu);
}

static void test_ordered(void)
{
	static const struct { size_t lo, hi; int workers; size_t window; } CASES[] = {
		{ 0, 1000, 4, 3 }, { 5, 300, 3, 12 }, { 0, 100, 0, 8 }, { 7, 7, 4, 16 },
		{ 0, 1, 8, 32 }, { 0, 200, 1, 1 },
	};
	for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
		Ord o = { .next = CASES[c].lo };
		pthread_mutex_init(&o.mu, NULL);
		ord_ctx = &o;
		OrderedMap m = { .work = ord_work, .consume = ord_consume, .ctx = &o,
		                 .slot_size = sizeof(uint64_t), .state_size = sizeof(size_t),
		                 .state_free = ord_count_free };
		ordered_map(&m, CASES[c].lo, CASES[c].hi, CASES[c].workers, CASES[c].window);
		size_t n = CASES[c].hi - CASES[c].lo;
		int w = CASES[c].workers;
		CHECK(o.bad == 0 && o.next == CASES[c].hi);
		CHECK(o.max_inflight <= (w ? CASES[c].window : 1));
		CHECK(o.states == (size_t)(w ? w : 1) && o.items == n);
		pthread_mutex_destroy(&o.mu);
	}
	// no per-thread state at all
	Ord o = { .next = 0 };
	pthread_mutex_init(&o.mu, NULL);
	OrderedMap m = { .work = ord_work, .consume = ord_consume, .ctx = &o,
	                 .slot_size = sizeof(uint64_t) };
	ordered_map(&m, 0, 50, 2, 4);
	CHECK(o.bad == 0 && o.next == 50);
	pthread_mutex_destroy(&o.mu);
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, "test_util");
	test_le();
	test_shape_str();
	test_classes();
	test_map_file();
	test_ordered();
	return check_done("test_util");
}
