// Weights into a model (model.h): copied by name, or adopted whole.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "model.h"

// ---- loading weights ----------------------------------------------------------

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

static int to_f32(const Tensor *t, float *out)
{
	int64_t n = tensor_numel(t);
	switch (t->dtype) {
	case DT_F32:
		memcpy(out, t->data, (size_t)n * sizeof(float));
		return 0;
	case DT_F64:
		for (int64_t i = 0; i < n; i++)
			out[i] = (float)((const double *)t->data)[i];
		return 0;
	case DT_I64:
		for (int64_t i = 0; i < n; i++)
			out[i] = (float)((const int64_t *)t->data)[i];
		return 0;
	case DT_I32:
		for (int64_t i = 0; i < n; i++)
			out[i] = (float)((const int32_t *)t->data)[i];
		return 0;
	}
	return -1;
}

int model_load_tensors(Model *m, const Record *src, int skip_head, int strict,
                     const char *srcname, char *err, size_t errlen)
{
	char *used = xcalloc((size_t)src->n + 1, 1);
	int rc = -1;
	for (int i = 0; i < m->params.n; i++) {
		Tensor *p = &m->params.t[i];
		if (skip_head && !strncmp(p->name, "head.", 5))
			continue;
		int j;
		for (j = 0; j < src->n; j++)
			if (!strcmp(src->t[j].name, p->name))
				break;
		if (j == src->n) {
			if (!strict)
				continue;
			snprintf(err, errlen, "%s: missing tensor %s", srcname, p->name);
			goto out;
		}
		const Tensor *s = &src->t[j];
		int same = s->ndim == p->ndim;
		for (int d = 0; same && d < p->ndim; d++)
			same = s->dims[d] == p->dims[d];
		if (!same) {
			char a[TENSOR_SHAPE_STR_CAP], b[TENSOR_SHAPE_STR_CAP];
			tensor_shape_str(s, ", ", a, sizeof a);
			tensor_shape_str(p, ", ", b, sizeof b);
			snprintf(err, errlen, "%s: tensor %s has shape %s, expected %s",
			         srcname, p->name, a, b);
			goto out;
		}
		if (to_f32(s, p->data) < 0) {
			snprintf(err, errlen, "%s: tensor %s has dtype %s, expected f32",
			         srcname, p->name, dtype_name(s->dtype));
			goto out;
		}
		used[j] = 1;
	}
	if (strict)
		for (int j = 0; j < src->n; j++)
			if (!used[j] && !ends_with(src->t[j].name, "num_batches_tracked")) {
				snprintf(err, errlen, "%s: unexpected tensor %s", srcname,
				         src->t[j].name);
				goto out;
			}
	rc = 0;
out:
	free(used);
	return rc;
}

// Converts tensor t of a record to f32 in place: its values shrink or keep
// their size (f64, i64 -> 4 bytes; i32 -> 4 bytes), so element i is written
// at or before where it was read.
static int to_f32_in_place(Tensor *t)
{
	int64_t n = tensor_numel(t);
	float *out = t->data;
	switch (t->dtype) {
	case DT_F32:
		return 0;
	case DT_F64:
		for (int64_t i = 0; i < n; i++)
			out[i] = (float)((const double *)t->data)[i];
		break;
	case DT_I64:
		for (int64_t i = 0; i < n; i++)
			out[i] = (float)((const int64_t *)t->data)[i];
		break;
	case DT_I32:
		for (int64_t i = 0; i < n; i++)
			out[i] = (float)((const int32_t *)t->data)[i];
		break;
	default:
		return -1;
	}
	t->dtype = DT_F32;
	t->nbytes = (size_t)n * sizeof(float);
	return 0;
}

int model_adopt_params(Model *m, Record *src, const char *srcname, char *err,
                       size_t errlen)
{
	Record *p = &m->params;
	int *from = xmalloc_array((size_t)p->n + 1, sizeof(int));
	char *used = xcalloc((size_t)src->n + 1, 1);
	int rc = -1;
	for (int i = 0; i < p->n; i++) {
		const Tensor *t = &p->t[i];
		int j;
		for (j = 0; j < src->n; j++)
			if (!strcmp(src->t[j].name, t->name))
				break;
		if (j == src->n) {
			snprintf(err, errlen, "%s: missing tensor %s", srcname, t->name);
			goto out;
		}
		const Tensor *s = &src->t[j];
		int same = s->ndim == t->ndim;
		for (int d = 0; same && d < t->ndim; d++)
			same = s->dims[d] == t->dims[d];
		if (!same) {
			char a[TENSOR_SHAPE_STR_CAP], b[TENSOR_SHAPE_STR_CAP];
			tensor_shape_str(s, ", ", a, sizeof a);
			tensor_shape_str(t, ", ", b, sizeof b);
			snprintf(err, errlen, "%s: tensor %s has shape %s, expected %s",
			         srcname, t->name, a, b);
			goto out;
		}
		if (s->dtype != DT_F32 && s->dtype != DT_F64 && s->dtype != DT_I64 &&
		    s->dtype != DT_I32) {
			snprintf(err, errlen, "%s: tensor %s has dtype %s, expected f32",
			         srcname, t->name, dtype_name(s->dtype));
			goto out;
		}
		from[i] = j;
		used[j] = 1;
	}
	for (int j = 0; j < src->n; j++)
		if (!used[j] && !ends_with(src->t[j].name, "num_batches_tracked")) {
			snprintf(err, errlen, "%s: unexpected tensor %s", srcname,
			         src->t[j].name);
			goto out;
		}
	// Checked: now take src's buffer, its views in the model's order.
	Tensor *views = xmalloc_array((size_t)p->n + 1, sizeof(Tensor));
	for (int i = 0; i < p->n; i++) {
		views[i] = src->t[from[i]];
		to_f32_in_place(&views[i]);
	}
	int n = p->n;
	record_free(p);
	p->t = views;
	p->n = p->cap = n;
	p->buf = src->buf;
	p->used = src->used;
	p->bufcap = src->bufcap;
	free(src->t);
	record_init(src);
	rc = 0;
out:
	free(from);
	free(used);
	return rc;
}
