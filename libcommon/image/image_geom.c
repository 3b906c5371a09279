// fast.ai's scale-shorter-side, with or without the centre crop.  See
// image_geom.h.
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
#include "libcommon/util/alloc.h"
#include "image_geom.h"

// The AVX2 horizontal pass is compiled with a target attribute and picked
// at run time, so every build (the sanitizer one has no -march) has it.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HORIZ_AVX2 1
#include <immintrin.h>
#endif

static int simd_allowed = 1;

static int simd_available(void)
{
#ifdef HORIZ_AVX2
	return __builtin_cpu_supports("avx2");
#else
	return 0;
#endif
}

int area_use_simd(int on)
{
	simd_allowed = on;
	return simd_available();
}

void fastai_scale_dims(int w, int h, int sz, int *tw, int *th)
{
	// fastai/transforms.py: ratio = targ/min(r,c); scale_to(x) =
	// max(math.floor(x*ratio), targ) — the same double arithmetic, so the
	// rounding agrees with Python's on every size: the ratio is rounded to
	// a double first, so where side·sz/min is an integer the product can
	// fall just below it and floor gives one less (85x40 to 224: 475, not
	// 476).  fastai/dataset.py resize_img (the `resize` to 1.3·sz) uses the
	// same scale_to.
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

void fastai_crop_window(int full_w, int full_h, int sz, ResizeWindow *win)
{
	fastai_scale_dims(full_w, full_h, sz, &win->tw, &win->th);
	win->cx = fastai_crop_start(win->tw, sz);
	win->cy = fastai_crop_start(win->th, sz);
	win->ow = win->oh = sz;
}

void fastai_scale_window(int full_w, int full_h, int side, ResizeWindow *win)
{
	fastai_scale_dims(full_w, full_h, side, &win->tw, &win->th);
	win->cx = win->cy = 0;
	win->ow = win->tw;
	win->oh = win->th;
}

// Output pixel i of a src_n → dst_n area resize covers the source interval
// [a, b) = [i·src_n/dst_n, (i+1)·src_n/dst_n); it reads source pixels
// j0 .. j0+cnt-1 (those overlapping it).
static void axis_span(int src_n, int dst_n, int i, double *a, double *b, int *j0, int *cnt)
{
	double scale = (double)src_n / dst_n;
	*a = i * scale;
	*b = (i + 1) * scale;
	if (*b > src_n)
		*b = src_n;
	int j = (int)floor(*a);
	if (j > src_n - 1)
		j = src_n - 1;
	int k = 0;
	while (j + k < src_n && j + k < *b)
		k++;
	*j0 = j;
	*cnt = k;
}

// Q14 overlap weights of one output pixel; they sum to exactly 1 << 14 (the
// rounding remainder goes to the largest), so a constant stays constant.
static void axis_weights(double a, double b, int j0, int cnt, int16_t *w)
{
	int sum = 0, big = 0;
	for (int k = 0; k < cnt; k++) {
		int j = j0 + k;
		double lo = a > j ? a : j, hi = b < j + 1 ? b : j + 1;
		w[k] = (int16_t)lround((hi - lo) / (b - a) * 16384.0);
		sum += w[k];
		if (w[k] > w[big])
			big = k;
	}
	w[big] = (int16_t)(w[big] + 16384 - sum);
}

static void *grow(void *q, size_t *cap, size_t n, size_t elsz)
{
	if (n <= *cap)
		return q;
	free(q);
	*cap = n;
	return xmalloc_array(n, elsz);
}

int area_plan_window(AreaPlan *p, int w, int h, const ResizeWindow *win)
{
	int ow = win->ow, oh = win->oh, cx = win->cx, cy = win->cy, tw = win->tw, th = win->th;
	if (w < 1 || h < 1 || ow < 1 || oh < 1 || ow > AREA_MAX_SIDE || oh > AREA_MAX_SIDE ||
	    cx < 0 || cy < 0 || tw - cx < ow || th - cy < oh)
		return -1;
	p->ow = ow;
	p->oh = oh;
	p->w = w;
	p->h = h;
	p->yfirst = grow(p->yfirst, &p->cap_yf, (size_t)oh, sizeof *p->yfirst);
	p->ycnt = grow(p->ycnt, &p->cap_yc, (size_t)oh, sizeof *p->ycnt);
	p->xfirst = grow(p->xfirst, &p->cap_xf, (size_t)ow, sizeof *p->xfirst);
	// Spans first (counts fix the weight strides), then weights.
	double a, b;
	int j0, cnt, kx = 1, ky = 1;
	for (int i = 0; i < oh; i++) {
		axis_span(h, th, cy + i, &a, &b, &p->yfirst[i], &p->ycnt[i]);
		ky = p->ycnt[i] > ky ? p->ycnt[i] : ky;
	}
	for (int i = 0; i < ow; i++) {
		axis_span(w, tw, cx + i, &a, &b, &j0, &cnt);
		p->xfirst[i] = j0;
		kx = cnt > kx ? cnt : kx;
	}
	p->maxcnt_y = ky;
	p->kx = kx;
	p->y0 = p->yfirst[0];
	p->y1 = p->yfirst[oh - 1] + p->ycnt[oh - 1];
	p->x0 = p->xfirst[0];
	axis_span(w, tw, cx + ow - 1, &a, &b, &j0, &cnt);
	p->x1 = j0 + cnt;
	int ncol = p->x1 - p->x0;
	p->yw = grow(p->yw, &p->cap_ky, (size_t)oh * ky, sizeof *p->yw);
	p->xw = grow(p->xw, &p->cap_kx, (size_t)ow * kx, sizeof *p->xw);
	// +8: the AVX2 pass reads 8 values from a tap pair's start, past x1
	// when kx is odd (those meet zero weights; zeroed to stay defined).
	p->vrow = grow(p->vrow, &p->cap_v, (size_t)ncol * 3 + 8, sizeof *p->vrow);
	memset(p->vrow + (size_t)ncol * 3, 0, 8 * sizeof *p->vrow);
	memset(p->yw, 0, (size_t)oh * ky * sizeof *p->yw);
	memset(p->xw, 0, (size_t)ow * kx * sizeof *p->xw);
	for (int i = 0; i < oh; i++) {
		axis_span(h, th, cy + i, &a, &b, &j0, &cnt);
		axis_weights(a, b, j0, cnt, p->yw + (size_t)i * ky);
	}
	for (int i = 0; i < ow; i++) {
		// Every output pixel reads kx taps (zero weights pad): shift a
		// window that would run past x1 left, and its weights right.
		axis_span(w, tw, cx + i, &a, &b, &j0, &cnt);
		int f = j0 - p->x0, shift = f + kx > ncol ? f + kx - ncol : 0;
		p->xfirst[i] = f - shift;
		axis_weights(a, b, j0, cnt, p->xw + (size_t)i * kx + shift);
	}
	p->simd = simd_allowed && simd_available();
	if (p->simd) {
		// Pixel pair x = 2m, 2m+1, tap pair t = taps 2t, 2t+1: one
		// 16-lane row, a 128-bit half per pixel laid out as the
		// shuffled data (R R G G B B - -): w0 w1 w0 w1 w0 w1 0 0.
		int nt = (kx + 1) / 2;
		size_t n2 = (size_t)(ow / 2) * nt * 16;
		p->xw2 = grow(p->xw2, &p->cap_x2, n2 ? n2 : 1, sizeof *p->xw2);
		for (int x = 0; x < ow / 2 * 2; x++)
			for (int t = 0; t < nt; t++) {
				const int16_t *w = p->xw + (size_t)x * kx + 2 * t;
				int16_t *d = p->xw2 + ((size_t)(x / 2) * nt + t) * 16 + (x & 1) * 8;
				int16_t w0 = w[0], w1 = 2 * t + 1 < kx ? w[1] : 0;
				for (int c = 0; c < 3; c++) {
					d[2 * c] = w0;
					d[2 * c + 1] = w1;
				}
				d[6] = d[7] = 0;
			}
	}
	return 0;
}

int area_plan(AreaPlan *p, int w, int h, int full_w, int full_h, int sz)
{
	if (sz > 8192 || sz < 1 || w < 1 || h < 1)
		return -1;
	ResizeWindow win;
	fastai_crop_window(full_w, full_h, sz, &win);
	return area_plan_window(p, w, h, &win);
}

void area_plan_free(AreaPlan *p)
{
	free(p->yfirst);
	free(p->ycnt);
	free(p->xfirst);
	free(p->yw);
	free(p->xw);
	free(p->vrow);
	free(p->xw2);
	memset(p, 0, sizeof *p);
}

// The vertical pass: v[i] = Σ_k w[k]·r[k][i] in Q8 (u8 × Q14 >> 6).  The
// loops over i are the hot ones; GCC -O2 vectorises them only when asked.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif
static void vert(uint16_t *restrict v, const unsigned char *const *r, const int16_t *w,
                 int cnt, int n)
{
	const unsigned char *restrict r0 = r[0];
	int w0 = w[0];
	if (cnt == 1) {
		for (int i = 0; i < n; i++)
			v[i] = (uint16_t)((w0 * r0[i] + 32) >> 6);
	} else if (cnt == 2) {
		const unsigned char *restrict r1 = r[1];
		int w1 = w[1];
		for (int i = 0; i < n; i++)
			v[i] = (uint16_t)((w0 * r0[i] + w1 * r1[i] + 32) >> 6);
	} else if (cnt == 3) {
		const unsigned char *restrict r1 = r[1], *restrict r2 = r[2];
		int w1 = w[1], w2 = w[2];
		for (int i = 0; i < n; i++)
			v[i] = (uint16_t)((w0 * r0[i] + w1 * r1[i] + w2 * r2[i] + 32) >> 6);
	} else {
		int32_t acc[512];
		for (int i0 = 0; i0 < n; i0 += 512) {
			int m = n - i0 < 512 ? n - i0 : 512;
			for (int i = 0; i < m; i++)
				acc[i] = 32;
			for (int k = 0; k < cnt; k++) {
				const unsigned char *restrict rk = r[k] + i0;
				int wk = w[k];
				for (int i = 0; i < m; i++)
					acc[i] += wk * rk[i];
			}
			for (int i = 0; i < m; i++)
				v[i0 + i] = (uint16_t)(acc[i] >> 6);
		}
	}
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

static inline unsigned char q22(int32_t s)
{
	s = (s + (1 << 21)) >> 22;
	return (unsigned char)(s > 255 ? 255 : s);
}

// The horizontal pass over one vertically resized row, K taps a pixel
// (K constant in the specialisations so the tap loop unrolls), pixels
// x0..ow-1.
static inline void horiz_k(const AreaPlan *p, unsigned char *restrict out, const int K, int x0)
{
	const uint16_t *v = p->vrow;
	for (int x = x0; x < p->ow; x++) {
		const uint16_t *q = v + 3 * p->xfirst[x];
		const int16_t *w = p->xw + (size_t)x * K;
		int32_t s0 = 0, s1 = 0, s2 = 0;
		for (int k = 0; k < K; k++, q += 3) {
			s0 += w[k] * q[0];
			s1 += w[k] * q[1];
			s2 += w[k] * q[2];
		}
		out[3 * x] = q22(s0);
		out[3 * x + 1] = q22(s1);
		out[3 * x + 2] = q22(s2);
	}
}

static void horiz_scalar(const AreaPlan *p, unsigned char *out, int x0)
{
	switch (p->kx) {
	case 1: horiz_k(p, out, 1, x0); break;
	case 2: horiz_k(p, out, 2, x0); break;
	case 3: horiz_k(p, out, 3, x0); break;
	case 4: horiz_k(p, out, 4, x0); break;
	default: horiz_k(p, out, p->kx, x0); break;
	}
}

#ifdef HORIZ_AVX2
// The same sums with pmaddwd, two pixels a register (one per 128-bit
// half), two taps a step: a half holds taps 2t, 2t+1 as R R' G G' B B' - -
// (a pshufb of the 8 values from tap 2t on) times w w' w w' w w' 0 0 from
// xw2.  pmaddwd is signed 16-bit and v is u16 (up to 65280), so v is
// offset by -32768 (xor 0x8000): Σ w·(v - 32768) = Σ w·v - 2^29 exactly,
// because a pixel's weights sum to exactly 1 << 14 (axis_weights); the
// 2^29 goes back in with q22's rounding term.  All integer, no partial sum
// leaves int32 (a pmaddwd pair is at most 2^30 in size), so the result
// equals the scalar pass bit for bit.
__attribute__((target("avx2")))
static void horiz_avx2(const AreaPlan *p, unsigned char *restrict out)
{
	const uint16_t *v = p->vrow;
	const int nt = (p->kx + 1) / 2;
	const __m256i shuf = _mm256_setr_epi8(0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11, -128, -128, -128, -128,
	                                      0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11, -128, -128, -128, -128);
	const __m256i flip = _mm256_set1_epi16((short)0x8000);
	const __m256i bias = _mm256_set1_epi32((1 << 29) + (1 << 21));
	const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0);
	const __m128i pack = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -128, -128, -128, -128);
	int x = 0;
	for (; x + 4 <= p->ow; x += 4) {
		__m256i acc[2];
		for (int h = 0; h < 2; h++) {
			const uint16_t *qa = v + 3 * p->xfirst[x + 2 * h];
			const uint16_t *qb = v + 3 * p->xfirst[x + 2 * h + 1];
			const int16_t *w = p->xw2 + (size_t)((x >> 1) + h) * nt * 16;
			__m256i s = _mm256_setzero_si256();
			for (int t = 0; t < nt; t++) {
				__m256i d = _mm256_inserti128_si256(
					_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(qa + 6 * t))),
					_mm_loadu_si128((const __m128i *)(qb + 6 * t)), 1);
				d = _mm256_shuffle_epi8(_mm256_xor_si256(d, flip), shuf);
				s = _mm256_add_epi32(s, _mm256_madd_epi16(d, _mm256_loadu_si256((const __m256i *)(w + 16 * t))));
			}
			acc[h] = _mm256_srai_epi32(_mm256_add_epi32(s, bias), 22);
		}
		// acc[0] = x | x+1, acc[1] = x+2 | x+3 (R G B 0 each): saturating
		// packs clamp at 255 as q22 does; dwords then come as x, x+2 |
		// x+1, x+3 and are put in order, then the zero bytes dropped.
		__m256i b = _mm256_packus_epi16(_mm256_packs_epi32(acc[0], acc[1]), _mm256_setzero_si256());
		__m128i o = _mm_shuffle_epi8(_mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b, order)), pack);
		_mm_storel_epi64((__m128i *)(out + 3 * x), o);
		uint32_t last = (uint32_t)_mm_extract_epi32(o, 2);
		memcpy(out + 3 * x + 8, &last, 4);
	}
	horiz_scalar(p, out, x);
}
#endif

