// Stream metadata at scale: the map behind it (libcommon/util/strmap.h) keeps
// insertion order and costs O(1) per key, counted in slots examined, and a
// stream of 100,000 keys is parsed with O(n) work (a list searched per key,
// as before, needed n^2/2 comparisons: 12 s for 50,000 keys).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "formats/stream.h"
#include "libcommon/util/err.h"
#include "libcommon/util/strmap.h"
#include "check.h"

// The test vector of the SipHash paper (appendix A): key 00..0f, message
// 00..0e.
static void test_siphash(void)
{
	unsigned char msg[15];
	for (int i = 0; i < 15; i++)
		msg[i] = (unsigned char)i;
	CHECK(siphash24(0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull, msg, 15) ==
	      0xa129ca6149be45e5ull);
	// every length up to two blocks gives a different value
	int same = 0;
	uint64_t prev = siphash24(1, 2, msg, 0);
	for (size_t n = 1; n <= 15; n++) {
		uint64_t h = siphash24(1, 2, msg, n);
		same += h == prev;
		prev = h;
	}
	CHECK(same == 0);
}

static void test_map_order(void)
{
	StrMap m;
	strmap_init(&m);
	CHECK(strmap_get(&m, "a") == NULL && strmap_find(&m, "a", 1) == -1);
	strmap_set(&m, "b", "1");
	strmap_set(&m, "a", "2");
	strmap_set(&m, "c", "3");
	strmap_set(&m, "b", "4");   // replaced in place
	CHECK(m.n == 3);
	CHECK(strcmp(m.e[0].key, "b") == 0 && strcmp(m.e[0].val, "4") == 0);
	CHECK(strcmp(m.e[1].key, "a") == 0 && strcmp(m.e[2].key, "c") == 0);
	CHECK(strmap_add(&m, "a", 1, "9", 1) == 0 && strcmp(strmap_get(&m, "a"), "2") == 0);
	// by length: "ab" of "abc" is not "a" nor "abc"
	CHECK(strmap_add(&m, "abc", 2, "x", 1) == 1 && strcmp(strmap_get(&m, "ab"), "x") == 0);
	CHECK(strmap_find(&m, "abc", 3) == -1);
	strmap_set(&m, "c", m.e[2].val);   // its own value
	CHECK(strcmp(strmap_get(&m, "c"), "3") == 0);
	strmap_free(&m);
	CHECK(m.n == 0 && strmap_get(&m, "b") == NULL);
}

#define N 100000

// n keys cost O(n) slots examined: at most 3 per key on average with the
// index at most half full, where a searched list examines n/2 per key.
static void test_map_linear(void)
{
	StrMap m;
	strmap_init(&m);
	uint64_t p0 = strmap_probes();
	char k[16], v[16];
	for (int i = 0; i < N; i++) {
		snprintf(k, sizeof k, "k%06d", i);
		snprintf(v, sizeof v, "%d", i);
		strmap_set(&m, k, v);
	}
	uint64_t probes = strmap_probes() - p0;
	printf("test_stream_meta: %d keys set: %llu slots examined\n", N, (unsigned long long)probes);
	check_msg(probes >= N && probes <= 3 * (uint64_t)N,
	          "%d keys: %llu slots examined (want %d to %d)", N,
	          (unsigned long long)probes, N, 3 * N);
	int bad = 0;
	for (int i = 0; i < N; i += 7) {
		snprintf(k, sizeof k, "k%06d", i);
		const char *got = strmap_get(&m, k);
		bad += !got || atoi(got) != i || strcmp(m.e[i].key, k) != 0;
	}
	CHECK(bad == 0 && m.n == N);
	strmap_free(&m);
}

// A stream of N header keys, written by the C writer and read back: the
// keys in order, each found, and the read examining O(N) slots.
static void test_stream_many_keys(void)
{
	char *path = check_tmp("test_stream_meta");
	Stream *w = xstream_open_write(path);
	char k[16], v[16];
	for (int i = 0; i < N; i++) {
		snprintf(k, sizeof k, "k%06d", (i * 7919) % N);   // not in sorted order
		snprintf(v, sizeof v, "v%d", i);
		stream_meta_set(w, k, v);
	}
	stream_meta_set_end(w, "skipped", "3");
	xstream_finish(w);

	uint64_t p0 = strmap_probes();
	Stream *s = xstream_open_read(path);
	uint64_t probes = strmap_probes() - p0;
	printf("test_stream_meta: a header of %d keys read: %llu slots examined\n", N,
	       (unsigned long long)probes);
	check_msg(probes >= N && probes <= 3 * (uint64_t)N,
	          "reading %d keys: %llu slots examined (want %d to %d)", N,
	          (unsigned long long)probes, N, 3 * N);
	CHECK(stream_meta_len(s) == N);
	int bad = 0;
	for (int i = 0; i < N; i += 13) {
		snprintf(k, sizeof k, "k%06d", (i * 7919) % N);
		snprintf(v, sizeof v, "v%d", i);
		bad += strcmp(stream_meta_key(s, i), k) != 0 || strcmp(stream_meta_val(s, i), v) != 0;
		const char *got = stream_meta_get(s, k);
		bad += !got || strcmp(got, v) != 0;
	}
	CHECK(bad == 0);
	Record r;
	record_init(&r);
	CHECK(xstream_read_record(s, &r) == 0);
	record_free(&r);
	// the end chunk's key joins after the header's
	CHECK(stream_meta_len(s) == N + 1 && strcmp(stream_meta_key(s, N), "skipped") == 0);
	CHECK(strcmp(stream_meta_get(s, "skipped"), "3") == 0);
	stream_close(s);
	unlink(path);
	free(path);
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, "test_stream_meta");
	test_siphash();
	test_map_order();
	test_map_linear();
	test_stream_many_keys();
	return check_done("test_stream_meta");
}
