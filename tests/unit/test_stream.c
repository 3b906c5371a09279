// Round trips through the stream API, and the reader's checks.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "formats/crc32.h"
#include "libcommon/util/err.h"
#include "formats/stream.h"
#include "formats/stream_classes.h"
#include "check.h"
#include "libcommon/util/io.h"
#include "libcommon/util/le.h"

static char *tmp_path;   // this test's scratch stream (check_tmp)

static void test_round_trip(void)
{
	const char *path = tmp_path;
	Stream *w = xstream_open_write(path);
	stream_meta_set(w, "kind", "test");
	stream_meta_set(w, "classes", "cats,dogs");
	Record r;
	record_init(&r);
	for (int i = 0; i < 5; i++) {
		record_clear(&r);
		int64_t d3[3] = { 2, 3, 1 + i };
		unsigned char *u = record_add(&r, "image", DT_U8, 3, d3, NULL);
		for (int k = 0; k < 6 * (1 + i); k++)
			u[k] = (unsigned char)(k * 7 + i);
		int32_t lab = i % 2;
		record_add(&r, "label", DT_I32, 0, NULL, &lab);
		int64_t d1 = 4;
		float f[4] = { 1.5f, -2.0f, (float)i, 1e30f };
		record_add(&r, "x", DT_F32, 1, &d1, f);
		record_add_str(&r, "name", i == 3 ? "" : "cats/cat.1.jpg");
		xstream_write_record(w, &r);
	}
	stream_meta_set(w, "skipped", "2");
	xstream_finish(w);

	Stream *s = xstream_open_read(path);
	CHECK(strcmp(stream_meta_get(s, "kind"), "test") == 0);
	CHECK(stream_meta_get(s, "skipped") == NULL);   // trailer not read yet
	int n = 0;
	while (xstream_read_record(s, &r)) {
		Tensor *t = record_find(&r, "image");
		CHECK(t && t->dtype == DT_U8 && t->ndim == 3 && t->dims[2] == 1 + n);
		CHECK(t && ((uintptr_t)t->data % 64) == 0);
		CHECK(t && ((unsigned char *)t->data)[5] == (unsigned char)(5 * 7 + n));
		t = record_find(&r, "label");
		CHECK(t && t->ndim == 0 && *(int32_t *)t->data == n % 2);
		t = record_find(&r, "x");
		CHECK(t && ((float *)t->data)[2] == (float)n && ((float *)t->data)[3] == 1e30f);
		char name[64];
		tensor_str(record_find(&r, "name"), name, sizeof name);
		CHECK(strcmp(name, n == 3 ? "" : "cats/cat.1.jpg") == 0);
		n++;
	}
	CHECK(n == 5);
	CHECK(stream_count(s) == 5);
	CHECK(strcmp(stream_meta_get(s, "skipped"), "2") == 0);
	stream_close(s);
	record_free(&r);
}

// Flip each byte of a valid stream in turn: the reader must fail cleanly
// (never crash, never accept a changed stream silently).
static void test_every_byte_flip(void)
{
	size_t len;
	unsigned char *b = read_file(tmp_path, CHECK_FILE_CAP, &len);
	int accepted = 0;
	Record r;
	record_init(&r);
	for (size_t i = 0; i < len; i++) {
		b[i] ^= 0x5a;
		Stream *s = stream_open_mem(b, len, "flip");
		int rc = 0;
		if (s) {
			while ((rc = stream_read_record(s, &r)) > 0)
				;
			stream_close(s);
		}
		if (s && rc == 0)
			accepted++;
		b[i] ^= 0x5a;
	}
	CHECK(accepted == 0);
	// Every truncation is refused too.
	int trunc_ok = 0;
	for (size_t n = 0; n < len; n += 7) {
		Stream *s = stream_open_mem(b, n, "trunc");
		int rc = -1;
		if (s) {
			while ((rc = stream_read_record(s, &r)) > 0)
				;
			stream_close(s);
		}
		if (rc == 0)
			trunc_ok++;
	}
	CHECK(trunc_ok == 0);
	record_free(&r);
	free(b);
}

// Recomputes the CRC of the chunk at `off`, so that a test reaches the
// semantic checks behind it.
static void fix_crc(unsigned char *b, size_t off)
{
	uint64_t len = le_get64(b + off + 8);
	uint32_t c = crc32_update(0, b + off + 8, len - 8);
	le_put32(b + off + 4, c);
}

