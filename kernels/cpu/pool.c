// Pooling: max and average over k x k windows, fast.ai's concat pool and the
// global average.  References (_ref) first, then the fast paths: plain
// loops too (planes are shared among threads; max without argmax is
// vectorised): pooling is a small part of the time next to the convolutions.
//   x: (N, C, H, W), y: (N, C, P, Q); argmax: (N, C, P, Q) indices into H*W.
#include <float.h>
#include <math.h>
#include <string.h>
#include "libcommon/util/err.h"
#include "ops.h"
#include "ops_internal.h"
#include "libcommon/util/threads.h"
#ifdef __AVX512F__
#include <immintrin.h>
#endif

// ---- reference ------------------------------------------------------------
// Plain loops over the definitions, window cell by cell; sums in double.

#define PLANE(p, n, c, h, w) ((p) + (((size_t)(n) * s->C + (c)) * (h)) * (w))

// Window cell (p, q; r, t) at input row *ih, column *iw: is it inside x?
static int pool_cell(const PoolShape *s, int p, int q, int r, int t, int *ih, int *iw)
{
	*ih = p * s->stride - s->pad + r;
	*iw = q * s->stride - s->pad + t;
	return *ih >= 0 && *ih < s->H && *iw >= 0 && *iw < s->W;
}

// Max over the window's cells inside x, in order r, t; the first maximum
// wins, a NaN beats every number and the first NaN wins (PyTorch).  A
// window wholly outside x gives 0 and argmax -1.
void maxpool2d_forward_ref(const PoolShape *s, const float *x, float *y,
                           int32_t *argmax)
{
	for (int n = 0; n < s->N; n++)
	for (int c = 0; c < s->C; c++) {
		const float *xp = PLANE(x, n, c, s->H, s->W);
		for (int p = 0; p < s->P; p++)
		for (int q = 0; q < s->Q; q++) {
			float m = 0.0f;
			int32_t at = -1;
			for (int r = 0; r < s->k; r++)
				for (int t = 0; t < s->k; t++) {
					int ih, iw;
					if (!pool_cell(s, p, q, r, t, &ih, &iw))
						continue;
					float v = xp[ih * s->W + iw];
					int better = isnan(v) ? !isnan(m) : v > m;
					if (at < 0 || better) {
						m = v;
						at = ih * s->W + iw;
					}
				}
			size_t o = (((size_t)n * s->C + c) * s->P + p) * s->Q + q;
			y[o] = m;
			if (argmax)
				argmax[o] = at;
		}
	}
}

// dx (=): each dy added at its argmax (outputs in order); argmax outside
// the plane (-1) passes nothing back.
void maxpool2d_backward_ref(const PoolShape *s, const int32_t *argmax,
                            const float *dy, float *dx)
{
	memset(dx, 0, sizeof(float) * (size_t)s->N * s->C * s->H * s->W);
	for (int n = 0; n < s->N; n++)
	for (int c = 0; c < s->C; c++) {
		float *dxp = PLANE(dx, n, c, s->H, s->W);
		for (int p = 0; p < s->P; p++)
		for (int q = 0; q < s->Q; q++) {
			size_t o = (((size_t)n * s->C + c) * s->P + p) * s->Q + q;
			if (argmax[o] >= 0 && argmax[o] < s->H * s->W)
				dxp[argmax[o]] += dy[o];
		}
	}
}

// PyTorch's divisor with count_include_pad=True: the window's cells inside
// the padded input, rows and columns [-pad, H + pad) x [-pad, W + pad).
static int avg_divisor_ref(const PoolShape *s, int p, int q)
{
	int rows = 0, cols = 0;
	for (int r = 0; r < s->k; r++) {
		int ih = p * s->stride - s->pad + r;
		rows += ih >= -s->pad && ih < s->H + s->pad;
	}
	for (int t = 0; t < s->k; t++) {
		int iw = q * s->stride - s->pad + t;
		cols += iw >= -s->pad && iw < s->W + s->pad;
	}
	return rows * cols;
}

