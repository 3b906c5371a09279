// The cnnpipe tensor stream: reader and writer.  The bytes are specified in
// man/man5/cnnpipe-tensor.5; this is the one implementation every tool uses.
//
// A stream is: a preamble (magic, version), a header chunk (key/value
// metadata), any number of record chunks (each a set of named tensors), and
// an end chunk (the record count and trailing metadata).  Every chunk is
// 64-byte aligned and carries its length and a CRC-32.
#ifndef CNNPIPE_STREAM_H
#define CNNPIPE_STREAM_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum DType {
	DT_U8 = 1, DT_I8 = 2, DT_I32 = 3, DT_I64 = 4,
	DT_F16 = 5, DT_BF16 = 6, DT_F32 = 7, DT_F64 = 8,
	DT_STR = 9,     // UTF-8 text, one byte per element, shape (len)
};
#define DT_MAX 9
size_t dtype_size(int dt);              // 0 for an unknown code
const char *dtype_name(int dt);         // "u8", "f32", ...; "?" if unknown
int dtype_from_name(const char *name);  // 0 if unknown

#define TENSOR_MAX_DIMS 8
#define TENSOR_NAME_MAX 255
// Caps the reader enforces before allocating anything (see cnnpipe-tensor(5)).
#define STREAM_MAX_META_BYTES   (16u << 20)   // descriptor of a header/end chunk
#define STREAM_MAX_TENSORS      65536         // tensors in one record
#define STREAM_MAX_RECORD_BYTES ((uint64_t)4 << 30)   // one record chunk

typedef struct {
	char name[TENSOR_NAME_MAX + 1];
	int dtype;
	int ndim;
	int64_t dims[TENSOR_MAX_DIMS];
	size_t nbytes;     // product(dims) * dtype_size(dtype)
	size_t offset;     // of the data within the record's buffer (64-aligned)
	void *data;        // = buf + offset; valid until the record changes
} Tensor;

// A record: named tensors whose data live in one 64-byte aligned buffer with
// a table of views.  Also the in-memory form of a model's parameters.
typedef struct {
	int n, cap;
	Tensor *t;
	unsigned char *buf;
	size_t used, bufcap;
	uint64_t index;    // position in the stream it was read from
} Record;

void record_init(Record *r);
void record_free(Record *r);
void record_clear(Record *r);            // n = 0, keeps the memory
// Appends a tensor (copying `data` when not NULL, zero-filled otherwise) and
// returns its data pointer.  Dies on an invalid name, dtype or shape.
// Pointers returned earlier stay valid only until the next record_add.
void *record_add(Record *r, const char *name, int dtype, int ndim,
                 const int64_t *dims, const void *data);
void *record_add_str(Record *r, const char *name, const char *s);
Tensor *record_find(const Record *r, const char *name);  // NULL if absent
// Number of elements of a tensor.
int64_t tensor_numel(const Tensor *t);
// Copies a string tensor into out (NUL-terminated, truncated to outlen-1).
void tensor_str(const Tensor *t, char *out, size_t outlen);

typedef struct Stream Stream;

// Reading.  Functions return NULL / -1 on failure and leave a message that
// names the file and byte offset in stream_error(s) (stream_open_* failures:
// stream_last_error()).
Stream *stream_open_read(const char *path);       // "-" = stdin
Stream *stream_open_mem(const void *buf, size_t len, const char *name);
const char *stream_last_error(void);
const char *stream_error(const Stream *s);
const char *stream_path(const Stream *s);
// 1: a record was read into r; 0: clean end of stream; -1: error.
int stream_read_record(Stream *s, Record *r);
uint64_t stream_count(const Stream *s);  // records read / written so far

// Metadata: the header's, plus the end chunk's once it has been read
// (a trailing key overrides a header key of the same name).
const char *stream_meta_get(const Stream *s, const char *key);
int stream_meta_len(const Stream *s);
const char *stream_meta_key(const Stream *s, int i);
const char *stream_meta_val(const Stream *s, int i);
// The end chunk's metadata alone: for a read stream once the end chunk has
// been read (empty before), for a write stream the keys set after the header
// went out.
int stream_trailer_len(const Stream *s);
const char *stream_trailer_key(const Stream *s, int i);
const char *stream_trailer_val(const Stream *s, int i);

// Writing.  A file is written under a temporary name and renamed into place
// by stream_finish; "-" writes stdout.
Stream *stream_open_write(const char *path);
// Before the first record the key goes into the header, afterwards into the
// end chunk.  Setting a key again replaces its value.
void stream_meta_set(Stream *s, const char *key, const char *val);
void stream_meta_setf(Stream *s, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
// Always into the end chunk, even when no record has been written yet (for
// totals known only at the end, such as imgprep's `skipped`).
void stream_meta_set_end(Stream *s, const char *key, const char *val);
// Copies all metadata of src (as read so far) into s.
void stream_meta_copy(Stream *s, const Stream *src);
// Writes the preamble and header now (stream_write_record does it before
// the first record): keys set afterwards go into the end chunk, even when no
// record follows.
int stream_write_header(Stream *s);
int stream_write_record(Stream *s, const Record *r);
// Writes the end chunk, flushes, renames into place; frees s.  -1 on error.
int stream_finish(Stream *s);
// Closes a read stream, or abandons a write stream (its temporary file is
// removed); frees s.
void stream_close(Stream *s);

// Die-on-error forms for tools: "prog: <file>: byte N: <what is wrong>".
Stream *xstream_open_read(const char *path);
Stream *xstream_open_write(const char *path);
int xstream_read_record(Stream *s, Record *r);   // 1 or 0
void xstream_write_record(Stream *s, const Record *r);
void xstream_write_header(Stream *s);
void xstream_finish(Stream *s);

#endif
