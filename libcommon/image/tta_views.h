// The views of test-time augmentation (fast.ai 0.7's learn.TTA()): a scaled
// photo (imgprep --scale) turned into the model's square input — pass 0
// with the validation transform, pass p >= 1 with the training
// augmentation — and the scaled photos read from a stream batch by batch.
#ifndef CNNPIPE_TTA_VIEWS_H
#define CNNPIPE_TTA_VIEWS_H
#include <stddef.h>
#include <stdint.h>
#include "augment.h"
#include "formats/stream.h"

// ---- the views -------------------------------------------------------------------

// Pass 0, the validation transform of fast.ai (image_geom.h): scale_min to
// sz (area average; an identity when the shorter side is sz already), then
// centre crop: the geometry imgprep -s applies to a photo.  src (h, w, 3)
// u8; out (sz, sz, 3) u8.
void tta_view_valid(const uint8_t *src, int h, int w, int sz, uint8_t *out);
// Pass p >= 1 of record `index`: the transforms of augment(1) with cfg
// (size = sz), their parameters drawn from aug_record_rng(seed, p, index),
// so a view depends on the seed, the pass, the record and the options
// only.  out (cfg->size, cfg->size, 3) u8; params (may be NULL): the draws.
void tta_view_aug(const AugConfig *cfg, uint64_t seed, int pass, uint64_t index,
                  const uint8_t *src, int h, int w, uint8_t *out, AugScratch *s,
                  AugParams *params);
// Can an h×w source be viewed at sz with zoom up to max_zoom?  "" when it
// can, else why not (a side beyond AUG_MAX_SIDE, or a scaled image too
// large: a very thin strip), in why.
const char *tta_view_check(int h, int w, int sz, double max_zoom, char *why, size_t len);

// ---- scaled photos, batch by batch ---------------------------------------------------

typedef struct {
	Stream *in;
	const char *path;
	int labelled;
	int cap;               // batch size
	int n;                 // records of the current batch
	uint64_t first;        // stream index of its first record
	Record *r;             // (cap): record i of the batch, as read
	const uint8_t **px;    // (cap): its image (h[i], w[i], 3)
	int *h, *w;
	int32_t *label;        // (cap); -1 when unlabelled
	char **name;           // (cap); NULL where a record has none
	int sz;
	double max_zoom;
} PhotoBatches;

// On a stream already open (its header read), which b then owns.  Dies with
// "path: what is wrong" unless it is kind=images with `scale` (scaled
// photos of varying size, imgprep --scale), channels 3 and layout HWC when
// given.  The views will be sz×sz with zoom up to max_zoom.
void photo_batches_open_stream(PhotoBatches *b, Stream *in, const char *path,
                               int batch, int sz, double max_zoom);
// The next batch of up to `batch` photos; returns its size, 0 at the end.
// Dies naming the record on one without a u8 image (H, W, 3) that
// tta_view_check accepts, or without an i32 scalar label in a labelled
// stream.
int photo_batches_next(PhotoBatches *b);
void photo_batches_close(PhotoBatches *b);

#endif