// y = (sum of the window's cells inside x) / divisor; 0 for a window past
// the padding.
void avgpool2d_forward_ref(const PoolShape *s, const float *x, float *y)
{
	for (int n = 0; n < s->N; n++)
	for (int c = 0; c < s->C; c++) {
		const float *xp = PLANE(x, n, c, s->H, s->W);
		for (int p = 0; p < s->P; p++)
		for (int q = 0; q < s->Q; q++) {
			double sum = 0.0;
			for (int r = 0; r < s->k; r++)
				for (int t = 0; t < s->k; t++) {
					int ih, iw;
					if (pool_cell(s, p, q, r, t, &ih, &iw))
						sum += xp[ih * s->W + iw];
				}
			int div = avg_divisor_ref(s, p, q);
			y[(((size_t)n * s->C + c) * s->P + p) * s->Q + q] =
				div > 0 ? (float)(sum / div) : 0.0f;
		}
	}
}

// dx[ih, iw] (=) = sum over the windows holding (ih, iw) of dy / divisor
// (gathered input by input: the transpose of the forward's sum).
void avgpool2d_backward_ref(const PoolShape *s, const float *dy, float *dx)
{
	for (int n = 0; n < s->N; n++)
	for (int c = 0; c < s->C; c++) {
		const float *dyp = PLANE(dy, n, c, s->P, s->Q);
		float *dxp = PLANE(dx, n, c, s->H, s->W);
		for (int ih = 0; ih < s->H; ih++)
		for (int iw = 0; iw < s->W; iw++) {
			double sum = 0.0;
			for (int p = 0; p < s->P; p++)
			for (int q = 0; q < s->Q; q++) {
				int r = ih - (p * s->stride - s->pad);
				int t = iw - (q * s->stride - s->pad);
				int div = avg_divisor_ref(s, p, q);
				if (r >= 0 && r < s->k && t >= 0 && t < s->k && div > 0)
					sum += (double)dyp[p * s->Q + q] / div;
			}
			dxp[ih * s->W + iw] = (float)sum;
		}
	}
}

#undef PLANE

// y[n, c] = max over HW (maxpool's rule: the first maximum, NaN wins),
// y[n, C + c] = mean over HW.
void concat_pool_forward_ref(int N, int C, int HW, const float *x, float *y,
                             int32_t *argmax)
{
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++) {
			const float *xp = x + ((size_t)n * C + c) * HW;
			float m = 0.0f;
			int32_t at = -1;
			double sum = 0.0;
			for (int i = 0; i < HW; i++) {
				float v = xp[i];
				int better = isnan(v) ? !isnan(m) : v > m;
				if (at < 0 || better) {
					m = v;
					at = i;
				}
				sum += v;
			}
			y[(size_t)n * 2 * C + c] = m;
			y[(size_t)n * 2 * C + C + c] = (float)(sum / HW);
			if (argmax)
				argmax[(size_t)n * C + c] = at;
		}
}

// dx (=) = dy[n, C + c] / HW everywhere, plus dy[n, c] at the argmax.
void concat_pool_backward_ref(int N, int C, int HW, const int32_t *argmax,
                              const float *dy, float *dx)
{
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++) {
			float mean_part = dy[(size_t)n * 2 * C + C + c] / (float)HW;
			for (int i = 0; i < HW; i++) {
				float g = mean_part;
				if (i == argmax[(size_t)n * C + c])
					g += dy[(size_t)n * 2 * C + c];
				dx[((size_t)n * C + c) * HW + i] = g;
			}
		}
}

void global_avgpool_forward_ref(int N, int C, int HW, const float *x, float *y)
{
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++) {
			double sum = 0.0;
			for (int i = 0; i < HW; i++)
				sum += x[((size_t)n * C + c) * HW + i];
			y[(size_t)n * C + c] = (float)(sum / HW);
		}
}

