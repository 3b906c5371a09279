// fast.ai 0.7's training augmentation (fastai/transforms.py), as plain-loop
// transforms, the draws of their parameters, the shuffled epochs, and the
// sources they read (an images stream, indexed or held in memory).  See
// augment(1).
//
// tfms_from_model(arch, sz, aug_tfms=transforms_side_on, max_zoom=1.1)
// gives, per image, in this order (image_gen: scale + aug_tfms, then the
// crop of Transforms):
//   RandomScale(sz, max_zoom)    p 0.75: new_sz = int(U(1, max_zoom)·sz), else sz;
//                                scale_min(x, new_sz): the shorter side to
//                                new_sz, aspect kept, cv2.INTER_AREA
//   RandomRotate(10)             p 0.75: U(-10, 10) degrees about
//                                (cols//2, rows//2), BORDER_REFLECT, bilinear
//   RandomLighting(0.05, 0.05)   always: x = clip((x - m)·c + m + b, 0, 1)
//   RandomFlip()                 p 0.5: left-right
//                                (transforms_top_down: RandomDihedral instead)
//   RandomCrop(sz)               start = floor(U(0, 1)·(dim - sz)) per axis
// on float32 pixels in [0, 1] (open_image: imread / 255).  Here the pixels
// stay f32 through every step and become u8 once, after the crop.
#ifndef CNNPIPE_AUGMENT_H
#define CNNPIPE_AUGMENT_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "formats/stream.h"
#include "libcommon/util/rng.h"
#include "libcommon/util/tensor.h"

// fast.ai's constants (fastai/transforms.py, 0.7).
#define AUG_MAX_ZOOM   1.1    // lesson 1: tfms_from_model(..., max_zoom=1.1)
#define AUG_P_SCALE    0.75   // RandomScale(sz, max_zoom, p=0.75)
#define AUG_DEG        10.0   // transforms_basic: RandomRotate(10)
#define AUG_P_ROTATE   0.75   // RandomRotate(deg, p=0.75)
#define AUG_LIGHT_B    0.05   // transforms_basic: RandomLighting(0.05, 0.05)
#define AUG_LIGHT_C    0.05
#define AUG_P_FLIP     0.5    // RandomFlip(p=0.5); RandomDihedral: random() < 0.5
#define AUG_MAX_SIDE   32768  // the largest source side accepted

enum { AUG_NO_FLIP, AUG_SIDE_ON, AUG_TOP_DOWN };

typedef struct {
	int size;          // sz: the output's side
	double max_zoom;   // >= 1; 1: new_sz is always sz
	double deg;        // rotation range, degrees
	double b, c;       // lighting ranges
	int flip;          // AUG_SIDE_ON (RandomFlip), AUG_TOP_DOWN (RandomDihedral), AUG_NO_FLIP
} AugConfig;

// lesson 1's side-on transforms for size sz.
void aug_config_default(AugConfig *c, int sz);

// What one record's transforms do, drawn by aug_draw.
typedef struct {
	float mult;        // RandomScale's multiplier (1 when not drawn)
	int new_sz;        // int(mult·sz): the scaled shorter side
	int th, tw;        // the scaled image's height and width (scale_min)
	float deg;         // rotation, degrees counter-clockwise (0: none)
	float b, c;        // brightness shift, contrast factor
	int rot90;         // quarter turns counter-clockwise (np.rot90), 0..3
	int flip;          // then mirror left-right
	int y0, x0;        // crop start in the transformed image
} AugParams;

// The parameters for a source of h×w pixels, from r.  Ten draws, always
// all of them and in this order, whatever the options (so each draw keeps
// its place): u_scale, mult = U(1, max_zoom), deg = U(-deg, deg), u_rotate,
// b = U(-b, b), c0 = U(-c, c), k = uniform 0..3, u_flip, u_row, u_col.
// Then: scaled if u_scale < 0.75, rotated if u_rotate < 0.75,
// c = -1/(c0 - 1) if c0 < 0 else 1 + c0 (RandomLighting), flipped if
// u_flip < 0.5 (rot90 = k only for AUG_TOP_DOWN), y0 = floor(u_row·(H - sz)),
// x0 = floor(u_col·(W - sz)) with H×W the image after scale and rot90.
// Needs min(h, w) >= 1.
void aug_draw(const AugConfig *c, Rng *r, int h, int w, AugParams *p);

// The generator of record `index` (0-based within its epoch) of `epoch`:
// PCG32 seeded from a splitmix64 hash of (seed, epoch, index), so that it
// does not depend on which thread draws, nor on the order of drawing.
void aug_record_rng(Rng *r, uint64_t seed, uint64_t epoch, uint64_t index);
// perm = a Fisher-Yates shuffle of 0..n-1 with a generator seeded from
// (seed, epoch): epoch e's order of the sources.
void aug_shuffle(uint32_t *perm, uint32_t n, uint64_t seed, uint64_t epoch);

// ---- the transforms: each a plain loop ----------------------------------

