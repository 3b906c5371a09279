// Image decoding: a file in memory → 8-bit RGB pixels, safely.
//
// JPEG goes through libjpeg-turbo (with DCT-domain downscaling when the
// caller says how small the image may get); everything else stb_image reads
// (PNG, BMP, GIF, TGA, PSD, PNM, HDR, PIC) goes through stb_image.  Errors
// never exit: a corrupt, truncated or absurd file gives -1 and a message.
#ifndef CNNPIPE_IMAGE_DECODE_H
#define CNNPIPE_IMAGE_DECODE_H
#include <stddef.h>

// Header dimensions beyond these are refused before any pixel buffer is
// allocated (a few bytes can claim a 65535x65535 image).
#define IMAGE_MAX_SIDE   32768
#define IMAGE_MAX_PIXELS 100000000ull
// Largest file image_load reads.
#define IMAGE_MAX_FILE_BYTES ((size_t)64 << 20)
// The most memory one decode may hold besides the file and the output: what
// the decoder needs is reckoned from the header (dimensions, channels, bit
// depth, a progressive JPEG's coefficients, the path taken), from above,
// before anything it counts is allocated, and an image that would take more
// is refused.  A 800 KB PNG can claim 10000x10000 pixels of 16-bit RGBA.
#define IMAGE_MAX_DECODE_BYTES ((size_t)256 << 20)

typedef struct {
	int w, h;            // of px: after DCT downscaling and EXIF orientation
	int full_w, full_h;  // of the image at full resolution, after orientation
	int orientation;     // EXIF orientation applied (1 = none), 1..8
	int scale_num;       // JPEG DCT scale used: scale_num/8 (8 = full size)
	unsigned char *px;   // (h, w, 3) RGB, malloc'd
} Image;

// min_side > 0 lets a JPEG decode at the smallest DCT scale n/8 (n = 1, 2,
// 4; else full size) whose shorter side still covers min_side (exactly:
// min(W,H)·n >= 8·min_side), so a later area resize to min_side only
// shrinks; 0 always decodes full size.
// libjpeg warnings are errors.
// Returns 0, or -1 with a one-line reason in err (no file name).
int image_decode_mem(const void *buf, size_t len, int min_side, Image *img,
                     char *err, size_t errlen);
// Reads `path` (at most IMAGE_MAX_FILE_BYTES) and decodes it.
int image_load(const char *path, int min_side, Image *img, char *err, size_t errlen);
void image_free(Image *img);

// Decode + fast.ai geometry in one pass: out (sz, sz, 3) =
// centre_crop(scale_min(image, sz)) exactly as image_decode_mem(min_side =
// sz) followed by image_scale_crop would give it, byte for byte.  A JPEG
// without EXIF rotation is decoded only over the columns (libjpeg-turbo
// jpeg_crop_scanline) and rows (jpeg_skip_scanlines; skipped rows are still
// entropy-decoded, so damage anywhere is still an error) the crop window
// reads, and fed to the resize row by row from a small ring.  Scratch is
// one thread's decoding state (zero-initialise it once): buffers reused
// across calls, and libjpeg's warnings.
//
// A warning from libjpeg means damaged data it papers over (a bad Huffman
// code decoded as zero, garbage before a marker after the entropy decoder
// lost its place, a truncated file padded with grey): an error, unless
// accept_warnings is set; then the image is used and warnings/warning say
// how many there were in the last call and what the first said.
#include "image_geom.h"
typedef struct {
	unsigned char *file, *ring, *row;
	size_t file_cap, ring_cap, row_cap;
	AreaPlan plan;
	int accept_warnings;   // the caller's
	int warnings;          // the last call's
	char warning[200];
} ImageScratch;
int image_decode_crop_mem(const void *buf, size_t len, int sz, unsigned char *out,
                          ImageScratch *sc, char *err, size_t errlen);
int image_load_crop(const char *path, int sz, unsigned char *out, ImageScratch *sc,
                    char *err, size_t errlen);

// Decode + fast.ai's scale without crop (the sources of augmentation): the
// whole image scaled so that its shorter side is `side`, enlarged when it
// is smaller, the longer side as fastai_scale_dims rounds it
// (fastai_scale_window), with the same area resize, DCT downscaling and
// one-pass JPEG path (over every column and row) as the crop.  px: (h, w,
// 3) RGB in a malloc'd buffer of cap bytes, reused from call to call when
// large enough and kept after an error (w = h = 0 then): zero-initialise
// once, free(px) when done.  A scaled size beyond IMAGE_MAX_SIDE per side
// or IMAGE_MAX_PIXELS is an error.
typedef struct {
	int w, h;
	unsigned char *px;
	size_t cap;
} ScaledImage;
// enlarge 0: an image whose shorter side is under `side` keeps its own size.
int image_decode_scale_mem(const void *buf, size_t len, int side, int enlarge,
                           ScaledImage *out, ImageScratch *sc, char *err, size_t errlen);
int image_load_scale(const char *path, int side, int enlarge, ScaledImage *out,
                     ImageScratch *sc, char *err, size_t errlen);
void image_scratch_free(ImageScratch *sc);

// EXIF orientation (1..8) from a JPEG APP1 "Exif" payload (the bytes after
// the marker length); 1 when absent or malformed.
int exif_orientation(const unsigned char *p, size_t n);
// Applies EXIF orientation o to (h, w, 3) pixels; returns a new malloc'd
// buffer and sets *ow, *oh (w and h swap for o = 5..8).
unsigned char *image_orient(const unsigned char *px, int w, int h, int o, int *ow, int *oh);

#endif