// dx (=) = dy / HW at every position of the plane
void global_avgpool_backward_ref(int N, int C, int HW, const float *dy, float *dx)
{
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++)
			for (int i = 0; i < HW; i++)
				dx[((size_t)n * C + c) * HW + i] = dy[(size_t)n * C + c] / (float)HW;
}

// ---- fast path ------------------------------------------------------------

// PyTorch's floor rule (ceil_mode=False), torch.nn.MaxPool2d docs.
typedef struct {
	const PoolShape *s;
	const float *x, *dy;
	const int32_t *am;
	float *y, *dx;
	int32_t *argmax;
	int N, C, HW;
} PoolJob;

static void max_f(void *ctx, size_t pl0, size_t pl1, int t)
{
	(void)t;
	PoolJob *j = ctx;
	const PoolShape *s = j->s;
	for (size_t pl = pl0; pl < pl1; pl++) {
		const float *xp = j->x + pl * s->H * s->W;
		float *yp = j->y + pl * s->P * s->Q;
		int32_t *ap = j->argmax ? j->argmax + pl * s->P * s->Q : NULL;
		for (int p = 0; p < s->P; p++)
		for (int q = 0; q < s->Q; q++) {
			float m = -INFINITY;
			int32_t mi = -1;   // stays -1 only if the window misses x
			for (int r = 0; r < s->k; r++) {
				int ih = p * s->stride - s->pad + r;
				if (ih < 0 || ih >= s->H)
					continue;
				for (int c = 0; c < s->k; c++) {
					int iw = q * s->stride - s->pad + c;
					if (iw < 0 || iw >= s->W)
						continue;
					float v = xp[ih * s->W + iw];
					// first maximum wins, NaN propagates (as PyTorch)
					if (mi < 0 || v > m || (isnan(v) && !isnan(m))) {
						m = v;
						mi = ih * s->W + iw;
					}
				}
			}
			yp[p * s->Q + q] = mi < 0 ? 0.0f : m;
			if (ap)
				ap[p * s->Q + q] = mi;
		}
	}
}

static int plane_threads(size_t planes, size_t per_plane)
{
	return ops_threads_for(planes, (double)per_plane);
}

// The same values (and argmax, when asked, stride <= 2) as max_f, row by row with the
// columns whose whole window is inside x as vector loops (max_f's scalar
// compare-and-branch per element cost a third of Tiny Darknet's forward).
// Each window cell in max_f's order r, c: take v when v > m, or v is NaN
// and m is not (the first NaN wins, as PyTorch).
#define MAXQ 256   // output columns per inner pass (plain loop)
#ifdef __AVX512F__
// x[i * st] for i < n <= 16 (st 1 or 2), lanes past n zero; reads nothing
// past x[(n - 1) * st]
static inline __m512 load_strided(const float *x, int st, int n)
{
	if (st == 1)
		return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), x);
	int need = 2 * n - 1;
	__mmask16 k0 = (__mmask16)(need >= 16 ? 0xFFFF : (1u << need) - 1);
	__mmask16 k1 = (__mmask16)(need > 16 ? (1u << (need - 16)) - 1 : 0);
	const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20,
	                                       22, 24, 26, 28, 30);
	return _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(k0, x), even,
	                              _mm512_maskz_loadu_ps(k1, x + 16));
}
#endif