// Reads a whole stream; returns 0 when accepted, else copies the error.
static int read_all(const unsigned char *b, size_t len, char *err, size_t errlen)
{
	Stream *s = stream_open_mem(b, len, "t");
	if (!s) {
		snprintf(err, errlen, "%s", stream_last_error());
		return -1;
	}
	Record r;
	record_init(&r);
	int rc;
	while ((rc = stream_read_record(s, &r)) > 0)
		;
	snprintf(err, errlen, "%s", rc < 0 ? stream_error(s) : "");
	stream_close(s);
	record_free(&r);
	return rc;
}

static unsigned char *memfind(unsigned char *b, size_t len, const char *needle, size_t n)
{
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(b + i, needle, n) == 0)
			return b + i;
	return NULL;
}

// Semantic rules behind the CRC: each crafted stream carries a valid CRC.
static void test_semantic_rules(void)
{
	const char *path = tmp_path;
	Stream *w = xstream_open_write(path);
	stream_meta_set(w, "aa", "xy");
	stream_meta_set(w, "ab", "2");
	Record r;
	record_init(&r);
	int64_t d = 3;
	record_add(&r, "v", DT_U8, 1, &d, "abc");
	xstream_write_record(w, &r);
	xstream_finish(w);
	record_free(&r);
	size_t len;
	unsigned char *b = read_file(path, CHECK_FILE_CAP, &len);
	char err[600];
	CHECK(read_all(b, len, err, sizeof err) == 0);
	size_t rec = 64 + (size_t)le_get64(b + 64 + 8);   // the record chunk

	unsigned char *c = malloc(len);
	// The same key twice in one chunk.
	memcpy(c, b, len);
	memfind(c, len, "ab", 2)[1] = 'a';
	fix_crc(c, 64);
	CHECK(read_all(c, len, err, sizeof err) < 0 && strstr(err, "metadata key aa appears twice"));
	// A value that is not UTF-8.
	memcpy(c, b, len);
	memcpy(memfind(c, len, "xy", 2), "\xc0\xaf", 2);   // overlong '/'
	fix_crc(c, 64);
	CHECK(read_all(c, len, err, sizeof err) < 0 && strstr(err, "not UTF-8"));
	memcpy(c, b, len);
	memcpy(memfind(c, len, "xy", 2), "\xc3\xa9", 2);   // é is fine
	fix_crc(c, 64);
	CHECK(read_all(c, len, err, sizeof err) == 0);
	// Nonzero padding between the record descriptor and the data.
	memcpy(c, b, len);
	uint32_t desc = le_get16(c + rec + 16);
	c[rec + 32 + desc] = 1;
	fix_crc(c, rec);
	CHECK(read_all(c, len, err, sizeof err) < 0 && strstr(err, "nonzero padding"));
	// A data offset one block later than the canonical one.
	memcpy(c, b, len);
	c[rec + 32 + 2 + 1 + 2 + 8] += 64;   // descriptor: u16, "v", u8, u8, dims
	fix_crc(c, rec);
	CHECK(read_all(c, len, err, sizeof err) < 0 && strstr(err, "data offset 128, expected 64"));
	free(c);
	free(b);
}

static void test_messages(void)
{
	Stream *s = stream_open_mem("", 0, "empty.stream");
	CHECK(s == NULL && strstr(stream_last_error(), "empty.stream: byte 0: empty stream"));
	s = stream_open_mem("GIF89a\0\0\0\0\0\0", 12, "x.gif");
	CHECK(s == NULL && strstr(stream_last_error(), "bad magic"));
	size_t len;
	unsigned char *b = read_file(tmp_path, CHECK_FILE_CAP, &len);
	b[8] = 9;
	s = stream_open_mem(b, len, "v9");
	CHECK(s == NULL && strstr(stream_last_error(), "unsupported format version 9"));
	b[8] = 1;
	b[len - 100] ^= 1;   // inside the end chunk
	s = stream_open_mem(b, len, "crc");
	Record r;
	record_init(&r);
	int rc;
	while ((rc = stream_read_record(s, &r)) > 0)
		;
	CHECK(rc < 0 && strstr(stream_error(s), "checksum mismatch"));
	stream_close(s);
	record_free(&r);
	free(b);
}

// CRC-32: the catalogue check value, and the folded fast path against a
// bit-at-a-time reference at every length and alignment around its limits.
static uint32_t crc32_bitwise(uint32_t crc, const unsigned char *p, size_t n)
{
	uint32_t c = ~crc;
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
	}
	return ~c;
}

