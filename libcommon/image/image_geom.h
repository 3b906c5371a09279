// fast.ai's validation geometry: scale the shorter side to sz with an area
// filter, then centre crop sz×sz.  Source: fastai/transforms.py (0.7):
// scale_min() — each side = max(floor(side·(sz/min_side)), sz), resized with
// cv2.INTER_AREA — and center_crop() — start = ceil((dim − sz)/2).  And the
// same scale without the crop: the sources of augmentation, as
// fastai/dataset.py resize_img (`resize` to 1.3·sz) makes them — the same
// scale_to rounding, enlarging too, the whole image kept.
#ifndef CNNPIPE_IMAGE_GEOM_H
#define CNNPIPE_IMAGE_GEOM_H

// fast.ai's scale_min target size for a w×h image (scale_to()):
// max(floor(side·(sz/min(w, h))), sz) per side, in double precision as
// Python computes it (the ratio rounded first; see image_geom.c).
void fastai_scale_dims(int w, int h, int sz, int *tw, int *th);
// centre_crop start: ceil((dim - sz)/2).
int fastai_crop_start(int dim, int sz);

// What a resize computes: the image (a rendering of it, any size) resized
// to tw×th, of which the ow×oh window at (cx, cy) is kept.
typedef struct {
	int tw, th;    // the whole resized image
	int cx, cy;    // the window's top-left corner in it
	int ow, oh;    // the window: the output
} ResizeWindow;
// The largest output side a window may have.
#define AREA_MAX_SIDE 32768
// The validation transform of a full_w×full_h image: scale_min(sz), then
// center_crop(sz) — an sz×sz window.
void fastai_crop_window(int full_w, int full_h, int sz, ResizeWindow *win);
// scale_min(side) without a crop: the whole tw×th image (shorter side =
// side, enlarged when smaller, aspect kept by fastai_scale_dims).
void fastai_scale_window(int full_w, int full_h, int side, ResizeWindow *win);

// src: (h, w, 3) u8 RGB, a (possibly DCT-downscaled) rendering of an image
// whose full size is full_w×full_h.  out: (sz, sz, 3) u8 RGB =
// centre_crop(scale_min(full image, sz), sz), with an exact area average
// (cv2.INTER_AREA).  Only the cropped window is computed.  Returns 0
// (-1 only for sz > 8192).
int image_scale_crop(const unsigned char *src, int w, int h, int full_w, int full_h,
                     int sz, unsigned char *out);

// The resize as a plan that consumes source rows one at a time (so a
// decoder can feed it rows as they come, over only the columns and rows the
// crop window needs).  Fixed point: Q14 weights summing exactly to 1, a Q8
// intermediate; within 1 level of the exact area average, and a constant
// image stays constant.
#include <stdint.h>
typedef struct {
	int ow, oh, w, h;       // output (window) and source sizes
	int x0, x1, y0, y1;     // source columns [x0,x1) and rows [y0,y1) used
	int maxcnt_y;           // most source rows one output row reads
	int kx;                 // horizontal taps per output pixel (zero padded)
	int *yfirst, *ycnt;     // (oh): output row y reads source rows yfirst.. +ycnt
	int16_t *yw;            // (oh, maxcnt_y) Q14
	int *xfirst;            // (ow): first tap, relative to x0, in pixels
	int16_t *xw;            // (ow, kx) Q14
	uint16_t *vrow;         // ((x1-x0)*3 + 8) Q8: one vertically resized row (+ zero slack)
	size_t cap_yf, cap_yc, cap_xf, cap_ky, cap_kx, cap_v;   // allocation sizes (reused)
	int simd;               // horizontal pass: 1 = AVX2 path, 0 = scalar
	int16_t *xw2;           // (ow/2, (kx+1)/2, 16) Q14: xw laid out for the AVX2 path
	size_t cap_x2;
} AreaPlan;

// Plans window win from a w×h rendering of the image (win's sizes are of
// the full image's resize; the rendering may be DCT-downscaled).  Reuses
// p's buffers (zero-initialise p once).  Returns 0, or -1 for a window
// outside tw×th or a side beyond AREA_MAX_SIDE.
int area_plan_window(AreaPlan *p, int w, int h, const ResizeWindow *win);
// Plans centre_crop(scale_min(full image, sz)) (fastai_crop_window) from a
// w×h rendering of a full_w×full_h image.  Returns 0 (-1 for sz > 8192).
int area_plan(AreaPlan *p, int w, int h, int full_w, int full_h, int sz);
// Output row y (0..oh-1): rows[k] points at source row yfirst[y]+k, column
// x0 (RGB); writes ow×3 bytes to out.
void area_plan_row(AreaPlan *p, int y, const unsigned char *const *rows, unsigned char *out);
void area_plan_free(AreaPlan *p);
// The horizontal pass has an AVX2 path (chosen at run time when the CPU has
// it) that is bit-identical to the scalar one.  For tests: area_use_simd(0)
// makes later area_plan() calls pick the scalar pass, area_use_simd(1) the
// default again (call it before any threads plan).  Returns 1 when the SIMD
// path exists on this machine.
int area_use_simd(int on);

// Any window: src (h, w, 3) u8 RGB, a rendering of the image win was
// planned for; out (win->oh, win->ow, 3).  Returns 0, or -1 for a window
// outside tw×th or a side beyond AREA_MAX_SIDE.
int image_resize_window(const unsigned char *src, int w, int h, const ResizeWindow *win,
                        unsigned char *out);

// Reference: plain 2-D area integration per output pixel (slow; the tests
// check image_scale_crop and image_resize_window against it).
int image_scale_crop_ref(const unsigned char *src, int w, int h, int full_w, int full_h,
                         int sz, unsigned char *out);
int image_resize_window_ref(const unsigned char *src, int w, int h, const ResizeWindow *win,
                            unsigned char *out);

#endif