void area_plan_row(AreaPlan *p, int y, const unsigned char *const *rows, unsigned char *out)
{
	vert(p->vrow, rows, p->yw + (size_t)y * p->maxcnt_y, p->ycnt[y], (p->x1 - p->x0) * 3);
#ifdef HORIZ_AVX2
	if (p->simd) {
		horiz_avx2(p, out);
		return;
	}
#endif
	horiz_scalar(p, out, 0);
}

int image_resize_window(const unsigned char *src, int w, int h, const ResizeWindow *win,
                        unsigned char *out)
{
	AreaPlan p = { 0 };
	if (area_plan_window(&p, w, h, win) != 0)
		return -1;
	const unsigned char **rows = xmalloc_array((size_t)p.maxcnt_y, sizeof *rows);
	for (int y = 0; y < p.oh; y++) {
		for (int k = 0; k < p.ycnt[y]; k++)
			rows[k] = src + ((size_t)(p.yfirst[y] + k) * w + p.x0) * 3;
		area_plan_row(&p, y, rows, out + (size_t)y * p.ow * 3);
	}
	free(rows);
	area_plan_free(&p);
	return 0;
}

int image_scale_crop(const unsigned char *src, int w, int h, int full_w, int full_h,
                     int sz, unsigned char *out)
{
	if (sz > 8192 || sz < 1)
		return -1;
	ResizeWindow win;
	fastai_crop_window(full_w, full_h, sz, &win);
	return image_resize_window(src, w, h, &win, out);
}

