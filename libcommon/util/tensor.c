// Tensors and records (tensor.h).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "err.h"
#include "tensor.h"

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

// ---- dtypes -------------------------------------------------------------

static const struct { const char *name; size_t size; } DTYPES[DT_MAX + 1] = {
	[DT_U8] = { "u8", 1 }, [DT_I8] = { "i8", 1 }, [DT_I32] = { "i32", 4 },
	[DT_I64] = { "i64", 8 }, [DT_F16] = { "f16", 2 }, [DT_BF16] = { "bf16", 2 },
	[DT_F32] = { "f32", 4 }, [DT_F64] = { "f64", 8 }, [DT_STR] = { "str", 1 },
};

size_t dtype_size(int dt)
{
	return dt >= 1 && dt <= DT_MAX ? DTYPES[dt].size : 0;
}

const char *dtype_name(int dt)
{
	return dt >= 1 && dt <= DT_MAX ? DTYPES[dt].name : "?";
}

int dtype_from_name(const char *name)
{
	for (int i = 1; i <= DT_MAX; i++)
		if (strcmp(DTYPES[i].name, name) == 0)
			return i;
	return 0;
}

// ---- names ----------------------------------------------------------------

int tensor_name_valid(const char *s, size_t n)
{
	if (n < 1 || n > TENSOR_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

// ---- records ----------------------------------------------------------------

void record_init(Record *r)
{
	memset(r, 0, sizeof *r);
}

void record_free(Record *r)
{
	free(r->t);
	free(r->buf);
	record_init(r);
}

void record_clear(Record *r)
{
	r->n = 0;
	r->used = 0;
}

static void record_reserve(Record *r, size_t need)
{
	if (need <= r->bufcap)
		return;
	size_t cap = r->bufcap ? r->bufcap : 4096;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	unsigned char *nb = xaligned_alloc(64, cap);
	if (r->used)
		memcpy(nb, r->buf, r->used);
	free(r->buf);
	r->buf = nb;
	r->bufcap = cap;
	for (int i = 0; i < r->n; i++)
		r->t[i].data = r->buf + r->t[i].offset;
}

Tensor *record_slot(Record *r)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->t = xrealloc(r->t, sizeof(Tensor) * (size_t)r->cap);
	}
	return &r->t[r->n++];
}

void *record_add(Record *r, const char *name, int dtype, int ndim,
                 const int64_t *dims, const void *data)
{
	if (!tensor_name_valid(name, strlen(name)))
		die("invalid tensor name '%s'", name);
	if (!dtype_size(dtype))
		die("tensor %s: invalid dtype %d", name, dtype);
	if (ndim < 0 || ndim > TENSOR_MAX_DIMS)
		die("tensor %s: %d dimensions (at most %d)", name, ndim, TENSOR_MAX_DIMS);
	if (dtype == DT_STR && ndim != 1)
		die("tensor %s: a str tensor has 1 dimension, not %d", name, ndim);
	size_t nbytes = dtype_size(dtype);
	for (int i = 0; i < ndim; i++) {
		if (dims[i] < 0 || (uint64_t)dims[i] >= TENSOR_MAX_DIM ||
		    (dims[i] == 0 && dtype != DT_STR))
			die("tensor %s: invalid dimension %lld", name, (long long)dims[i]);
		if (!size_mul(nbytes, (size_t)dims[i], &nbytes))
			die("tensor %s: size overflows", name);
	}
	if (record_find(r, name))
		die("tensor %s: name used twice in one record", name);
	size_t off = align64(r->used), end;
	if (!size_add(off, nbytes, &end) || end > RECORD_MAX_BYTES)
		die("tensor %s: record larger than %llu bytes", name,
		    (unsigned long long)RECORD_MAX_BYTES);
	record_reserve(r, end);
	if (off > r->used)
		memset(r->buf + r->used, 0, off - r->used);
	Tensor *t = record_slot(r);
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->dtype = dtype;
	t->ndim = ndim;
	for (int i = 0; i < ndim; i++)
		t->dims[i] = dims[i];
	t->nbytes = nbytes;
	t->offset = off;
	t->data = r->buf + off;
	if (data)
		memcpy(t->data, data, nbytes);
	else
		memset(t->data, 0, nbytes);
	r->used = end;
	return t->data;
}

void *record_add_str(Record *r, const char *name, const char *s)
{
	int64_t n = (int64_t)strlen(s);
	return record_add(r, name, DT_STR, 1, &n, s);
}

Tensor *record_find(const Record *r, const char *name)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->t[i].name, name) == 0)
			return &r->t[i];
	return NULL;
}

int64_t tensor_numel(const Tensor *t)
{
	int64_t n = 1;
	for (int i = 0; i < t->ndim; i++)
		n *= t->dims[i];
	return n;
}

void tensor_str(const Tensor *t, char *out, size_t outlen)
{
	if (!outlen)
		return;
	size_t n = t->nbytes < outlen - 1 ? t->nbytes : outlen - 1;
	memcpy(out, t->data, n);
	out[n] = 0;
}


char *tensor_shape_str(const Tensor *t, const char *sep, char *buf, size_t cap)
{
	if (!cap)
		return buf;
	size_t n = (size_t)snprintf(buf, cap, "(");
	for (int d = 0; d < t->ndim && n < cap; d++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? sep : "", (long long)t->dims[d]);
	if (n < cap)
		snprintf(buf + n, cap - n, ")");
	return buf;
}
