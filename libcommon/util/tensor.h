// Tensors and records: the in-memory form of everything cnnpipe passes
// around (stream records, a model's parameters).  The ground floor: the
// stream format (formats/stream.h) reads and writes them, the engine keeps
// its parameters in one.
#ifndef CNNPIPE_TENSOR_H
#define CNNPIPE_TENSOR_H
#include <stddef.h>
#include <stdint.h>

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
#define TENSOR_MAX_DIM ((uint64_t)1 << 40)        // one dimension, exclusive
#define RECORD_MAX_BYTES ((uint64_t)4 << 30)      // one record's data

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
// Appends an uninitialised tensor slot, for a reader that fills in a view
// into r->buf itself (the stream reader).
Tensor *record_slot(Record *r);
// Number of elements of a tensor.
int64_t tensor_numel(const Tensor *t);
// The shape as text: "(3, 224, 224)" with sep ", ", "(3,224,224)" with ","
// (tensor(1)'s form); "()" for a scalar.  Always NUL-terminated in cap bytes
// (truncated if need be; TENSOR_SHAPE_STR_CAP holds any shape with a
// separator of up to 2 bytes).  Returns buf.
#define TENSOR_SHAPE_STR_CAP 200
char *tensor_shape_str(const Tensor *t, const char *sep, char *buf, size_t cap);
// Tensor names and metadata keys: 1..255 printable ASCII bytes, no space.
int tensor_name_valid(const char *s, size_t n);
// Copies a string tensor into out (NUL-terminated, truncated to outlen-1).
void tensor_str(const Tensor *t, char *out, size_t outlen);

#endif