static unsigned char to_u8(float v)
{
	v += 0.5f;
	return v <= 0 ? 0 : v >= 255 ? 255 : (unsigned char)v;
}

int image_resize_window_ref(const unsigned char *src, int w, int h, const ResizeWindow *win,
                            unsigned char *out)
{
	// Plain 2-D integration: each output pixel is the overlap-weighted mean
	// of the source over its footprint.
	if (w < 1 || h < 1 || win->ow < 1 || win->oh < 1 || win->cx < 0 || win->cy < 0 ||
	    win->tw - win->cx < win->ow || win->th - win->cy < win->oh)
		return -1;
	int cx = win->cx, cy = win->cy;
	double sx = (double)w / win->tw, sy = (double)h / win->th;
	for (int oy = 0; oy < win->oh; oy++)
		for (int ox = 0; ox < win->ow; ox++) {
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
				out[((size_t)oy * win->ow + ox) * 3 + c] =
					to_u8((float)(acc[c] / ((bx - ax) * (by - ay))));
		}
	return 0;
}

int image_scale_crop_ref(const unsigned char *src, int w, int h, int full_w, int full_h,
                         int sz, unsigned char *out)
{
	ResizeWindow win;
	fastai_crop_window(full_w, full_h, sz, &win);
	return image_resize_window_ref(src, w, h, &win, out);
}
