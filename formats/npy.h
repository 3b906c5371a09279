// NumPy .npy files (format versions 1.0, 2.0 and 3.0 read; 1.0/2.0 written):
// the little-endian numeric dtypes that map onto stream dtypes, C order
// only.  Fortran order, big-endian, object, structured and string dtypes
// are refused.
#ifndef CNNPIPE_NPY_H
#define CNNPIPE_NPY_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NPY_MAX_DIMS 32
#define NPY_MAX_HEADER (1u << 20)   // header dict bytes the reader accepts

typedef struct {
	int dtype;                      // DT_U8, DT_I8, DT_I32, DT_I64, DT_F16, DT_F32, DT_F64
	int ndim;
	int64_t dims[NPY_MAX_DIMS];
	uint64_t nbytes;                // of the data (checked against overflow)
	size_t data_offset;             // where the data begin in the file
} NpyHeader;

// Parses the header at the start of buf (len bytes).  Returns 0, or -1 with
// a message in err: 1 when buf is too short to hold the whole header (then
// *need is the length required), or another negative value on bad input.
int npy_parse(const unsigned char *buf, size_t len, NpyHeader *h, size_t *need,
              char *err, size_t errlen);
// Reads the header from f; returns 0 or -1 with a message in err.
int npy_read_header(FILE *f, NpyHeader *h, char *err, size_t errlen);
// Formats a header for (dtype, shape) into out, padded with spaces to at
// least min_len bytes in all (and to a multiple of 64).  Returns the length,
// or 0 if the dtype has no .npy form or cap is too small.
size_t npy_format_header(unsigned char *out, size_t cap, int dtype, int ndim,
                         const int64_t *dims, size_t min_len);
// The .npy descr of a stream dtype ("<f4", "|u1"...), NULL if none.
const char *npy_descr(int dtype);

// A .npy file written record by record: an array of shape (count, dims...)
// whose count is known only at the end.  On a seekable output the header
// goes first, with room for any count, and is rewritten at the end;
// otherwise the data wait in an unnamed temporary file in $TMPDIR
// (libcommon/util/scratch_file.h).
typedef struct NpyWriter NpyWriter;
// Opens path ("-" = standard output; a file appears whole or not at all,
// see libcommon/util/io.h) for records of (dtype, ndim, dims) each; bf16 is
// written as f32 (numpy has no bfloat16).  Returns NULL, opening nothing,
// when the dtype or shape has no .npy form; dies on an I/O error.
NpyWriter *npy_writer_open(const char *path, int dtype, int ndim, const int64_t *dims);
// Appends one record's data: numel(dims) elements of the dtype.
void npy_writer_add(NpyWriter *w, const void *data);
// Writes the header with the record count, commits the file and frees w.
void npy_writer_finish(NpyWriter *w);

#endif