static void test_crc32(void)
{
	CHECK(crc32_update(0, "123456789", 9) == 0xCBF43926u);
	static unsigned char b[4096 + 8];
	for (size_t i = 0; i < sizeof b; i++)
		b[i] = (unsigned char)((i * 2654435761u) >> 13);
	int bad = 0;
	for (size_t off = 0; off < 4; off++)
		for (size_t n = 0; n <= 300; n++)
			bad += crc32_update(7, b + off, n) != crc32_bitwise(7, b + off, n);
	bad += crc32_update(0, b, 4096) != crc32_bitwise(0, b, 4096);
	// split anywhere: the running CRC continues across calls
	bad += crc32_update(crc32_update(0, b, 1000), b + 1000, 3000) != crc32_bitwise(0, b, 4000);
	CHECK(bad == 0);
}

// ---- crafted streams: chunks built here, CRCs valid ---------------------------

static const unsigned char PREAMBLE[64] = { 0x89, 'C', 'N', 'P', 0x0D, 0x0A, 0x1A, 0x0A, 1 };

// A metadata chunk of the NULL-terminated key, value pairs at b; returns
// its length.  count < 0: the true count.
static size_t meta_chunk(unsigned char *b, const char *tag, const char *const *kv,
                         long count, uint64_t seq)
{
	size_t p = 32, n = 0;
	for (; kv[0]; kv += 2, n++) {
		size_t kl = strlen(kv[0]), vl = strlen(kv[1]);
		le_put32(b + p, (uint32_t)kl);
		memcpy(b + p + 4, kv[0], kl);
		p += 4 + kl;
		le_put32(b + p, (uint32_t)vl);
		memcpy(b + p + 4, kv[1], vl);
		p += 4 + vl;
	}
	size_t len = (p + 63) & ~(size_t)63;
	memset(b + p, 0, len - p);
	memcpy(b, tag, 4);
	le_put64(b + 8, len);
	le_put32(b + 16, (uint32_t)(p - 32));
	le_put32(b + 20, (uint32_t)(count < 0 ? (long)n : count));
	le_put64(b + 24, seq);
	fix_crc(b, 0);
	return len;
}

// An end chunk that repeats a header key is refused, whatever the key: the
// value a reader saw at open holds for the whole stream.  Keys of the end
// chunk alone (counters such as skipped) join the header's.
static void test_trailer_rules(void)
{
	static const char *const head[] = { "kind", "images", "size", "224", NULL };
	static const char *const over[] = { "skipped", "1", "size", "64", NULL };
	static const char *const kind[] = { "kind", "predictions", NULL };
	static const char *const fine[] = { "skipped", "2", NULL };
	unsigned char b[1024];
	char err[600], want[100];
	memcpy(b, PREAMBLE, 64);
	size_t h = 64 + meta_chunk(b + 64, "CNPH", head, -1, 0);
	size_t len = h + meta_chunk(b + h, "CNPE", over, -1, 0);
	snprintf(want, sizeof want, "t: byte %zu: metadata key size is in both the header and "
	         "the end chunk", h);
	CHECK(read_all(b, len, err, sizeof err) < 0 && strstr(err, want));
	len = h + meta_chunk(b + h, "CNPE", kind, -1, 0);
	CHECK(read_all(b, len, err, sizeof err) < 0 && strstr(err, "key kind is in both"));
	len = h + meta_chunk(b + h, "CNPE", fine, -1, 0);
	CHECK(read_all(b, len, err, sizeof err) == 0);
	Stream *s = stream_open_mem(b, len, "t");
	Record r;
	record_init(&r);
	CHECK(s && stream_read_record(s, &r) == 0);
	CHECK(s && stream_meta_len(s) == 3 && strcmp(stream_meta_get(s, "skipped"), "2") == 0 &&
	      strcmp(stream_meta_get(s, "size"), "224") == 0 && stream_trailer_len(s) == 1);
	stream_close(s);
	record_free(&r);
}

// The writer refuses what the reader would: a key in both chunks.
static void set_end_header_key(void *path)
{
	Stream *w = xstream_open_write(path);
	stream_meta_set(w, "size", "224");
	stream_meta_set_end(w, "size", "64");
}

