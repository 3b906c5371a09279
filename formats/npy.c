// .npy header parsing and formatting; the data themselves are raw bytes that
// the caller reads or writes.  The format: "\x93NUMPY", u8 major, u8 minor,
// header length (u16 LE in 1.0, u32 LE in 2.0/3.0), then a Python dict
// literal {'descr': ..., 'fortran_order': ..., 'shape': (...)} padded with
// spaces and ending with '\n'; the data follow.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/util/io.h"
#include "libcommon/util/le.h"
#include "libcommon/util/scratch_file.h"
#include "half.h"
#include "npy.h"
#include "stream.h"

static const struct { const char *descr; int dtype; } DESCRS[] = {
	{ "|u1", DT_U8 }, { "<u1", DT_U8 }, { "u1", DT_U8 }, { "|i1", DT_I8 }, { "<i1", DT_I8 },
	{ "i1", DT_I8 }, { "<i4", DT_I32 }, { "<i8", DT_I64 }, { "<f2", DT_F16 },
	{ "<f4", DT_F32 }, { "<f8", DT_F64 },
};

const char *npy_descr(int dtype)
{
	switch (dtype) {
	case DT_U8: return "|u1";
	case DT_I8: return "|i1";
	case DT_I32: return "<i4";
	case DT_I64: return "<i8";
	case DT_F16: return "<f2";
	case DT_F32: return "<f4";
	case DT_F64: return "<f8";
	default: return NULL;
	}
}

typedef struct {
	const unsigned char *p, *end;
} Lex;

static void skip_ws(Lex *l)
{
	while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
		l->p++;
}

static int eat(Lex *l, char c)
{
	skip_ws(l);
	if (l->p < l->end && *l->p == c) {
		l->p++;
		return 1;
	}
	return 0;
}

// A quoted Python string without escapes, into out.
static int lex_str(Lex *l, char *out, size_t cap)
{
	skip_ws(l);
	if (l->p >= l->end || (*l->p != '\'' && *l->p != '"'))
		return 0;
	char q = (char)*l->p++;
	size_t n = 0;
	while (l->p < l->end && *l->p != q) {
		if (*l->p == '\\' || n + 1 >= cap)
			return 0;
		out[n++] = (char)*l->p++;
	}
	if (l->p >= l->end)
		return 0;
	l->p++;
	out[n] = 0;
	return 1;
}

static int lex_word(Lex *l, const char *w)
{
	skip_ws(l);
	size_t n = strlen(w);
	if ((size_t)(l->end - l->p) < n || memcmp(l->p, w, n) != 0)
		return 0;
	l->p += n;
	return 1;
}

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -2)

