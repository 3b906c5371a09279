// Reading a stream by index: stream_tell gives each record's offset in one
// pass, stream_seek_record goes back to any of them (file and memory
// streams), with the reader's checks intact; a pipe cannot seek.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "formats/stream.h"
#include "libcommon/util/err.h"
#include "libcommon/util/io.h"

#define N 9

// Record i: a u8 tensor of 1 + 37*i bytes (records of different lengths,
// some over one 64-byte block) whose bytes say i, and its index as i32.
static void make_record(Record *r, int i)
{
	record_clear(r);
	int64_t d = 1 + 37 * i;
	unsigned char *u = record_add(r, "v", DT_U8, 1, &d, NULL);
	for (int64_t k = 0; k < d; k++)
		u[k] = (unsigned char)(i * 11 + k);
	int32_t idx = i;
	record_add(r, "i", DT_I32, 0, NULL, &idx);
}

static int record_is(const Record *r, int i)
{
	Tensor *v = record_find(r, "v"), *t = record_find(r, "i");
	if (!v || !t || v->ndim != 1 || v->dims[0] != 1 + 37 * i || *(int32_t *)t->data != i)
		return 0;
	for (int64_t k = 0; k < v->dims[0]; k++)
		if (((unsigned char *)v->data)[k] != (unsigned char)(i * 11 + k))
			return 0;
	return 1;
}

static void write_stream(const char *path)
{
	Stream *w = xstream_open_write(path);
	stream_meta_set(w, "kind", "test");
	Record r;
	record_init(&r);
	for (int i = 0; i < N; i++) {
		make_record(&r, i);
		xstream_write_record(w, &r);
	}
	stream_meta_set(w, "done", "1");
	xstream_finish(w);
	record_free(&r);
}

// One pass recording offsets, then reads in a scrambled order: each record
// comes back whole; the end is found again after a seek to the last.
static void check_seeks(Stream *s, const char *what)
{
	uint64_t off[N + 1];
	Record r;
	record_init(&r);
	int i = 0, ok = 1;
	off[0] = stream_tell(s);
	CHECK(off[0] % 64 == 0 && off[0] > 64);
	while (stream_read_record(s, &r) == 1) {
		ok &= i < N && record_is(&r, i);
		off[++i] = stream_tell(s);
	}
	CHECK(ok && i == N);
	CHECK(strcmp(stream_meta_get(s, "done"), "1") == 0);   // end chunk read
	const int order[] = { 4, 0, 8, 8, 3, 1, 7, 2, 6, 5, 0 };
	ok = 1;
	for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
		int j = order[k];
		ok &= stream_seek_record(s, off[j], (uint64_t)j) == 0;
		ok &= stream_read_record(s, &r) == 1 && record_is(&r, j);
		ok &= stream_count(s) == (uint64_t)j + 1 && stream_tell(s) == off[j + 1];
	}
	CHECK(ok);
	if (!ok)
		fprintf(stderr, "  (%s)\n", what);
	// From the last record on, the stream ends cleanly again.
	CHECK(stream_seek_record(s, off[N - 1], N - 1) == 0);
	CHECK(stream_read_record(s, &r) == 1 && record_is(&r, N - 1));
	CHECK(stream_read_record(s, &r) == 0);
	// A wrong index is caught by the sequence check, naming the offset;
	// a seek repairs the failed stream.
	CHECK(stream_seek_record(s, off[3], 5) == 0);
	CHECK(stream_read_record(s, &r) == -1);
	char want[64];
	snprintf(want, sizeof want, "byte %llu: record sequence number 3, expected 5",
	         (unsigned long long)off[3]);
	CHECK(strstr(stream_error(s), want) != NULL);
	CHECK(stream_seek_record(s, off[3], 3) == 0);
	CHECK(stream_read_record(s, &r) == 1 && record_is(&r, 3));
	// An offset inside a chunk: refused, or caught by the chunk checks.
	CHECK(stream_seek_record(s, off[3] + 8, 3) == -1);
	CHECK(strstr(stream_error(s), "not a chunk offset") != NULL);
	CHECK(stream_seek_record(s, off[3] + 64, 3) == 0);
	CHECK(stream_read_record(s, &r) == -1);
	// The end chunk's offset: a clean end, as the record count agrees.
	CHECK(stream_seek_record(s, off[N], N) == 0);
	CHECK(stream_read_record(s, &r) == 0);
	record_free(&r);
}

static void test_file(const char *path)
{
	write_stream(path);
	Stream *s = xstream_open_read(path);
	check_seeks(s, "file");
	stream_close(s);
}

static void test_mem(const char *path)
{
	size_t len;
	unsigned char *buf = read_file(path, CHECK_FILE_CAP, &len);
	Stream *s = stream_open_mem(buf, len, "mem");
	CHECK(s != NULL);
	check_seeks(s, "memory");
	CHECK(stream_seek_record(s, len + 64, 0) == -1);
	CHECK(strstr(stream_error(s), "past the end") != NULL);
	stream_close(s);
	free(buf);
}