static void max_fast(void *ctx, size_t pl0, size_t pl1, int t)
{
	(void)t;
	PoolJob *j = ctx;
	const PoolShape *s = j->s;
	const int st = s->stride, k = s->k, W = s->W;
	// interior columns [qlo, qhi): q*st - pad >= 0 and q*st - pad + k <= W
	int qlo = (s->pad + st - 1) / st, qhi = (W + s->pad - k) / st + 1;
	if (qhi > s->Q)
		qhi = s->Q;
	if (qlo > qhi)
		qlo = qhi;
	for (size_t pl = pl0; pl < pl1; pl++) {
		const float *xp = j->x + pl * s->H * W;
		float *yp = j->y + pl * s->P * s->Q;
		int32_t *ap = j->argmax ? j->argmax + pl * s->P * s->Q : NULL;
		for (int p = 0; p < s->P; p++) {
			float *yr = yp + (size_t)p * s->Q;
			int32_t *ar = ap ? ap + (size_t)p * s->Q : NULL;
			int r0 = p * st - s->pad, ra = r0 < 0 ? 0 : r0;
			int rb = r0 + k < s->H ? r0 + k : s->H;   // valid rows [ra, rb)
			if (ra >= rb) {   // the windows miss x: 0, as max_f
				memset(yr, 0, sizeof(float) * s->Q);
				for (int q = 0; ar && q < s->Q; q++)
					ar[q] = -1;
				continue;
			}
			int q0 = qlo;
#ifdef __AVX512F__
			// lane i's cell index in the plane, less the window's offset
			const __m512i lanes = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3,
			        4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(st));
			if (st <= 2)   // 16 columns at a time, in registers
				for (; q0 < qhi; q0 += 16) {
					int nq = qhi - q0 < 16 ? qhi - q0 : 16;
					__m512 mx = _mm512_setzero_ps();
					__m512i ix = _mm512_setzero_si512();   // argmax of each lane
					for (int r = ra; r < rb; r++)
						for (int c = 0; c < k; c++) {
							const int at = r * W + q0 * st - s->pad + c;
							__m512 v = load_strided(xp + at, st, nq);
							if (r == ra && c == 0) {
								mx = v;
								ix = _mm512_add_epi32(lanes, _mm512_set1_epi32(at));
								continue;
							}
							__mmask16 take = _mm512_cmp_ps_mask(v, mx, _CMP_GT_OQ) |
								(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) &
								 _mm512_cmp_ps_mask(mx, mx, _CMP_ORD_Q));
							mx = _mm512_mask_blend_ps(take, mx, v);
							if (ar)
								ix = _mm512_mask_blend_epi32(take, ix,
								        _mm512_add_epi32(lanes, _mm512_set1_epi32(at)));
						}
					_mm512_mask_storeu_ps(yr + q0, (__mmask16)((1u << nq) - 1), mx);
					if (ar)
						_mm512_mask_storeu_epi32(ar + q0, (__mmask16)((1u << nq) - 1), ix);
				}
#endif
			for (; q0 < qhi; q0 += MAXQ) {
				int nq = qhi - q0 < MAXQ ? qhi - q0 : MAXQ;
				float m[MAXQ];
				const float *x0 = xp + (size_t)ra * W + (size_t)q0 * st - s->pad;
				for (int i = 0; i < nq; i++)
					m[i] = x0[i * st];
				for (int r = ra; r < rb; r++)
					for (int c = r == ra ? 1 : 0; c < k; c++) {
						const float *xr = xp + (size_t)r * W + (size_t)q0 * st - s->pad + c;
						for (int i = 0; i < nq; i++)
							m[i] = pool_pick(m[i], xr[i * st]);
					}
				memcpy(yr + q0, m, sizeof(float) * nq);
			}
			// border columns: max_f's loop
			for (int q = 0; q < s->Q; q++) {
				if (q == qlo)
					q = qhi;
				if (q >= s->Q)
					break;
				float mx = -INFINITY;
				int seen = 0;
				int32_t mi = -1;
				for (int r = ra; r < rb; r++)
					for (int c = 0; c < k; c++) {
						int iw = q * st - s->pad + c;
						if (iw < 0 || iw >= W)
							continue;
						float v = xp[(size_t)r * W + iw];
						if (!seen || v > mx || (isnan(v) && !isnan(mx))) {
							mx = v;
							mi = r * W + iw;
						}
						seen = 1;
					}
				yr[q] = seen ? mx : 0.0f;
				if (ar)
					ar[q] = mi;
			}
		}
	}
}

