// The views of test-time augmentation and the scaled photos they come from
// (tta_views.h).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "image_geom.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "tta_views.h"

// The largest scaled image a view may pass through (imgprep's limit).
#define TTA_MAX_PIXELS 100000000ull

void tta_view_valid(const uint8_t *src, int h, int w, int sz, uint8_t *out)
{
	if (image_scale_crop(src, w, h, w, h, sz, out) != 0)
		die("tta_view_valid: cannot view %dx%d at %d", w, h, sz);
}

void tta_view_aug(const AugConfig *cfg, uint64_t seed, int pass, uint64_t index,
                  const uint8_t *src, int h, int w, uint8_t *out, AugScratch *s,
                  AugParams *params)
{
	Rng r;
	AugParams p;
	aug_record_rng(&r, seed, (uint64_t)pass, index);
	aug_draw(cfg, &r, h, w, &p);
	aug_apply(&p, cfg->size, src, h, w, out, s);
	if (params)
		*params = p;
}

const char *tta_view_check(int h, int w, int sz, double max_zoom, char *why, size_t len)
{
	if (h < 1 || w < 1 || h > AUG_MAX_SIDE || w > AUG_MAX_SIDE) {
		snprintf(why, len, "image (%d, %d, 3): sides must be 1 to %d", h, w,
		         AUG_MAX_SIDE);
		return why;
	}
	// the largest scale_min the views make: to floor(max_zoom·sz)
	int tw, th, big = (int)floor(max_zoom * sz);
	fastai_scale_dims(w, h, big > sz ? big : sz, &tw, &th);
	if (tw > AUG_MAX_SIDE || th > AUG_MAX_SIDE ||
	    (unsigned long long)tw * (unsigned long long)th > TTA_MAX_PIXELS) {
		snprintf(why, len, "image (%d, %d, 3) would be scaled to %dx%d: too large",
		         h, w, tw, th);
		return why;
	}
	return "";
}

// ---- scaled photos ------------------------------------------------------------------

void photo_batches_open_stream(PhotoBatches *b, Stream *in, const char *path,
                               int batch, int sz, double max_zoom)
{
	memset(b, 0, sizeof *b);
	b->in = in;
	b->path = path;
	const char *v = stream_meta_get(in, "kind");
	if (!v || strcmp(v, "images"))
		die("%s: not an images stream (kind=%s)", path, v ? v : "none");
	if (!stream_meta_get(in, "scale"))
		die("%s: images of size %s, not scaled photos: test-time augmentation "
		    "views whole photos (imgprep --scale)", path,
		    (v = stream_meta_get(in, "size")) ? v : "?");
	if ((v = stream_meta_get(in, "channels")) && strcmp(v, "3"))
		die("%s: images with %s channels, need 3", path, v);
	if ((v = stream_meta_get(in, "layout")) && strcmp(v, "HWC"))
		die("%s: layout %s, need HWC", path, v);
	v = stream_meta_get(in, "labelled");
	b->labelled = !v || strcmp(v, "0");
	b->cap = batch;
	b->sz = sz;
	b->max_zoom = max_zoom;
	b->r = xcalloc((size_t)batch, sizeof *b->r);
	for (int i = 0; i < batch; i++)
		record_init(&b->r[i]);
	b->px = xcalloc((size_t)batch, sizeof *b->px);
	b->h = xcalloc((size_t)batch, sizeof *b->h);
	b->w = xcalloc((size_t)batch, sizeof *b->w);
	b->label = xcalloc((size_t)batch, sizeof *b->label);
	b->name = xcalloc((size_t)batch, sizeof *b->name);
}

int photo_batches_next(PhotoBatches *b)
{
	int n = 0;
	b->first = stream_count(b->in);
	while (n < b->cap && xstream_read_record(b->in, &b->r[n])) {
		const Record *r = &b->r[n];
		unsigned long long idx = (unsigned long long)stream_count(b->in) - 1;
		Tensor *nm = record_find(r, "name");
		char name[4096] = "";
		if (nm && nm->dtype == DT_STR)
			tensor_str(nm, name, sizeof name);
		Tensor *im = record_find(r, "image");
		char why[200];
		const char *bad = "";
		if (!im || im->dtype != DT_U8 || im->ndim != 3 || im->dims[2] != 3)
			bad = "no u8 image tensor of shape (H, W, 3)";
		else if (im->dims[0] > AUG_MAX_SIDE || im->dims[1] > AUG_MAX_SIDE)
			snprintf(why, sizeof why, "image (%lld, %lld, 3): sides must be 1 to %d",
			         (long long)im->dims[0], (long long)im->dims[1], AUG_MAX_SIDE),
			bad = why;
		else   // (int) is safe now
			bad = tta_view_check((int)im->dims[0], (int)im->dims[1], b->sz,
			                     b->max_zoom, why, sizeof why);
		if (!*bad && nm && nm->dtype != DT_STR)
			bad = "name is not a str tensor";
		b->label[n] = -1;
		if (!*bad && b->labelled) {
			Tensor *lb = record_find(r, "label");
			if (!lb || lb->dtype != DT_I32 || lb->ndim != 0)
				bad = "no label (an i32 scalar) in a labelled stream";
			else
				b->label[n] = *(const int32_t *)lb->data;
		}
		if (*bad)
			die("%s: record %llu%s%s%s: %s", b->path, idx, nm ? " (" : "", name,
			    nm ? ")" : "", bad);
		b->px[n] = im->data;
		b->h[n] = (int)im->dims[0];
		b->w[n] = (int)im->dims[1];
		free(b->name[n]);
		b->name[n] = nm ? xstrdup(name) : NULL;
		n++;
	}
	b->n = n;
	return n;
}

void photo_batches_close(PhotoBatches *b)
{
	stream_close(b->in);
	for (int i = 0; i < b->cap; i++) {
		record_free(&b->r[i]);
		free(b->name[i]);
	}
	free(b->r);
	free(b->px);
	free(b->h);
	free(b->w);
	free(b->label);
	free(b->name);
	memset(b, 0, sizeof *b);
}