int npy_parse(const unsigned char *buf, size_t len, NpyHeader *h, size_t *need,
              char *err, size_t errlen)
{
	memset(h, 0, sizeof *h);
	if (len < 10) {
		*need = 10;
		return 1;
	}
	if (memcmp(buf, "\x93NUMPY", 6) != 0)
		return ERR("not a .npy file (bad magic)");
	int major = buf[6];
	size_t hlen, pre;
	if (major == 1) {
		hlen = le_get16(buf + 8);
		pre = 10;
	} else if (major == 2 || major == 3) {
		if (len < 12) {
			*need = 12;
			return 1;
		}
		hlen = le_get32(buf + 8);
		pre = 12;
	} else {
		return ERR("unsupported .npy version %d.%d", major, buf[7]);
	}
	if (hlen > NPY_MAX_HEADER)
		return ERR(".npy header of %zu bytes (at most %u)", hlen, NPY_MAX_HEADER);
	if (len < pre + hlen) {
		*need = pre + hlen;
		return 1;
	}
	Lex l = { buf + pre, buf + pre + hlen };
	int have_descr = 0, have_fo = 0, have_shape = 0;
	if (!eat(&l, '{'))
		return ERR(".npy header is not a dict");
	while (!eat(&l, '}')) {
		char key[32];
		if (!lex_str(&l, key, sizeof key) || !eat(&l, ':'))
			return ERR(".npy header: malformed dict");
		if (strcmp(key, "descr") == 0 && !have_descr) {
			char d[32];
			if (!lex_str(&l, d, sizeof d))
				return ERR(".npy header: descr is not a simple type string");
			h->dtype = 0;
			for (size_t i = 0; i < sizeof DESCRS / sizeof DESCRS[0]; i++)
				if (strcmp(d, DESCRS[i].descr) == 0)
					h->dtype = DESCRS[i].dtype;
			if (!h->dtype)
				return ERR(".npy dtype '%s' is not supported (little-endian u1 i1 i4 i8 "
				           "f2 f4 f8 only)", d);
			have_descr = 1;
		} else if (strcmp(key, "fortran_order") == 0 && !have_fo) {
			if (lex_word(&l, "True"))
				return ERR(".npy array is in Fortran order (C order only)");
			if (!lex_word(&l, "False"))
				return ERR(".npy header: fortran_order is not a boolean");
			have_fo = 1;
		} else if (strcmp(key, "shape") == 0 && !have_shape) {
			if (!eat(&l, '('))
				return ERR(".npy header: shape is not a tuple");
			while (!eat(&l, ')')) {
				skip_ws(&l);
				uint64_t v = 0;
				int digits = 0;
				while (l.p < l.end && *l.p >= '0' && *l.p <= '9') {
					v = v * 10 + (uint64_t)(*l.p++ - '0');
					if (v >= ((uint64_t)1 << 62))
						return ERR(".npy header: dimension too large");
					digits++;
				}
				if (!digits)
					return ERR(".npy header: bad shape");
				if (l.p < l.end && *l.p == 'L')
					l.p++;
				if (h->ndim == NPY_MAX_DIMS)
					return ERR(".npy array has more than %d dimensions", NPY_MAX_DIMS);
				h->dims[h->ndim++] = (int64_t)v;
				if (!eat(&l, ',')) {
					if (!eat(&l, ')'))
						return ERR(".npy header: bad shape");
					break;
				}
			}
			have_shape = 1;
		} else {
			return ERR(".npy header: unexpected or repeated key '%s'", key);
		}
		if (!eat(&l, ',')) {
			if (!eat(&l, '}'))
				return ERR(".npy header: malformed dict");
			break;
		}
	}
	skip_ws(&l);
	if (l.p != l.end)
		return ERR(".npy header: stray bytes after the dict");
	if (!have_descr || !have_fo || !have_shape)
		return ERR(".npy header lacks descr, fortran_order or shape");
	uint64_t nb = dtype_size(h->dtype);
	for (int i = 0; i < h->ndim; i++) {
		uint64_t d = (uint64_t)h->dims[i];
		if (d && nb > UINT64_MAX / 4 / d)
			return ERR(".npy array size overflows");
		nb *= d;
	}
	h->nbytes = nb;
	h->data_offset = pre + hlen;
	return 0;
}

int npy_read_header(FILE *f, NpyHeader *h, char *err, size_t errlen)
{
	unsigned char small[12];
	size_t have = fread(small, 1, 10, f), need = 0;
	int rc = npy_parse(small, have, h, &need, err, errlen);
	if (rc == 1 && need == 12 && have == 10) {
		have += fread(small + 10, 1, 2, f);
		rc = npy_parse(small, have, h, &need, err, errlen);
	}
	if (rc == 1 && need > have && have >= 10) {
		unsigned char *buf = malloc(need);   // need <= 12 + NPY_MAX_HEADER
		if (!buf)
			return snprintf(err, errlen, "out of memory"), -1;
		memcpy(buf, small, have);
		have += fread(buf + have, 1, need - have, f);
		rc = npy_parse(buf, have, h, &need, err, errlen);
		free(buf);
	}
	if (rc == 1) {
		if (ferror(f))
			snprintf(err, errlen, "read error");
		else
			snprintf(err, errlen, have ? "truncated .npy header" : "empty file");
		return -1;
	}
	return rc ? -1 : 0;
}

size_t npy_format_header(unsigned char *out, size_t cap, int dtype, int ndim,
                         const int64_t *dims, size_t min_len)
{
	const char *d = npy_descr(dtype);
	if (!d)
		return 0;
	char dict[1024];
	int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", d);
	for (int i = 0; i < ndim; i++)
		n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)dims[i],
		              i + 1 < ndim ? " " : "");
	if (ndim > 1)
		n--;   // "(2, 3)" but "(2,)"
	n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
	size_t pre = 10, total = pre + (size_t)n + 1;
	if (total < min_len)
		total = min_len;
	total = (total + 63) & ~(size_t)63;
	if (total - pre > 65535) {
		pre = 12;
		total = (pre + (size_t)n + 1 + 63) & ~(size_t)63;
	}
	if (total > cap)
		return 0;
	memcpy(out, "\x93NUMPY", 6);
	out[6] = pre == 10 ? 1 : 2;
	out[7] = 0;
	size_t hl = total - pre;
	if (pre == 10)
		le_put16(out + 8, (uint16_t)hl);
	else
		le_put32(out + 8, (uint32_t)hl);
	memcpy(out + pre, dict, (size_t)n);
	memset(out + pre + n, ' ', total - pre - (size_t)n - 1);
	out[total - 1] = '\n';
	return total;
}

