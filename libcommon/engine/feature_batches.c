// Activations streams as head batches (feature_batches.h).
#include <stdlib.h>
#include <string.h>
#include "feature_batches.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "record_meta.h"

void feature_batches_open_stream(FeatureBatches *b, Stream *in, const char *path,
                                 const Model *m, const char *model_path, int batch)
{
	memset(b, 0, sizeof *b);
	b->in = in;
	b->path = path;
	const char *v = stream_meta_get(in, "kind");
	if (!v || strcmp(v, "activations"))
		die("%s: not an activations stream (kind=%s)", path, v ? v : "none");
	if (m->head != HEAD_FASTAI)
		die("%s: activations feed a fast.ai head, and the model %s has none",
		    path, model_path);
	int F = m->nodes[m->feat].C;
	v = stream_meta_get(in, "features");
	if (!v || strtol(v, NULL, 10) != F)
		die("%s: activations of %s features, the model %s's head takes %d", path,
		    v ? v : "?", model_path, F);
	stream_check_classes(in, path, m, model_path);
	v = stream_meta_get(in, "labelled");
	b->labelled = !v || strcmp(v, "0");
	stream_label_range(in, m, model_path, b->labelled, &b->labels);
	b->F = F;
	b->cap = batch;
	b->x = xaligned_alloc(64, (size_t)batch * (size_t)F * sizeof(float));
	b->label = xcalloc((size_t)batch, sizeof *b->label);
	b->name = xcalloc((size_t)batch, sizeof *b->name);
	record_init(&b->r);
}

int feature_batches_next(FeatureBatches *b)
{
	int n = 0;
	b->first = stream_count(b->in);
	while (n < b->cap && xstream_read_record(b->in, &b->r)) {
		unsigned long long idx = (unsigned long long)stream_count(b->in) - 1;
		Tensor *x = record_find(&b->r, "x");
		if (!x || x->dtype != DT_F32 || tensor_numel(x) != b->F)
			die("%s: record %llu: no f32 x of %d features", b->path, idx, b->F);
		memcpy(b->x + (size_t)n * b->F, x->data, (size_t)b->F * sizeof(float));
		record_take_meta(&b->r, b->path, idx, &b->labels, &b->name[n], &b->label[n]);
		n++;
	}
	b->n = n;
	return n;
}

void feature_batches_close(FeatureBatches *b)
{
	stream_close(b->in);
	for (int i = 0; i < b->cap; i++)
		free(b->name[i]);
	free(b->name);
	free(b->label);
	free(b->x);
	record_free(&b->r);
	memset(b, 0, sizeof *b);
}
