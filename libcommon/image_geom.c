// fast.ai's scale-shorter-side + centre crop.  See image_geom.h.
//
// The resize is an exact area average (cv2.INTER_AREA, which fast.ai 0.7
// uses in scale_min): output pixel X of a tw-wide resize covers the source
// interval [X·w/tw, (X+1)·w/tw); its value is the mean of the source over
// that interval, each source pixel weighted by its overlap.  Shrinking, that
// is PIL's Image.BOX; enlarging, it is nearest-neighbour with a linear blend
// across pixel edges, like INTER_AREA's enlarging path.  stb_image_resize's
// "box" filter was tried first: it is a trapezoid that near ratio 1 acts as
// a tent (bilinear) and measured mean |diff| 2-3 against PIL's BOX.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "image_geom.h"

void fastai_scale_dims(int w, int h, int sz, int *tw, int *th)
{
	// fastai/transforms.py: ratio = targ/min(r,c); scale_to(x) =
	// max(math.floor(x*ratio), targ) — the same double arithmetic, so the
	// rounding agrees with Python's on every size.
	double ratio = (double)sz / (w < h ? w : h);
	double fw = floor(w * ratio), fh = floor(h * ratio);
	*tw = fw > sz ? (int)fw : sz;
	*th = fh > sz ? (int)fh : sz;
}

int fastai_crop_start(int dim, int sz)
{
	// fastai/transforms.py center_crop: math.ceil((r - min_sz)/2)
	return dim > sz ? (dim - sz + 1) / 2 : 0;
}

// Area weights of output pixels [c, c+n) of a src_n → dst_n resize: output
// i reads source pixels first[i] .. first[i]+cnt[i]-1 with weights w[i*stride+k]
// summing to 1.
typedef struct {
	int *first, *cnt, stride;
	float *w;
} Taps;

static void taps_make(Taps *t, int src_n, int dst_n, int c, int n)
{
	double scale = (double)src_n / dst_n;     // source pixels per output pixel
	t->stride = (int)ceil(scale) + 2;
	t->first = xmalloc_array((size_t)n, sizeof *t->first);
	t->cnt = xmalloc_array((size_t)n, sizeof *t->cnt);
	t->w = xcalloc((size_t)n * t->stride, sizeof *t->w);
	for (int i = 0; i < n; i++) {
		double a = (c + i) * scale, b = (c + i + 1) * scale;
		if (b > src_n)
			b = src_n;
		int j0 = (int)floor(a), k = 0;
		if (j0 > src_n - 1)
			j0 = src_n - 1;
		for (int j = j0; j < src_n && j < b && k < t->stride; j++, k++) {
			double lo = a > j ? a : j, hi = b < j + 1 ? b : j + 1;
			t->w[(size_t)i * t->stride + k] = (float)((hi - lo) / (b - a));
		}
		t->first[i] = j0;
		t->cnt[i] = k;
	}
}

static void taps_free(Taps *t)
{
	free(t->first);
	free(t->cnt);
	free(t->w);
}

static unsigned char to_u8(float v)
{
	v += 0.5f;
	return v <= 0 ? 0 : v >= 255 ? 255 : (unsigned char)v;
}

int image_scale_crop(const unsigned char *src, int w, int h, int full_w, int full_h,
                     int sz, unsigned char *out)
{
	int tw, th;
	fastai_scale_dims(full_w, full_h, sz, &tw, &th);
	int cx = fastai_crop_start(tw, sz), cy = fastai_crop_start(th, sz);
	// The crop window of the tw×th resize, in the w×h (maybe DCT-reduced)
	// source: vertical pass first, over the source columns the window
	// touches (contiguous rows: vectorises), then the horizontal pass on
	// sz rows only.
	if (sz > 8192)
		return -1;
	Taps tx, ty;
	taps_make(&tx, w, tw, cx, sz);
	taps_make(&ty, h, th, cy, sz);
	int c0 = tx.first[0], c1 = tx.first[sz - 1] + tx.cnt[sz - 1];
	size_t ncol = (size_t)(c1 - c0) * 3;
	// tmp: (sz, c1 - c0, 3) — vertically resized source columns.
	float *tmp = xmalloc_array((size_t)sz * ncol, sizeof *tmp);
	for (int y = 0; y < sz; y++) {
		const float *wt = ty.w + (size_t)y * ty.stride;
		float *restrict acc = tmp + (size_t)y * ncol;
		for (size_t i = 0; i < ncol; i++)
			acc[i] = 0;
		for (int k = 0; k < ty.cnt[y]; k++) {
			const unsigned char *restrict row = src + ((size_t)(ty.first[y] + k) * w + c0) * 3;
			float wk = wt[k];
			for (size_t i = 0; i < ncol; i++)
				acc[i] += wk * row[i];
		}
	}
	for (int y = 0; y < sz; y++) {
		const float *row = tmp + (size_t)y * ncol;
		unsigned char *o = out + (size_t)y * sz * 3;
		for (int x = 0; x < sz; x++) {
			const float *wt = tx.w + (size_t)x * tx.stride;
			const float *p = row + (size_t)(tx.first[x] - c0) * 3;
			float s0 = 0, s1 = 0, s2 = 0;
			for (int k = 0; k < tx.cnt[x]; k++, p += 3) {
				s0 += wt[k] * p[0];
				s1 += wt[k] * p[1];
				s2 += wt[k] * p[2];
			}
			o[3 * x] = to_u8(s0);
			o[3 * x + 1] = to_u8(s1);
			o[3 * x + 2] = to_u8(s2);
		}
	}
	free(tmp);
	taps_free(&tx);
	taps_free(&ty);
	return 0;
}

int image_scale_crop_ref(const unsigned char *src, int w, int h, int full_w, int full_h,
                         int sz, unsigned char *out)
{
	// Plain 2-D integration: each output pixel is the overlap-weighted mean
	// of the source over its footprint.
	int tw, th;
	fastai_scale_dims(full_w, full_h, sz, &tw, &th);
	int cx = fastai_crop_start(tw, sz), cy = fastai_crop_start(th, sz);
	double sx = (double)w / tw, sy = (double)h / th;
	for (int oy = 0; oy < sz; oy++)
		for (int ox = 0; ox < sz; ox++) {
			double ax = (cx + ox) * sx, bx = fmin((cx + ox + 1) * sx, w);
			double ay = (cy + oy) * sy, by = fmin((cy + oy + 1) * sy, h);
			double acc[3] = { 0, 0, 0 };
			for (int y = (int)floor(ay); y < by; y++)
				for (int x = (int)floor(ax); x < bx; x++) {
					double ov = (fmin(bx, x + 1) - fmax(ax, x)) * (fmin(by, y + 1) - fmax(ay, y));
					for (int c = 0; c < 3; c++)
						acc[c] += ov * src[((size_t)y * w + x) * 3 + c];
				}
			for (int c = 0; c < 3; c++)
				out[((size_t)oy * sz + ox) * 3 + c] = to_u8((float)(acc[c] / ((bx - ax) * (by - ay))));
		}
	return 0;
}