// ---- the streaming writer ----------------------------------------------------

struct NpyWriter {
	AtomicOut out;
	const char *label;           // the output in messages
	FILE *data;                  // out.f, or a temporary file
	int seekable;
	off_t start;                 // of the header in out.f
	int dtype, file_dtype, ndim; // ndim of the file, the count's included
	int64_t dims[NPY_MAX_DIMS];  // dims[0]: the count
	size_t hlen, nbytes;         // of the first header; of one record's data
	uint64_t count;
	float *conv;                 // bf16 -> f32
};

NpyWriter *npy_writer_open(const char *path, int dtype, int ndim, const int64_t *dims)
{
	if (ndim < 0 || ndim + 1 > NPY_MAX_DIMS)
		return NULL;
	int file_dtype = dtype == DT_BF16 ? DT_F32 : dtype;
	int64_t d[NPY_MAX_DIMS];
	d[0] = INT64_MAX;   // placeholder: as wide as any count
	memcpy(d + 1, dims, sizeof(int64_t) * (size_t)ndim);
	unsigned char hdr[1024];
	size_t hlen = npy_format_header(hdr, sizeof hdr, file_dtype, ndim + 1, d, 0);
	if (!hlen)
		return NULL;
	NpyWriter *w = xcalloc(1, sizeof *w);
	w->dtype = dtype;
	w->file_dtype = file_dtype;
	w->ndim = ndim + 1;
	memcpy(w->dims, d, sizeof d);
	w->hlen = hlen;
	w->nbytes = dtype_size(dtype);
	for (int k = 0; k < ndim; k++)
		w->nbytes *= (size_t)dims[k];
	if (dtype == DT_BF16)
		w->conv = xmalloc_array(w->nbytes / 2, sizeof(float));
	atomic_open(&w->out, path);
	w->label = strcmp(path, "-") ? w->out.path : "standard output";
	struct stat st;
	w->start = ftello(w->out.f);
	w->seekable = w->start >= 0 && fstat(fileno(w->out.f), &st) == 0 && S_ISREG(st.st_mode);
	w->data = w->seekable ? w->out.f : scratch_file();
	if (w->seekable)
		write_full(w->data, hdr, hlen, w->label);
	return w;
}

void npy_writer_add(NpyWriter *w, const void *data)
{
	const char *label = w->seekable ? w->label : "temporary file";
	if (w->dtype == DT_BF16) {
		size_t n = w->nbytes / 2;
		for (size_t q = 0; q < n; q++) {
			uint16_t v;
			memcpy(&v, (const unsigned char *)data + 2 * q, 2);
			w->conv[q] = bf16_to_f32(v);
		}
		write_full(w->data, w->conv, n * sizeof(float), label);
	} else {
		write_full(w->data, data, w->nbytes, label);
	}
	w->count++;
}

static void copy_out(FILE *from, FILE *to, const char *label)
{
	static char buf[1 << 16];
	size_t k;
	rewind(from);
	while ((k = fread(buf, 1, sizeof buf, from)) > 0)
		write_full(to, buf, k, label);
	if (ferror(from))
		die_errno("temporary file: read error");
}

void npy_writer_finish(NpyWriter *w)
{
	w->dims[0] = (int64_t)w->count;
	unsigned char fin[1024];
	size_t flen = npy_format_header(fin, sizeof fin, w->file_dtype, w->ndim, w->dims,
	                                w->seekable ? w->hlen : 0);
	FILE *f = w->out.f;
	if (w->seekable) {
		if (flen != w->hlen || fflush(f) || fseeko(f, w->start, SEEK_SET))
			die_errno("%s: cannot rewrite the .npy header", w->label);
		write_full(f, fin, flen, w->label);
		if (fseeko(f, 0, SEEK_END))
			die_errno("%s: seek", w->label);
	} else {
		write_full(f, fin, flen, w->label);
		copy_out(w->data, f, w->label);
		fclose(w->data);
	}
	atomic_commit(&w->out);
	free(w->conv);
	free(w);
}
