// Classification metrics, the lesson's analysis lists and the predictions
// reader (metrics.h).
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "metrics.h"

int metrics_argmax(int K, const float *row)
{
	int best = 0;
	for (int k = 1; k < K; k++)
		if (row[k] > row[best])
			best = k;
	return best;
}

void metrics_predict(int64_t N, int K, const float *logp, int32_t *pred)
{
	for (int64_t n = 0; n < N; n++)
		pred[n] = metrics_argmax(K, logp + (size_t)n * (size_t)K);
}

void metrics_confusion(int64_t N, int K, const int32_t *label, const int32_t *pred,
                       int64_t *cm)
{
	memset(cm, 0, (size_t)K * (size_t)K * sizeof *cm);
	for (int64_t n = 0; n < N; n++)
		cm[(size_t)label[n] * (size_t)K + (size_t)pred[n]]++;
}

int64_t metrics_correct(int K, const int64_t *cm)
{
	int64_t t = 0;
	for (int c = 0; c < K; c++)
		t += cm[(size_t)c * (size_t)K + (size_t)c];
	return t;
}

double metrics_nll(int64_t N, int K, const float *logp, const int32_t *label)
{
	double s = 0;
	for (int64_t n = 0; n < N; n++)
		s -= logp[(size_t)n * (size_t)K + (size_t)label[n]];
	return N ? s / (double)N : NAN;
}

void metrics_precision_recall(int K, const int64_t *cm, double *precision,
                              double *recall)
{
	for (int c = 0; c < K; c++) {
		int64_t col = 0, row = 0, tp = cm[(size_t)c * (size_t)K + (size_t)c];
		for (int j = 0; j < K; j++) {
			col += cm[(size_t)j * (size_t)K + (size_t)c];
			row += cm[(size_t)c * (size_t)K + (size_t)j];
		}
		precision[c] = col ? (double)tp / (double)col : NAN;
		recall[c] = row ? (double)tp / (double)row : NAN;
	}
}

int64_t metrics_rand_by_correct(int64_t N, const int32_t *label, const int32_t *pred,
                                int correct, int64_t k, Rng *r, int64_t *out)
{
	int64_t m = 0;
	for (int64_t n = 0; n < N; n++)
		m += (label[n] == pred[n]) == !!correct;
	int64_t *c = xmalloc_array((size_t)(m ? m : 1), sizeof *c), j = 0;
	for (int64_t n = 0; n < N; n++)
		if ((label[n] == pred[n]) == !!correct)
			c[j++] = n;
	int64_t len = k < m ? k : m;
	for (int64_t i = 0; i < len; i++) {
		// m - i < 2^32: rng_below's range; beyond it, two draws
		uint64_t span = (uint64_t)(m - i), d;
		if (span <= UINT32_MAX)
			d = rng_below(r, (uint32_t)span);
		else
			d = (((uint64_t)rng_u32(r) << 32) | rng_u32(r)) % span;
		int64_t t = c[i];
		c[i] = c[i + (int64_t)d];
		c[i + (int64_t)d] = t;
		out[i] = c[i];
	}
	free(c);
	return len;
}

// A ranking: (key, record) pairs sorted by key, then by record (so equal
// keys keep record order).  A NaN key sorts first.
typedef struct {
	float key;
	int64_t n;
} Ranked;

static int ranked_cmp(const void *pa, const void *pb)
{
	const Ranked *a = pa, *b = pb;
	if (a->key < b->key)
		return -1;
	if (a->key > b->key)
		return 1;
	int an = isnan(a->key), bn = isnan(b->key);
	if (an != bn)
		return bn - an;
	return (a->n > b->n) - (a->n < b->n);
}

// The first k of the m ranked pairs in v into out; frees v.
static int64_t ranked_take(Ranked *v, int64_t m, int64_t k, int64_t *out)
{
	qsort(v, (size_t)m, sizeof *v, ranked_cmp);
	int64_t len = k < m ? k : m;
	for (int64_t i = 0; i < len; i++)
		out[i] = v[i].n;
	free(v);
	return len;
}