// src: (h, w, 3) u8; dst: (th, tw, 3) f32 = cv2.resize(src / 255, (tw, th),
// INTER_AREA): output pixel (i, j) is the mean of the source over its
// footprint [i·h/th, (i+1)·h/th) × [j·w/tw, (j+1)·w/tw), each source pixel
// weighted by its overlap (exactly cv2's INTER_AREA both down and up: when
// enlarging, the footprint lies in one pixel or straddles two).
// Separable; tmp: (h, tw, 3) f32.
void aug_scale(const uint8_t *src, int h, int w, float *dst, int th, int tw, float *tmp);
// src, dst: (h, w, 3) f32; dst = cv2.warpAffine(src, getRotationMatrix2D(
// (w/2, h/2) in integers, deg, 1), (w, h), BORDER_REFLECT, bilinear):
// dst(x, y) = src sampled at the point that rotating by deg about (cx, cy)
// takes to (x, y), bilinearly, a tap outside mirrored as cv2's
// BORDER_REFLECT (fedcba|abcdef|fedcba).  Positions in double, exact (cv2
// rounds them to 1/32 pixel).
void aug_rotate(const float *src, int h, int w, float deg, float *dst);
// x: (n) f32, in place: x = clip((x - m)·c + m + b, 0, 1), m the mean of
// all n values (np.average of the whole image: one mean, every channel).
void aug_lighting(float *x, size_t n, float b, float c);
// src: (h, w, 3) f32; dst: np.fliplr(np.rot90(src, k)) if flip else
// np.rot90(src, k): (w, h, 3) for odd k, else (h, w, 3).
void aug_dihedral(const float *src, int h, int w, int k, int flip, float *dst);
// src, dst: (h, w, 3) f32; dst = np.fliplr(src).
void aug_flip(const float *src, int h, int w, float *dst);
// src: (h, w, 3) f32; dst: (sz, sz, 3) u8 = src[y0:y0+sz, x0:x0+sz] as
// floor(255·x + 0.5), clipped to 0..255.
void aug_crop(const float *src, int h, int w, int y0, int x0, int sz, uint8_t *dst);

// The buffers of aug_apply, reused from image to image (zero-initialise).
typedef struct {
	float *a, *b, *tmp;
	size_t cap_a, cap_b, cap_tmp;
} AugScratch;
void aug_scratch_free(AugScratch *s);

// src: (h, w, 3) u8; out: (sz, sz, 3) u8: the transforms of p in order:
// scale, rotate, lighting, rot90/flip, crop.  Steps that change nothing are
// skipped (a scale to the same size, deg 0, b = 0 with c = 1 as fast.ai's
// lighting() returns early, no turn or flip), so with no zoom, rotation,
// lighting or flip a source whose shorter side is sz gives exactly its
// pixels at the crop window.
void aug_apply(const AugParams *p, int sz, const uint8_t *src, int h, int w,
               uint8_t *out, AugScratch *s);

// ---- the epochs' orders ----------------------------------------------------

// aug_shuffle's orders on demand, for threads: the two epochs used last are
// kept, others are made again.
typedef struct {
	uint32_t n;
	uint64_t seed;
	pthread_mutex_t mu;
	int64_t epoch[2];
	uint32_t *perm[2];
	int next;
} AugOrder;
void aug_order_init(AugOrder *o, uint32_t n, uint64_t seed);
// The source of position i (< n) of epoch e.
uint32_t aug_order_source(AugOrder *o, uint64_t e, uint32_t i);
void aug_order_free(AugOrder *o);

// ---- the sources ---------------------------------------------------------------

typedef struct {
	uint64_t offset;       // of its record chunk (a file)
	int h, w;
	int32_t label;         // when labelled
	char *name;            // NULL: the record has none
	unsigned char *px;     // (h, w, 3), only when held in memory
} AugSource;

typedef struct {
	const char *path;      // as given, "-" = the standard input
	int in_memory;         // read from the standard input: pixels held
	int labelled;
	uint32_t n;
	AugSource *src;
	Stream *in;            // the input, read to its end: its metadata
} AugSources;

// Reads the images stream at path once: a file is indexed (each record's
// offset, shape, label and name; memory bounded by that and one record),
// the standard input is held in memory.  Dies with "path: what is wrong"
// unless it is an images stream (kind=images, channels 3 and layout HWC
// when given) whose every record has a u8 image (H, W, 3), sz <= H, W <=
// AUG_MAX_SIDE, an i32 scalar label when labelled (the meta labelled is
// absent or not 0), and a name, when it has one, of dtype str.
void aug_sources_read(AugSources *S, const char *path, int sz);
void aug_sources_free(AugSources *S);

// A thread's reader of indexed sources (zero-initialise).
typedef struct {
	Stream *in;
	Record r;
	int init;
} AugReader;
// Source i's pixels, (h, w, 3) u8, valid until the next call with rd; NULL
// with a message in err when the file cannot be read again or has changed.
const uint8_t *aug_source_pixels(const AugSources *S, uint32_t i, AugReader *rd,
                                 char *err, size_t errlen);
void aug_reader_free(AugReader *rd);

#endif
