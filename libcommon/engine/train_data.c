// Training and validation data (train_data.h).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "record_meta.h"
#include "train_data.h"

static long meta_long(Stream *s, const char *path, const char *key, long dflt)
{
	const char *v = stream_meta_get(s, key);
	if (!v)
		return dflt;
	char *end;
	long x = strtol(v, &end, 10);
	if (end == v || *end || x < 1)
		die("%s: meta %s=%s: need a whole number >= 1", path, key, v);
	return x;
}

static void open_activations(TrainData *d, Stream *s, const Model *m,
                             const char *model_path)
{
	const char *v = stream_meta_get(s, "features");
	int F = m->nodes[m->feat].C;
	if (!v || strtol(v, NULL, 10) != F)
		die("%s: activations of %s features, the model %s's head takes %d",
		    d->path, v ? v : "?", model_path, F);
	stream_check_classes(s, d->path, m, model_path);
	v = stream_meta_get(s, "labelled");
	if (v && !strcmp(v, "0"))
		die("%s: unlabelled activations: nothing to learn from", d->path);
	d->F = F;
	size_t cap = 1024;
	d->x = xmalloc_array(cap * (size_t)F, sizeof(float));
	d->y = xmalloc_array(cap, sizeof(int32_t));
	Record r;
	record_init(&r);
	while (xstream_read_record(s, &r)) {
		uint64_t idx = stream_count(s) - 1;
		Tensor *x = record_find(&r, "x"), *y = record_find(&r, "label");
		if (!x || x->dtype != DT_F32 || tensor_numel(x) != F)
			die("%s: record %llu: no f32 x of %d features", d->path,
			    (unsigned long long)idx, F);
		if (!y || y->dtype != DT_I32 || tensor_numel(y) != 1)
			die("%s: record %llu: no i32 label", d->path, (unsigned long long)idx);
		int32_t lab = *(int32_t *)y->data;
		if (lab < 0 || lab >= m->num_classes)
			die("%s: record %llu: label %d, the model has %d classes", d->path,
			    (unsigned long long)idx, lab, m->num_classes);
		if ((size_t)d->n == cap) {
			cap *= 2;
			d->x = xrealloc(d->x, cap * (size_t)F * sizeof(float));
			d->y = xrealloc(d->y, cap * sizeof(int32_t));
		}
		memcpy(d->x + (size_t)d->n * F, x->data, (size_t)F * sizeof(float));
		d->y[d->n++] = lab;
	}
	record_free(&r);
	stream_close(s);
	if (!d->n)
		die("%s: no records", d->path);
	d->epochs = -1;
	d->perm = xmalloc_array((size_t)d->n, sizeof(uint32_t));
	for (int64_t i = 0; i < d->n; i++)
		d->perm[i] = (uint32_t)i;
	d->bx = xmalloc_array((size_t)d->bs * F, sizeof(float));
	d->by = xmalloc_array((size_t)d->bs, sizeof(int32_t));
}

static void open_images(TrainData *d, Stream *in, const Model *m,
                        const char *model_path, int check_order)
{
	image_batches_open_stream(&d->ib, in, d->path, m, model_path, d->bs);
	if (!d->ib.labelled)
		die("%s: unlabelled images: nothing to learn from", d->path);
	d->epochs = meta_long(d->ib.in, d->path, "epochs", 0);
	d->n = meta_long(d->ib.in, d->path, "epoch_size", 0);
	if (d->epochs > 0 && d->n > 0)
		return;
	if (d->epochs > 0 || d->n > 0)
		die("%s: meta epochs and epoch_size go together", d->path);
	// No epoch marks: one epoch, whose size a pass over the file tells.
	if (!strcmp(d->path, "-"))
		die("%s: an images stream without epoch marks (augment(1)) must be a "
		    "file, to count its records first", "-");
	Stream *s = xstream_open_read(d->path);
	Record r;
	record_init(&r);
	int sorted = 1;
	int32_t last = INT32_MIN;
	while (xstream_read_record(s, &r)) {
		Tensor *lb = record_find(&r, "label");
		int32_t l = lb && lb->dtype == DT_I32 && tensor_numel(lb) == 1
		          ? *(int32_t *)lb->data : last;
		sorted &= l >= last;
		last = l;
		d->n++;
	}
	record_free(&r);
	stream_close(s);
	if (!d->n)
		die("%s: no records", d->path);
	d->epochs = 1;
	if (sorted && d->n > 1 && check_order)
		warn("warning: %s: its records are in label order (as imgprep writes "
		     "them) and are trained in that order: train on augment(1)'s "
		     "shuffled epochs", d->path);
}

