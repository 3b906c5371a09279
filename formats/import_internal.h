// Shared internals of the importers (formats/pth.c, safetensors.c, darknet.c,
// zip.c, pickle.c).  Not a contract: only the importers include it.
#ifndef CNNPIPE_IMPORT_INTERNAL_H
#define CNNPIPE_IMPORT_INTERNAL_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "half.h"
#include "stream.h"

#include "libcommon/util/err.h"   // err_set: the importers' messages

// Element types found in weight files.  Floating ones become f32 in a
// Record, integer ones (and bool) i64.
enum SrcType { ST_NONE = 0, ST_F32, ST_F64, ST_F16, ST_BF16, ST_I64, ST_I32,
               ST_I16, ST_I8, ST_U8, ST_BOOL };
size_t st_size(int st);
int st_is_float(int st);
const char *st_name(int st);
// The Record dtype an element type lands as (DT_F32 or DT_I64).
int st_out_dtype(int st);
// Converts n elements, `stride` source elements apart (little-endian, any
// alignment), to the output type (float or int64_t) at dst.
void st_convert(const unsigned char *src, int st, size_t n, size_t stride,
                void *dst);

// A name acceptable to record_add: 1..TENSOR_NAME_MAX printable ASCII
// characters.  Returns 1 if valid.
int imp_name_ok(const char *s, size_t len);
// Printable copy of untrusted text for messages (other bytes become '?').
void imp_printable(char *out, size_t outlen, const char *s, size_t n);
// Checks a tensor about to be added to out is one record_add accepts (it
// dies otherwise): dims in [1, 2^40), the record within
// STREAM_MAX_RECORD_BYTES, the name not among out's first n0 tensors (those
// there before the import; the importers check duplicates within a file).
// 0, or -1 with "<file>: '<tensor>': ..." in err.
int imp_shape_ok(const Record *out, int n0, const char *file, const char *tname,
                 int dtype, int ndim, const int64_t *dims, char *err,
                 size_t errlen);

// ---- zip (formats/zip.c): stored entries only ----
typedef struct {
	const char *name;          // not NUL-terminated
	size_t name_len;
	const unsigned char *data; // within the archive buffer
	size_t size;
	uint32_t crc;
	int checked;               // CRC verified
} ZipEntry;
typedef struct {
	ZipEntry *e;
	int n;
} Zip;
// Parses the central directory; every entry must be stored (uncompressed),
// unencrypted and lie within buf.  Errors in err (no file name prefix).
int zip_open_mem(const unsigned char *buf, size_t len, Zip *z, char *err,
                 size_t errlen);
const ZipEntry *zip_find(const Zip *z, const char *name, size_t name_len);
// Verifies an entry's CRC-32 (once); 0 or -1 with err.
int zip_check(ZipEntry *e, char *err, size_t errlen);
void zip_free(Zip *z);

// ---- pickle (formats/pickle.c): just enough for a torch state_dict ----
enum { PK_NONE = 1, PK_BOOL, PK_INT, PK_BIGINT, PK_FLOAT, PK_STR, PK_TUPLE,
       PK_LIST, PK_DICT, PK_GLOBAL, PK_STORAGE, PK_TENSOR };
enum { G_ODICT = 1, G_REBUILD_V2, G_REBUILD, G_REBUILD_PARAM, G_STORAGE };
typedef struct PObj PObj;
struct PObj {
	int type;
	int64_t i;               // int, bool; PK_GLOBAL: G_*
	double f;
	const char *s;           // str / bigint bytes (into the input buffer)
	size_t slen;
	PObj **items;            // tuple, list; dict: key, value, key, value...
	int n, cap;
	// PK_GLOBAL G_STORAGE and PK_STORAGE: the element type (ST_*)
	int st;
	// PK_STORAGE: the key, its element count, and (legacy views) an offset
	// into the root storage and the view's element count.
	const char *key;
	size_t key_len;
	int64_t numel, view_off, view_numel;
	// PK_TENSOR
	PObj *storage;
	int64_t offset;
	int ndim;
	int64_t *size, *stride;  // ndim each, owned by the Pickle
};
typedef struct Pickle Pickle;
Pickle *pk_new(void);
void pk_free(Pickle *p);        // frees every object it made
// Loads one pickle from buf; *used = bytes consumed up to STOP.  NULL on
// error with "pickle byte N: reason" in err, N counted from `base`.
// Only whitelisted globals are accepted (OrderedDict, torch's tensor
// rebuild functions and storage types); nothing is ever called.
PObj *pk_load(Pickle *p, const unsigned char *buf, size_t len, size_t base,
              size_t *used, char *err, size_t errlen);
// Objects made so far (a cap keeps a hostile pickle from exhausting memory).
#define PK_MAX_OBJECTS (1 << 20)
#define PK_MAX_MEMO (1 << 20)
#define PK_MAX_MARKS 64

#endif