// with argmax: max_fast where its vector loop takes every interior
// column (stride <= 2), else max_f
static ParallelFn max_kernel(const PoolShape *s, const int32_t *argmax)
{
#ifdef __AVX512F__
	int fast = !argmax || s->stride <= 2;
#else
	(void)s;
	int fast = !argmax;
#endif
	return fast ? max_fast : max_f;
}

void maxpool2d_forward(const PoolShape *s, const float *x, float *y,
                       int32_t *argmax)
{
	PoolJob j = { .s = s, .x = x, .y = y, .argmax = argmax };
	size_t planes = (size_t)s->N * s->C;
	parallel_for(planes, plane_threads(planes, (size_t)s->P * s->Q * s->k * s->k),
	             max_kernel(s, argmax), &j);
}

void maxpool2d_forward_plane(const PoolShape *s, const float *xp, float *yp,
                             int32_t *ap)
{
	PoolJob j = { .s = s, .x = xp, .y = yp, .argmax = ap };
	max_kernel(s, ap)(&j, 0, 1, 0);
}

static void max_b(void *ctx, size_t pl0, size_t pl1, int t)
{
	(void)t;
	PoolJob *j = ctx;
	const PoolShape *s = j->s;
	for (size_t pl = pl0; pl < pl1; pl++) {
		float *dxp = j->dx + pl * s->H * s->W;
		const float *dyp = j->dy + pl * s->P * s->Q;
		const int32_t *ap = j->am + pl * s->P * s->Q;
		memset(dxp, 0, sizeof(float) * s->H * s->W);
		for (int i = 0; i < s->P * s->Q; i++)
			if (ap[i] >= 0 && ap[i] < s->H * s->W)
				dxp[ap[i]] += dyp[i];
	}
}

void maxpool2d_backward(const PoolShape *s, const int32_t *argmax,
                        const float *dy, float *dx)
{
	PoolJob j = { .s = s, .am = argmax, .dy = dy, .dx = dx };
	size_t planes = (size_t)s->N * s->C;
	parallel_for(planes, plane_threads(planes, (size_t)s->H * s->W), max_b, &j);
}

// Window rows [h0, h1) within the padded input and the divisor PyTorch uses
// with count_include_pad=True (aten AvgPool2d: pool_size is computed before
// clipping to x, after clipping to the padded extent).
static void avg_window(const PoolShape *s, int p, int q, int *h0, int *h1,
                       int *w0, int *w1, int *div)
{
	int hs = p * s->stride - s->pad, ws = q * s->stride - s->pad;
	int he = hs + s->k, we = ws + s->k;
	if (he > s->H + s->pad)
		he = s->H + s->pad;
	if (we > s->W + s->pad)
		we = s->W + s->pad;
	*div = (he - hs) * (we - ws);
	*h0 = hs < 0 ? 0 : hs;
	*w0 = ws < 0 ? 0 : ws;
	*h1 = he > s->H ? s->H : he;
	*w1 = we > s->W ? s->W : we;
}

static void avg_f(void *ctx, size_t pl0, size_t pl1, int t)
{
	(void)t;
	PoolJob *j = ctx;
	const PoolShape *s = j->s;
	for (size_t pl = pl0; pl < pl1; pl++) {
		const float *xp = j->x + pl * s->H * s->W;
		float *yp = j->y + pl * s->P * s->Q;
		for (int p = 0; p < s->P; p++)
		for (int q = 0; q < s->Q; q++) {
			int h0, h1, w0, w1, div;
			avg_window(s, p, q, &h0, &h1, &w0, &w1, &div);
			float acc = 0.0f;
			for (int ih = h0; ih < h1; ih++)
				for (int iw = w0; iw < w1; iw++)
					acc += xp[ih * s->W + iw];
			yp[p * s->Q + q] = div > 0 ? acc / (float)div : 0.0f;
		}
	}
}