static void set_header_key_late(void *path)
{
	Stream *w = xstream_open_write(path);
	stream_meta_set(w, "size", "224");
	xstream_write_header(w);
	stream_meta_set(w, "size", "64");   // after the header: the end chunk's
}

static void set_end_then_header(void *path)
{
	Stream *w = xstream_open_write(path);
	stream_meta_set_end(w, "skipped", "1");
	stream_meta_set(w, "skipped", "0");
}

static void test_writer_trailer_rules(void)
{
	char want[300];
	snprintf(want, sizeof want, "%s: metadata size is in the header: the end chunk may "
	         "not set it again", tmp_path);
	CHECK(check_dies(set_end_header_key, tmp_path, 1, want));
	CHECK(check_dies(set_header_key_late, tmp_path, 1, want));
	snprintf(want, sizeof want, "%s: metadata skipped: already set for the end chunk",
	         tmp_path);
	CHECK(check_dies(set_end_then_header, tmp_path, 1, want));
}

// One size limit for metadata, the descriptor cap: a 9 MiB value (over the
// writer's old 8 MiB limit) is written, read, and copied into another
// stream unchanged, as tensor cat and head do; only metadata over the cap is
// refused, naming the file.
static char *big_value(size_t n, char c)
{
	char *v = malloc(n + 1);
	memset(v, c, n);
	v[n] = 0;
	return v;
}

static void over_the_cap(void *path)
{
	Stream *w = xstream_open_write(path);
	char *v = big_value(9u << 20, 'a');
	stream_meta_set(w, "a", v);
	stream_meta_set(w, "b", v);
}

static void test_value_limit(void)
{
	char *v = big_value(9u << 20, 'x');
	Stream *w = xstream_open_write(tmp_path);
	stream_meta_set(w, "big", v);
	xstream_finish(w);
	char *copy = check_tmp("test_stream.copy");
	Stream *s = xstream_open_read(tmp_path);
	CHECK(strcmp(stream_meta_get(s, "big"), v) == 0);
	w = xstream_open_write(copy);
	stream_meta_copy(w, s);
	xstream_finish(w);
	stream_close(s);
	size_t la, lb;
	unsigned char *a = read_file(tmp_path, CHECK_FILE_CAP, &la);
	unsigned char *b = read_file(copy, CHECK_FILE_CAP, &lb);
	CHECK(la == lb && memcmp(a, b, la) == 0);
	free(a);
	free(b);
	char want[300];
	snprintf(want, sizeof want, "%s: metadata b: the header's metadata would exceed the "
	         "descriptor cap of 16777216 bytes", copy);
	CHECK(check_dies(over_the_cap, copy, 1, want));
	unlink(copy);
	free(copy);
	free(v);
}

// The caps and offsets of cnnpipe-tensor(5): the metadata entry count is
// bounded by the descriptor (9 bytes an entry at least); a record
// descriptor over 16 MiB is refused as over the cap; a stream cut short is
// reported at the offset where its bytes end.
static void test_caps_and_offsets(void)
{
	static const char *const one[] = { "k", "v", NULL };
	unsigned char b[1024];
	char err[600], want[200];
	memcpy(b, PREAMBLE, 64);
	size_t h = 64 + meta_chunk(b + 64, "CNPH", one, 2, 0);   // 11 bytes, 2 entries
	size_t len = h + meta_chunk(b + h, "CNPE", one + 2, -1, 0);
	CHECK(read_all(b, len, err, sizeof err) < 0 &&
	      strstr(err, "t: byte 64: 2 metadata entries cannot fit a descriptor of 10 bytes"));
	h = 64 + meta_chunk(b + 64, "CNPH", one, -1, 0);
	CHECK(read_all(b, h + meta_chunk(b + h, "CNPE", one + 2, -1, 0), err, sizeof err) == 0);

	// a record chunk whose descriptor is over the cap, in a chunk long enough
	unsigned char *r = b + h;
	memset(r, 0, 32);
	memcpy(r, "CNPR", 4);
	le_put64(r + 8, (uint64_t)64 << 20);
	le_put32(r + 16, (16u << 20) + 1);
	le_put32(r + 20, 1);
	snprintf(want, sizeof want, "t: byte %zu: descriptor length 16777217 exceeds the cap "
	         "of 16777216 bytes", h);
	CHECK(read_all(b, h + 64, err, sizeof err) < 0 && strstr(err, want));
	le_put32(r + 16, 100);
	le_put64(r + 8, 64);
	CHECK(read_all(b, h + 64, err, sizeof err) < 0 && strstr(err, "does not fit the chunk"));

	// truncation: the offset is where the input ends
	size_t full = h + meta_chunk(b + h, "CNPE", one + 2, -1, 0);
	snprintf(want, sizeof want, "t: byte %zu: truncated chunk header (20 of 32 bytes)", h + 20);
	CHECK(read_all(b, h + 20, err, sizeof err) < 0 && strstr(err, want));
	snprintf(want, sizeof want, "t: byte %zu: truncated chunk: 40 of 64 bytes", h + 40);
	CHECK(read_all(b, h + 40, err, sizeof err) < 0 && strstr(err, want));
	snprintf(want, sizeof want, "t: byte %zu: truncated stream: no end chunk", h);
	CHECK(read_all(b, h, err, sizeof err) < 0 && strstr(err, want));
	CHECK(read_all(b, full, err, sizeof err) == 0);
	CHECK(read_all(b, 40, err, sizeof err) < 0 && strstr(err, "t: byte 40: truncated preamble"));
}

