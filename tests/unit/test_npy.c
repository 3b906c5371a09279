// The .npy header reader and formatter, and the streaming writer: a file
// (header rewritten in place) and a pipe (data through a temporary file).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "formats/npy.h"
#include "formats/stream.h"
#include "libcommon/util/err.h"
#include "libcommon/util/io.h"
#include "check.h"

static const int64_t DIMS[2] = { 2, 3 };

static void write_records(NpyWriter *w, int n)
{
	for (int r = 0; r < n; r++) {
		float v[6];
		for (int k = 0; k < 6; k++)
			v[k] = (float)(10 * r + k);
		npy_writer_add(w, v);
	}
}

// The array of write_records(n): shape (n, 2, 3), f32.
static int check_array(const unsigned char *b, size_t len, int n)
{
	NpyHeader h;
	size_t need;
	char err[200];
	if (npy_parse(b, len, &h, &need, err, sizeof err) != 0)
		return fprintf(stderr, "  %s\n", err), 0;
	if (h.dtype != DT_F32 || h.ndim != 3 || h.dims[0] != n || h.dims[1] != 2 || h.dims[2] != 3 ||
	    h.data_offset % 64 || h.data_offset + h.nbytes != len)
		return 0;
	for (int r = 0; r < n; r++)
		for (int k = 0; k < 6; k++) {
			float v;
			memcpy(&v, b + h.data_offset + 4 * (6 * r + k), 4);
			if (v != (float)(10 * r + k))
				return 0;
		}
	return 1;
}

static void test_file(void)
{
	char *path = check_tmp("test_npy");
	for (int n = 0; n <= 3; n++) {
		NpyWriter *w = npy_writer_open(path, DT_F32, 2, DIMS);
		CHECK(w != NULL);
		write_records(w, n);
		npy_writer_finish(w);
		size_t len;
		unsigned char *b = read_file(path, CHECK_FILE_CAP, &len);
		CHECK(check_array(b, len, n));
		// the header was sized for any count, then padded to that size
		unsigned char hdr[1024];
		int64_t big[3] = { INT64_MAX, 2, 3 };
		size_t hl = npy_format_header(hdr, sizeof hdr, DT_F32, 3, big, 0);
		CHECK(len == hl + 24 * (size_t)n);
		free(b);
	}
	unlink(path);
	free(path);
	CHECK(npy_writer_open("/nonexistent/x.npy", DT_STR, 2, DIMS) == NULL);   // no file made
	int64_t many[NPY_MAX_DIMS] = { 0 };
	CHECK(npy_writer_open("/nonexistent/x.npy", DT_F32, NPY_MAX_DIMS, many) == NULL);
}

// Through standard output made a pipe: the data wait in a temporary file.
static void test_pipe(void)
{
	int fd[2];
	CHECK(pipe(fd) == 0);
	fflush(stdout);
	int saved = dup(1);
	dup2(fd[1], 1);
	close(fd[1]);
	NpyWriter *w = npy_writer_open("-", DT_F32, 2, DIMS);
	write_records(w, 5);
	npy_writer_finish(w);
	// bf16 becomes f32: 1.5, -2 and 3.25 as bfloat16
	static const uint16_t bf[3] = { 0x3fc0, 0xc000, 0x4050 };
	int64_t three = 3;
	w = npy_writer_open("-", DT_BF16, 1, &three);
	npy_writer_add(w, bf);
	npy_writer_finish(w);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	static unsigned char b[1 << 15];
	size_t len = 0;
	ssize_t k;
	while ((k = read(fd[0], b + len, sizeof b - len)) > 0)
		len += (size_t)k;
	close(fd[0]);
	NpyHeader h;
	size_t need;
	char err[200];
	CHECK(npy_parse(b, len, &h, &need, err, sizeof err) == 0);
	size_t first = h.data_offset + h.nbytes;
	CHECK(first < len && check_array(b, first, 5));
	// formatted once, for the count it has
	unsigned char hdr[1024];
	int64_t five[3] = { 5, 2, 3 };
	CHECK(h.data_offset == npy_format_header(hdr, sizeof hdr, DT_F32, 3, five, 0) &&
	      memcmp(b, hdr, h.data_offset) == 0);
	CHECK(npy_parse(b + first, len - first, &h, &need, err, sizeof err) == 0);
	CHECK(h.dtype == DT_F32 && h.ndim == 2 && h.dims[0] == 1 && h.dims[1] == 3 &&
	      first + h.data_offset + 12 == len);
	float v[3];
	memcpy(v, b + first + h.data_offset, 12);
	CHECK(v[0] == 1.5f && v[1] == -2.0f && v[2] == 3.25f);
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, "test_npy");
	test_file();
	test_pipe();
	return check_done("test_npy");
}