void avgpool2d_forward(const PoolShape *s, const float *x, float *y)
{
	PoolJob j = { .s = s, .x = x, .y = y };
	size_t planes = (size_t)s->N * s->C;
	parallel_for(planes, plane_threads(planes, (size_t)s->P * s->Q * s->k * s->k),
	             avg_f, &j);
}

static void avg_b(void *ctx, size_t pl0, size_t pl1, int t)
{
	(void)t;
	PoolJob *j = ctx;
	const PoolShape *s = j->s;
	for (size_t pl = pl0; pl < pl1; pl++) {
		float *dxp = j->dx + pl * s->H * s->W;
		const float *dyp = j->dy + pl * s->P * s->Q;
		memset(dxp, 0, sizeof(float) * s->H * s->W);
		for (int p = 0; p < s->P; p++)
		for (int q = 0; q < s->Q; q++) {
			int h0, h1, w0, w1, div;
			avg_window(s, p, q, &h0, &h1, &w0, &w1, &div);
			if (div <= 0)
				continue;
			float g = dyp[p * s->Q + q] / (float)div;
			for (int ih = h0; ih < h1; ih++)
				for (int iw = w0; iw < w1; iw++)
					dxp[ih * s->W + iw] += g;
		}
	}
}

void avgpool2d_backward(const PoolShape *s, const float *dy, float *dx)
{
	PoolJob j = { .s = s, .dy = dy, .dx = dx };
	size_t planes = (size_t)s->N * s->C;
	parallel_for(planes, plane_threads(planes, (size_t)s->P * s->Q * s->k * s->k),
	             avg_b, &j);
}

// ---- fast.ai AdaptiveConcatPool2d (fastai/layers.py: cat([mp(x), ap(x)], 1))
// x: (N, C, HW) -> y: (N, 2C); argmax: (N, C)

void concat_pool_forward(int N, int C, int HW, const float *x, float *y,
                         int32_t *argmax)
{
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++) {
			const float *xp = x + ((size_t)n * C + c) * HW;
			float m = xp[0];
			int32_t mi = 0;
			double sum = 0.0;
			for (int i = 0; i < HW; i++) {
				if (xp[i] > m || (isnan(xp[i]) && !isnan(m))) {
					m = xp[i];
					mi = i;
				}
				sum += xp[i];
			}
			y[(size_t)n * 2 * C + c] = m;
			y[(size_t)n * 2 * C + C + c] = (float)(sum / HW);
			if (argmax)
				argmax[(size_t)n * C + c] = mi;
		}
}

// dy: (N, 2C) -> dx: (N, C, HW)
void concat_pool_backward(int N, int C, int HW, const int32_t *argmax,
                          const float *dy, float *dx)
{
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++) {
			float *dp = dx + ((size_t)n * C + c) * HW;
			float g = dy[(size_t)n * 2 * C + C + c] / (float)HW;
			for (int i = 0; i < HW; i++)
				dp[i] = g;
			int32_t a = argmax[(size_t)n * C + c];
			if (a >= 0 && a < HW)
				dp[a] += dy[(size_t)n * 2 * C + c];
		}
}

// x: (N, C, HW) -> y: (N, C)
void global_avgpool_forward(int N, int C, int HW, const float *x, float *y)
{
	for (size_t i = 0; i < (size_t)N * C; i++) {
		const float *xp = x + i * HW;
		double sum = 0.0;
		for (int k = 0; k < HW; k++)
			sum += xp[k];
		y[i] = (float)(sum / HW);
	}
}

void global_avgpool_backward(int N, int C, int HW, const float *dy, float *dx)
{
	for (size_t i = 0; i < (size_t)N * C; i++) {
		float g = dy[i] / (float)HW;
		for (int k = 0; k < HW; k++)
			dx[i * HW + k] = g;
	}
}
