// Images streams as network batches (image_batches.h).
#include <stdlib.h>
#include <string.h>
#include "image_batches.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/util/threads.h"
#include "record_meta.h"

void input_constants(const Model *m, float *scale, float *shift)
{
	for (int k = 0; k < 3; k++) {
		scale[k] = 1.0f / (255.0f * m->std[k]);
		shift[k] = -m->mean[k] / m->std[k];
	}
}

void input_normalise(size_t plane, const float *scale, const float *shift,
                     const uint8_t *hwc, float *chw)
{
	for (size_t q = 0; q < plane; q++)
		for (int k = 0; k < 3; k++)
			chw[k * plane + q] = hwc[q * 3 + k] * scale[k] + shift[k];
}

void image_normalise(const Model *m, const uint8_t *hwc, float *chw)
{
	float scale[3], shift[3];
	input_constants(m, scale, shift);
	input_normalise((size_t)m->in_size * (size_t)m->in_size, scale, shift, hwc, chw);
}

void image_batches_open(ImageBatches *b, const char *path, const Model *m,
                        const char *model_path, int batch)
{
	image_batches_open_stream(b, xstream_open_read(path), path, m, model_path,
	                          batch);
}

void image_batches_open_stream(ImageBatches *b, Stream *in, const char *path,
                               const Model *m, const char *model_path, int batch)
{
	memset(b, 0, sizeof *b);
	b->path = path;
	b->in = in;
	const char *kind = stream_meta_get(b->in, "kind");
	if (!kind || strcmp(kind, "images"))
		die("%s: not an images stream (kind=%s)", path, kind ? kind : "none");
	const char *v = stream_meta_get(b->in, "size");
	if (!v && stream_meta_get(b->in, "scale"))
		die("%s: scaled photos of varying size (imgprep --scale): crop them "
		    "with augment(1) or imgprep -s for the model %s", path, model_path);
	long S = v ? strtol(v, NULL, 10) : -1;
	if (S != m->in_size)
		die("%s: images of size %s, the model %s needs %d", path, v ? v : "?",
		    model_path, m->in_size);
	v = stream_meta_get(b->in, "channels");
	if (!v || strtol(v, NULL, 10) != m->in_c)
		die("%s: images with %s channels, the model %s needs %d", path,
		    v ? v : "?", model_path, m->in_c);
	v = stream_meta_get(b->in, "layout");
	if (v && strcmp(v, "HWC"))
		die("%s: layout %s, need HWC", path, v);
	if (m->head == HEAD_FASTAI)
		stream_check_classes(b->in, path, m, model_path);
	v = stream_meta_get(b->in, "labelled");
	b->labelled = !v || strcmp(v, "0");
	stream_label_range(in, m, model_path, b->labelled, &b->labels);
	b->S = (int)S;
	b->cap = batch;
	input_constants(m, b->scale, b->shift);
	size_t per = (size_t)S * (size_t)S * 3;
	b->x = xaligned_alloc(64, (size_t)batch * per * sizeof(float));
	b->raw = xmalloc_array((size_t)batch, per);
	b->threads = 1;
	b->label = xcalloc((size_t)batch, sizeof *b->label);
	b->name = xcalloc((size_t)batch, sizeof *b->name);
	record_init(&b->r);
}

int image_batches_next(ImageBatches *b)
{
	return image_batches_read(b, b->cap);
}

void image_batches_threads(ImageBatches *b, int threads)
{
	b->threads = threads < 1 ? 1 : threads;
}

static void normalise_slice(void *ctx, size_t i0, size_t i1, int thread)
{
	(void)thread;
	const ImageBatches *b = ctx;
	size_t plane = (size_t)b->S * b->S, per = plane * 3;
	for (size_t i = i0; i < i1; i++)
		input_normalise(plane, b->scale, b->shift, b->raw + i * per, b->x + i * per);
}

int image_batches_read(ImageBatches *b, int max)
{
	size_t S = (size_t)b->S, per = S * S * 3;
	int n = 0;
	b->first = stream_count(b->in);
	if (max > b->cap)
		max = b->cap;
	while (n < max && xstream_read_record(b->in, &b->r)) {
		Tensor *im = record_find(&b->r, "image");
		uint64_t idx = stream_count(b->in) - 1;
		if (!im || im->dtype != DT_U8 || im->ndim != 3 ||
		    im->dims[0] != b->S || im->dims[1] != b->S || im->dims[2] != 3)
			die("%s: record %llu: no u8 image tensor of shape (%d, %d, 3)",
			    b->path, (unsigned long long)idx, b->S, b->S);
		memcpy(b->raw + (size_t)n * per, im->data, per);
		record_take_meta(&b->r, b->path, idx, &b->labels, &b->name[n], &b->label[n]);
		n++;
	}
	parallel_for((size_t)n, b->threads, normalise_slice, b);
	b->n = n;
	return n;
}

void image_batches_close(ImageBatches *b)
{
	stream_close(b->in);
	for (int i = 0; i < b->cap; i++)
		free(b->name[i]);
	free(b->name);
	free(b->label);
	free(b->x);
	free(b->raw);
	record_free(&b->r);
	memset(b, 0, sizeof *b);
}