// A pipe on the standard input: read in order, but no seek.
static void test_pipe(const char *path)
{
	size_t len;
	unsigned char *buf = read_file(path, CHECK_FILE_CAP, &len);
	CHECK(len < 4096);   // fits a pipe's buffer: written before it is read
	int fd[2], saved = dup(0);
	if (pipe(fd) != 0 || saved < 0 || write(fd[1], buf, len) != (ssize_t)len)
		abort();
	close(fd[1]);
	dup2(fd[0], 0);
	close(fd[0]);
	Stream *s = xstream_open_read("-");
	uint64_t first = stream_tell(s);
	Record r;
	record_init(&r);
	CHECK(stream_read_record(s, &r) == 1 && record_is(&r, 0));
	CHECK(stream_skip_record(s) == -1);
	CHECK(strstr(stream_error(s), "not a file") != NULL);
	CHECK(stream_seek_record(s, first, 0) == -1);
	CHECK(strstr(stream_error(s), "standard input: byte") != NULL);
	CHECK(strstr(stream_error(s), "cannot seek: Illegal seek") != NULL);
	stream_close(s);
	record_free(&r);
	dup2(saved, 0);
	close(saved);
	clearerr(stdin);
	free(buf);
}

// stream_skip_record: the offsets and count a reading pass gives, from a
// header per record; then the end chunk, read and checked (its metadata
// joined); a record after skips reads whole; a cut file is found out.
static void check_skips(Stream *s, const uint64_t *off)
{
	Record r;
	record_init(&r);
	for (int i = 0; i < N; i++) {
		CHECK(stream_tell(s) == off[i]);
		CHECK(stream_skip_record(s) == 1);
	}
	CHECK(stream_tell(s) == off[N] && stream_count(s) == N);
	CHECK(stream_skip_record(s) == 0);
	CHECK(stream_meta_get(s, "done") && !strcmp(stream_meta_get(s, "done"), "1"));
	CHECK(stream_seek_record(s, off[0], 0) == 0);
	for (int i = 0; i < 4; i++)
		CHECK(stream_skip_record(s) == 1);
	CHECK(stream_read_record(s, &r) == 1 && record_is(&r, 4));
	record_free(&r);
}

static void test_skip(const char *path)
{
	uint64_t off[N + 1];
	Record r;
	record_init(&r);
	Stream *s = xstream_open_read(path);
	for (int i = 0; i <= N; i++) {
		off[i] = stream_tell(s);
		CHECK(stream_read_record(s, &r) == (i < N));
	}
	stream_close(s);
	s = xstream_open_read(path);
	check_skips(s, off);
	stream_close(s);
	size_t len;
	unsigned char *buf = read_file(path, CHECK_FILE_CAP, &len);
	s = stream_open_mem(buf, len, "mem");
	check_skips(s, off);
	stream_close(s);
	// the data of record 2 damaged: skipped over, refused when read
	buf[off[2] + 100] ^= 1;
	s = stream_open_mem(buf, len, "mem");
	CHECK(stream_skip_record(s) == 1 && stream_skip_record(s) == 1);
	CHECK(stream_skip_record(s) == 1);
	CHECK(stream_seek_record(s, off[2], 2) == 0 && stream_read_record(s, &r) == -1);
	CHECK(strstr(stream_error(s), "checksum mismatch") != NULL);
	stream_close(s);
	buf[off[2] + 100] ^= 1;
	// cut inside the last record: a file and a memory stream say so
	size_t cut = (size_t)(off[N - 1] + 40);
	FILE *f = fopen(path, "wb");
	CHECK(f && fwrite(buf, 1, cut, f) == cut);
	fclose(f);
	Stream *m = stream_open_mem(buf, cut, "mem");
	Stream *ss[2] = { xstream_open_read(path), m };
	for (int k = 0; k < 2; k++) {
		int i = 0, rc;
		while ((rc = stream_skip_record(ss[k])) == 1)
			i++;
		CHECK(rc == -1 && i == N - 1);
		check_msg(strstr(stream_error(ss[k]), "truncated chunk") != NULL,
		          "skip of a cut stream: %s", stream_error(ss[k]));
		stream_close(ss[k]);
	}
	free(buf);
	record_free(&r);
	write_stream(path);
}

static void test_writer(const char *path)
{
	Stream *w = xstream_open_write(path);
	CHECK(stream_seek_record(w, 64, 0) == -1);
	CHECK(strstr(stream_error(w), "being written") != NULL);
	stream_close(w);
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, "test_stream_seek");
	char *path = check_tmp("test_stream_seek");
	test_file(path);
	test_mem(path);
	test_pipe(path);
	test_skip(path);
	test_writer(path);
	unlink(path);
	free(path);
	return check_done("test_stream_seek");
}