int64_t metrics_most_by_correct(int64_t N, int K, const float *logp,
                                const int32_t *label, const int32_t *pred, int c,
                                int correct, int64_t k, int64_t *out)
{
	Ranked *v = xmalloc_array((size_t)(N ? N : 1), sizeof *v);
	int64_t m = 0;
	for (int64_t n = 0; n < N; n++) {
		if (label[n] != c || (label[n] == pred[n]) != !!correct)
			continue;
		float p = expf(logp[(size_t)n * (size_t)K + (size_t)c]);
		// right: the highest p(c) first; wrong: the lowest first
		v[m].key = correct ? -p : p;
		v[m++].n = n;
	}
	return ranked_take(v, m, k, out);
}

int64_t metrics_most_uncertain(int64_t N, int K, const float *logp, int64_t k,
                               int64_t *out)
{
	Ranked *v = xmalloc_array((size_t)(N ? N : 1), sizeof *v);
	for (int64_t n = 0; n < N; n++) {
		const float *row = logp + (size_t)n * (size_t)K;
		v[n].key = expf(row[metrics_argmax(K, row)]);
		v[n].n = n;
	}
	return ranked_take(v, N, k, out);
}

// ---- the predictions stream ----

// The names of a comma-separated list (checked as classes_count does; the
// same name may appear twice: ImageNet's labels have duplicates).
static void split_names(ClassList *l, const char *list, const char *path, const char *key)
{
	size_t wl = strlen(path) + strlen(key) + 3;
	char *what = xmalloc(wl);
	snprintf(what, wl, "%s: %s", path, key);
	classes_count(list, what);
	free(what);
	for (const char *p = list;;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		char *s = xmalloc(n + 1);
		memcpy(s, p, n);
		s[n] = 0;
		classes_push(l, s);
		free(s);
		if (!e)
			break;
		p = e + 1;
	}
}

void pred_open(PredReader *p, const char *path)
{
	memset(p, 0, sizeof *p);
	p->path = path;
	p->s = xstream_open_read(path);
	record_init(&p->r);
	const char *kind = stream_meta_get(p->s, "kind");
	if (!kind || strcmp(kind, "predictions") != 0)
		die("%s: not a predictions stream (kind=%s)", path, kind ? kind : "absent");
	const char *nc = stream_meta_get(p->s, "num_classes");
	const char *cls = stream_meta_get(p->s, "classes");
	const char *mcls = stream_meta_get(p->s, "model_classes");
	ClassList labels = { 0 };
	if (cls)
		split_names(&labels, cls, path, "classes");
	if (mcls)
		split_names(&p->names, mcls, path, "model_classes");
	else if (cls)
		split_names(&p->names, cls, path, "classes");
	p->nlabel_classes = (int)labels.n;
	classes_free(&labels);
	if (nc) {
		char *end;
		errno = 0;
		long v = strtol(nc, &end, 10);
		if (errno || end == nc || *end || nc[0] == '+' || nc[0] == '-' || v < 1 ||
		    v > PRED_MAX_CLASSES)
			die("%s: num_classes '%s' is not a number of classes (1 to %d)", path, nc,
			    PRED_MAX_CLASSES);
		p->K = (int)v;
	} else if (p->names.n) {
		p->K = (int)p->names.n;
	} else {
		die("%s: no num_classes or classes in its metadata", path);
	}
	if (!p->names.n) {
		char num[16];
		for (int k = 0; k < p->K; k++) {
			snprintf(num, sizeof num, "%d", k);
			classes_push(&p->names, num);
		}
	} else if ((int)p->names.n != p->K) {
		die("%s: %s names %zu classes, num_classes is %d", path,
		    mcls ? "model_classes" : "classes", p->names.n, p->K);
	}
	p->labels_match = cls && (!mcls || strcmp(cls, mcls) == 0);
	const char *lab = stream_meta_get(p->s, "labelled");
	if (lab && strcmp(lab, "0") && strcmp(lab, "1"))
		die("%s: labelled '%s' is not 0 or 1", path, lab);
	if (lab) {
		p->labelled = lab[0] == '1';
	} else {   // not said: record 0 tells
		p->ahead = xstream_read_record(p->s, &p->r) ? 1 : -1;
		p->labelled = p->ahead > 0 && record_find(&p->r, "label") != NULL;
	}
}

