// Shared helpers of the importers: messages, element conversion, checks.
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "libcommon/util/le.h"
#include "import_internal.h"

size_t st_size(int st)
{
	switch (st) {
	case ST_F32: case ST_I32: return 4;
	case ST_F64: case ST_I64: return 8;
	case ST_F16: case ST_BF16: case ST_I16: return 2;
	case ST_I8: case ST_U8: case ST_BOOL: return 1;
	}
	return 0;
}

int st_is_float(int st)
{
	return st == ST_F32 || st == ST_F64 || st == ST_F16 || st == ST_BF16;
}

const char *st_name(int st)
{
	static const char *n[] = { "?", "f32", "f64", "f16", "bf16", "i64",
	                           "i32", "i16", "i8", "u8", "bool" };
	return st > 0 && st <= ST_BOOL ? n[st] : "?";
}

int st_out_dtype(int st)
{
	return st_is_float(st) ? DT_F32 : DT_I64;
}

void st_convert(const unsigned char *src, int st, size_t n, size_t stride,
                void *dst)
{
	size_t es = st_size(st), step = es * stride;
	float *fo = dst;
	int64_t *io = dst;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (stride == 1 && (st == ST_F32 || st == ST_I64)) {
		memcpy(dst, src, n * es);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++, src += step) {
		switch (st) {
		case ST_F32: {
			uint32_t b = le_get32(src);
			memcpy(&fo[i], &b, 4);
			break;
		}
		case ST_F64: {
			uint64_t b = le_get64(src);
			double d;
			memcpy(&d, &b, 8);
			// Out of float range is undefined behaviour in C: saturate as
			// torch's .float() does.
			fo[i] = d > FLT_MAX ? INFINITY : d < -FLT_MAX ? -INFINITY : (float)d;
			break;
		}
		case ST_F16: fo[i] = f16_to_f32(le_get16(src)); break;
		case ST_BF16: fo[i] = bf16_to_f32(le_get16(src)); break;
		case ST_I64: io[i] = (int64_t)le_get64(src); break;
		case ST_I32: io[i] = (int32_t)le_get32(src); break;
		case ST_I16: io[i] = (int16_t)le_get16(src); break;
		case ST_I8: io[i] = (int8_t)src[0]; break;
		case ST_U8: io[i] = src[0]; break;
		case ST_BOOL: io[i] = src[0] != 0; break;
		}
	}
}

int imp_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > TENSOR_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

int imp_shape_ok(const Record *out, int n0, const char *file, const char *tname,
                 int dtype, int ndim, const int64_t *dims, char *err,
                 size_t errlen)
{
	if (ndim < 0 || ndim > TENSOR_MAX_DIMS)
		return err_set(err, errlen, "%s: '%s': %d dimensions (at most %d)",
		              file, tname, ndim, TENSOR_MAX_DIMS);
	uint64_t bytes = dtype_size(dtype);
	for (int k = 0; k < ndim; k++) {
		if (dims[k] < 1 || dims[k] >= ((int64_t)1 << 40))
			return err_set(err, errlen, "%s: '%s': dimension %d is %lld "
			              "(empty or huge tensors are not supported)", file,
			              tname, k, (long long)dims[k]);
		if (bytes > STREAM_MAX_RECORD_BYTES / (uint64_t)dims[k])
			return err_set(err, errlen, "%s: '%s': too large", file, tname);
		bytes *= (uint64_t)dims[k];
	}
	for (int i = 0; i < n0 && i < out->n; i++)
		if (!strcmp(out->t[i].name, tname))
			return err_set(err, errlen, "%s: '%s': already in the record",
			              file, tname);
	if (out->used + 64 + bytes > STREAM_MAX_RECORD_BYTES)
		return err_set(err, errlen, "%s: '%s': the tensors exceed %llu bytes",
		              file, tname, (unsigned long long)STREAM_MAX_RECORD_BYTES);
	return 0;
}

void imp_printable(char *out, size_t outlen, const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k + 1 < outlen; i++)
		out[k++] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f
		           ? s[i] : '?';
	out[k] = 0;
}