// --classes-from: a stream's 'classes' metadata, present and not empty.
static void classes_of(const char *path, const char *classes)
{
	Stream *w = xstream_open_write(path);
	stream_meta_set(w, "kind", "images");
	if (classes)
		stream_meta_set(w, "classes", classes);
	xstream_finish(w);
}

static void read_classes_die(void *path) { free(stream_read_classes(path)); }

static void test_read_classes(void)
{
	char *path = check_tmp("test_stream.classes");
	classes_of(path, "cats,dogs");
	char *c = stream_read_classes(path);
	CHECK(strcmp(c, "cats,dogs") == 0);
	free(c);
	classes_of(path, "a,,b");   // read as it is: the caller checks it
	c = stream_read_classes(path);
	CHECK(strcmp(c, "a,,b") == 0);
	free(c);
	char want[300];
	snprintf(want, sizeof want, "%s: no 'classes' in its metadata", path);
	classes_of(path, NULL);
	CHECK(check_dies(read_classes_die, path, 1, want));
	classes_of(path, "");
	CHECK(check_dies(read_classes_die, path, 1, want));
	// only a whole images stream: not a model, activations, nor one cut short
	static const char *const kinds[] = { "model", "activations", "predictions" };
	for (int k = 0; k < 3; k++) {
		Stream *w = xstream_open_write(path);
		stream_meta_set(w, "kind", kinds[k]);
		stream_meta_set(w, "classes", "cats,dogs");
		xstream_finish(w);
		snprintf(want, sizeof want, "%s: kind=%s, not an images stream", path, kinds[k]);
		CHECK(check_dies(read_classes_die, path, 1, want));
	}
	Stream *w = xstream_open_write(path);
	stream_meta_set(w, "classes", "cats,dogs");
	xstream_finish(w);
	snprintf(want, sizeof want, "%s: no kind, not an images stream", path);
	CHECK(check_dies(read_classes_die, path, 1, want));
	w = xstream_open_write(path);
	stream_meta_set(w, "kind", "images");
	stream_meta_set(w, "classes", "cats,dogs");
	Record r;
	record_init(&r);
	int64_t d = 3;
	record_add(&r, "image", DT_U8, 1, &d, "abc");
	xstream_write_record(w, &r);
	xstream_write_record(w, &r);
	record_free(&r);
	xstream_finish(w);
	size_t len;
	unsigned char *b = read_file(path, CHECK_FILE_CAP, &len);
	check_write_file(path, b, len - 64);   // the end chunk lost
	snprintf(want, sizeof want, "%s: byte %zu: truncated stream: no end chunk", path, len - 64);
	CHECK(check_dies(read_classes_die, path, 1, want));
	b[len - 100] ^= 1;   // a record damaged
	check_write_file(path, b, len);
	CHECK(check_dies(read_classes_die, path, 1, "checksum mismatch"));
	free(b);
	unlink(path);
	CHECK(check_dies(read_classes_die, path, 1, path));
	free(path);
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, "test_stream");
	tmp_path = check_tmp("test_stream");
	test_crc32();
	test_round_trip();
	test_every_byte_flip();
	test_messages();
	test_semantic_rules();
	test_trailer_rules();
	test_writer_trailer_rules();
	test_value_limit();
	test_caps_and_offsets();
	test_read_classes();
	unlink(tmp_path);
	free(tmp_path);
	return check_done("test_stream");
}