int pred_next(PredReader *p)
{
	if (p->ahead < 0)
		return 0;
	if (p->ahead > 0)
		p->ahead = 0;
	else if (!xstream_read_record(p->s, &p->r))
		return 0;
	const char *path = p->path;
	long long i = (long long)p->r.index;
	char shape[TENSOR_SHAPE_STR_CAP];
	Tensor *t = record_find(&p->r, "logp");
	if (!t)
		die("%s: record %lld: no logp tensor", path, i);
	if (t->dtype != DT_F32 || t->ndim != 1 || t->dims[0] != p->K)
		die("%s: record %lld: logp is %s %s, not f32 (%d) for the header's %d classes",
		    path, i, dtype_name(t->dtype), tensor_shape_str(t, ", ", shape, sizeof shape),
		    p->K, p->K);
	p->logp = t->data;
	for (int k = 0; k < p->K; k++)
		if (isnan(p->logp[k]) || p->logp[k] == INFINITY)
			die("%s: record %lld: logp[%d] is %g, not a log-probability", path, i, k,
			    (double)p->logp[k]);
	p->label = -1;
	if (p->labelled) {
		t = record_find(&p->r, "label");
		if (!t)
			die("%s: record %lld: no label in a labelled stream", path, i);
		if (t->dtype != DT_I32 || t->ndim != 0)
			die("%s: record %lld: label is %s %s, not an i32 scalar", path, i,
			    dtype_name(t->dtype), tensor_shape_str(t, ", ", shape, sizeof shape));
		int32_t v;
		memcpy(&v, t->data, sizeof v);
		if (p->labels_match && (v < 0 || v >= p->K))
			die("%s: record %lld: label %d is out of range: %d classes (0 to %d)", path,
			    i, (int)v, p->K, p->K - 1);
		if (p->labels_match)
			p->label = v;
	}
	t = record_find(&p->r, "name");
	if (t && t->dtype != DT_STR)
		die("%s: record %lld: name is %s, not str", path, i, dtype_name(t->dtype));
	size_t need = t ? t->nbytes + 1 : 32;
	if (need > p->namecap) {
		p->namecap = need;
		p->namebuf = xrealloc(p->namebuf, need);
	}
	if (t)
		tensor_str(t, p->namebuf, need);
	else
		snprintf(p->namebuf, need, "#%lld", i);
	p->name = p->namebuf;
	p->index = (int64_t)p->r.index;
	return 1;
}

void pred_close(PredReader *p)
{
	stream_close(p->s);
	record_free(&p->r);
	classes_free(&p->names);
	free(p->namebuf);
	memset(p, 0, sizeof *p);
}

void predictions_read(Predictions *d, PredReader *p)
{
	memset(d, 0, sizeof *d);
	d->K = p->K;
	while (pred_next(p)) {
		if ((size_t)d->n == d->cap) {
			d->cap = d->cap ? 2 * d->cap : 256;
			size_t rowb;
			if (!size_mul(d->cap, (size_t)d->K * sizeof(float), &rowb))
				die("%s: too many predictions to hold", p->path);
			d->logp = xrealloc(d->logp, rowb);
			d->label = xrealloc(d->label, d->cap * sizeof *d->label);
			d->name = xrealloc(d->name, d->cap * sizeof *d->name);
		}
		memcpy(d->logp + (size_t)d->n * (size_t)d->K, p->logp, (size_t)d->K * sizeof(float));
		d->label[d->n] = p->label;
		d->name[d->n] = xstrdup(p->name);
		d->n++;
	}
}

void predictions_free(Predictions *d)
{
	for (int64_t n = 0; n < d->n; n++)
		free(d->name[n]);
	free(d->name);
	free(d->logp);
	free(d->label);
	memset(d, 0, sizeof *d);
}