void train_data_open(TrainData *d, const char *path, const Model *m,
                     const char *model_path, int bs, int check_order)
{
	memset(d, 0, sizeof *d);
	d->path = path;
	d->bs = bs;
	d->classes = m->num_classes;
	Stream *s = xstream_open_read(path);
	const char *k = stream_meta_get(s, "kind");
	if (!k || (strcmp(k, "activations") && strcmp(k, "images")))
		die("%s: kind=%s: train on activations (precompute(1)) or images", path,
		    k ? k : "none");
	d->kind = !strcmp(k, "activations") ? DATA_ACTIVATIONS : DATA_IMAGES;
	if (d->kind == DATA_ACTIVATIONS)
		open_activations(d, s, m, model_path);
	else
		open_images(d, s, m, model_path, check_order);
}

void train_data_threads(TrainData *d, int threads)
{
	if (d->kind == DATA_IMAGES)
		image_batches_threads(&d->ib, threads);
}

void train_data_close(TrainData *d)
{
	if (d->kind == DATA_IMAGES) {
		image_batches_close(&d->ib);
		d->bx = NULL;   // views of the batches' buffers
		d->by = NULL;
	}
	free(d->x);
	free(d->y);
	free(d->perm);
	free(d->bx);
	free(d->by);
	memset(d, 0, sizeof *d);
}

int64_t train_data_batches(const TrainData *d)
{
	return (d->n + d->bs - 1) / d->bs;
}

void train_data_epoch(TrainData *d, Rng *r)
{
	if (d->kind == DATA_ACTIVATIONS) {
		for (int64_t i = 0; i < d->n; i++)
			d->perm[i] = (uint32_t)i;
		// Fisher-Yates, last to first
		for (int64_t i = d->n - 1; r && i > 0; i--) {
			uint32_t j = rng_below(r, (uint32_t)i + 1);
			uint32_t t = d->perm[i];
			d->perm[i] = d->perm[j];
			d->perm[j] = t;
		}
		return;
	}
	if (!r && d->consumed) {   // validation images again: from the top
		Stream *s = xstream_open_read(d->path);
		stream_close(d->ib.in);
		d->ib.in = s;
		d->consumed = 0;
	}
}

int train_data_batch(TrainData *d, int64_t b)
{
	int64_t lo = b * d->bs, hi = lo + d->bs < d->n ? lo + d->bs : d->n;
	int N = (int)(hi - lo);
	if (d->kind == DATA_ACTIVATIONS) {
		for (int i = 0; i < N; i++) {
			uint32_t k = d->perm[lo + i];
			memcpy(d->bx + (size_t)i * d->F, d->x + (size_t)k * d->F,
			       (size_t)d->F * sizeof(float));
			d->by[i] = d->y[k];
		}
	} else {
		int got = image_batches_read(&d->ib, N);
		if (got != N)
			die("%s: ended after %lld records, within an epoch of %lld",
			    d->path, (long long)(d->consumed + got), (long long)d->n);
		for (int i = 0; i < N; i++)
			if (d->ib.label[i] < 0 || d->ib.label[i] >= d->classes)
				die("%s: record %lld: label %d, the model has %d classes",
				    d->path, (long long)(d->consumed + i), d->ib.label[i],
				    d->classes);
		d->consumed += got;
		d->bx = d->ib.x;
		d->by = d->ib.label;
	}
	d->N = N;
	return N;
}

void train_data_skip(TrainData *d, int64_t k)
{
	while (d->kind == DATA_IMAGES && k > 0) {
		int got = image_batches_read(&d->ib, k < d->bs ? (int)k : d->bs);
		if (!got)
			die("%s: fewer records than the checkpoint has seen", d->path);
		k -= got;
		d->consumed += got;
	}
}
