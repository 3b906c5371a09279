// A training batch norm, the ReLU or leaky ReLU that alone reads it and the
// 2x2 stride-2 max pool that alone reads that, as one pass forward and one
// backward (Tiny Darknet's conv -> bn -> leaky -> maxpool layers).  Unfused,
// the activation's full-size maps are written, read by the pool, and in the
// backward the pool writes a full-size gradient (three zeros in four) that
// the batch norm reads twice.  Fused, the forward applies the batch norm
// and the activation to one plane at a time in a buffer that stays in
// cache and pools it from there; the backward sums over the pooled
// positions alone (the others' gradient is zero) and writes dx once.  The
// activation's output at each argmax is the pool's output there, so the
// activation's mask needs nothing else.
//   x, dx: (N, C, H, W) the batch norm's input and its gradient
//   y, argmax, dy: (N, C, P, Q), the pool's (PoolShape s: k 2, stride 2,
//   pad 0); gamma, beta, running_*, save_*, dgamma, dbeta: (C)
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "ops.h"
#include "ops_internal.h"
#include "libcommon/util/threads.h"
#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
#endif

// act's value of v: relu_forward's, leaky_relu_forward's (slope), or v
static float act_of(int act, float slope, float v)
{
	if (act == CONV_ACT_RELU)
		return v > 0.0f ? v : 0.0f;
	if (act == CONV_ACT_LEAKY)
		return v > 0.0f ? v : v * slope;
	return v;
}

// ---- reference ------------------------------------------------------------
// The three reference ops one after the other, through full-size buffers.

void batchnorm_act_maxpool2_forward_train_ref(const PoolShape *s, const float *x,
        const float *gamma, const float *beta, float *running_mean,
        float *running_var, float momentum, float eps, float *save_mean,
        float *save_invstd, int act, float slope, float *y, int32_t *argmax)
{
	const int HW = s->H * s->W;
	const size_t n = (size_t)s->N * s->C * HW;
	float *z = xmalloc_array(n ? n : 1, sizeof(float));
	batchnorm_forward_train_ref(s->N, s->C, HW, x, gamma, beta, running_mean,
	                            running_var, momentum, eps, save_mean, save_invstd, z);
	for (size_t i = 0; i < n; i++)
		z[i] = act_of(act, slope, z[i]);
	maxpool2d_forward_ref(s, z, y, argmax);
	free(z);
}

// maxpool2d_backward_ref into a full-size gradient, then
// batchnorm_backward_train_act_ref with the activation's output taken as
// the pool's at each argmax (elsewhere the gradient is zero, whatever the
// mask).
void batchnorm_act_maxpool2_backward_train_ref(const PoolShape *s, const float *x,
        const float *gamma, const float *save_mean, const float *save_invstd,
        const float *y, const int32_t *argmax, float slope, const float *dy,
        float *dx, float *dgamma, float *dbeta)
{
	const int HW = s->H * s->W;
	const size_t n = (size_t)s->N * s->C * HW, np = (size_t)s->N * s->C * s->P * s->Q;
	float *g = xmalloc_array(n ? n : 1, sizeof(float));
	float *a = xcalloc(n ? n : 1, sizeof(float));
	maxpool2d_backward_ref(s, argmax, dy, g);
	for (size_t o = 0; o < np; o++) {
		size_t plane = o / ((size_t)s->P * s->Q);
		if (argmax[o] >= 0 && argmax[o] < HW)
			a[plane * HW + (size_t)argmax[o]] = y[o];
	}
	batchnorm_backward_train_act_ref(s->N, s->C, HW, x, gamma, save_mean,
	                                 save_invstd, a, slope, g, dx, dgamma, dbeta);
	free(a);
	free(g);
}

// ---- fast path ------------------------------------------------------------

typedef struct {
	const PoolShape *s;
	const float *x, *gamma, *beta, *smean_in, *sinvstd_in, *y_in, *dy;
	const int32_t *argmax_in;
	float *rmean, *rvar, *smean, *sinvstd, *y, *dx, *dgamma, *dbeta;
	int32_t *argmax;
	float momentum, eps, slope;
	int act;
	OpsScratch *scratch;
} BapJob;

// Per channel: batchnorm_forward_train's statistics, then per image the
// batch norm and activation into a plane buffer (in cache), pooled from
// there: the values of batchnorm_forward_train_act then maxpool2d_forward,
// bit for bit.
static void fwd_slice(void *ctx, size_t c0, size_t c1, int thread)
{
	BapJob *j = ctx;
	const PoolShape *s = j->s;
	const int C = s->C, HW = s->H * s->W, PQ = s->P * s->Q;
	float *z = ops_scratch(j->scratch, thread, (size_t)HW);
	for (size_t c = c0; c < c1; c++) {
		float scale, shift;
		bn_train_channel(s->N, C, HW, j->x, (int)c, j->gamma, j->beta, j->rmean,
		                 j->rvar, j->momentum, j->eps, j->smean, j->sinvstd,
		                 &scale, &shift);
		for (int n = 0; n < s->N; n++) {
			size_t pl = (size_t)n * C + c;
			bn_apply_row(j->x + pl * HW, z, HW, scale, shift, j->act, j->slope, 0);
			maxpool2d_forward_plane(s, z, j->y + pl * PQ,
			                        j->argmax ? j->argmax + pl * PQ : NULL);
		}
	}
}

void batchnorm_act_maxpool2_forward_train(const PoolShape *s, const float *x,
        const float *gamma, const float *beta, float *running_mean,
        float *running_var, float momentum, float eps, float *save_mean,
        float *save_invstd, int act, float slope, float *y, int32_t *argmax)
{
	if ((size_t)s->N * s->H * s->W == 0)
		return;   // as batchnorm_forward_train: no batch, nothing moves
	BapJob j = { .s = s, .x = x, .gamma = gamma, .beta = beta,
	             .rmean = running_mean, .rvar = running_var, .smean = save_mean,
	             .sinvstd = save_invstd, .y = y, .argmax = argmax,
	             .momentum = momentum, .eps = eps, .slope = slope, .act = act };
	j.scratch = ops_scratch_acquire();
	parallel_for((size_t)s->C, ops_threads_for((size_t)s->C, 4.0 * s->N * s->H * s->W),
	             fwd_slice, &j);
	ops_scratch_release(j.scratch);
}

// dy through the activation where the pool's output is v: as
// batchnorm_backward_train_act's mask
static inline float masked(float g, float v, float slope)
{
	return v > 0.0f ? g : slope == 0.0f ? 0.0f : g * slope;
}

#if defined(__AVX512F__) && defined(__AVX512DQ__)
// Even maps, 16 windows (pooled columns q0 .. q0+15, nq of them) of pooled
// row p at a time: the vector form of bwd_slice's loops.  An argmax cell
// is one of its window's four: rel = argmax - the window's top-left cell
// is 0, 1, W or W + 1.
typedef struct {
	__m512 gm;      // the gradient through the activation, per window
	__m512i rel;    // argmax relative to the window's top-left cell
} Win16;

static inline Win16 win16(const float *gp, const float *vp, const int32_t *ap,
                          __mmask16 m, int top, float slope)
{
	static const int32_t two[16] = { 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22,
	                                 24, 26, 28, 30 };
	Win16 w;
	__m512 g = _mm512_maskz_loadu_ps(m, gp), v = _mm512_maskz_loadu_ps(m, vp);
	__mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
	w.gm = slope == 0.0f ? _mm512_maskz_mov_ps(pos, g)
	     : _mm512_mask_blend_ps(pos, _mm512_mul_ps(g, _mm512_set1_ps(slope)), g);
	w.rel = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, ap),
	                         _mm512_add_epi32(_mm512_set1_epi32(top),
	                                          _mm512_loadu_si512(two)));
	return w;
}

// The 32 cells of row r (0, 1) under the 16 windows: x at the masks
static inline void row32(const float *xr, int nq, __m512 *lo, __m512 *hi)
{
	int n = 2 * nq;
	*lo = _mm512_maskz_loadu_ps((__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1), xr);
	*hi = _mm512_maskz_loadu_ps((__mmask16)(n > 16 ? (1u << (n - 16)) - 1 : 0), xr + 16);
}

// Pass 1 over pooled row p: s (sum dy), t (sum dy * (x - mean)), in double
static void sums_row(const float *xp, const float *gp, const float *vp,
                     const int32_t *ap, int p, int W, int Q, double mean, float slope,
                     __m512d *s, __m512d *t)
{
	const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20,
	                                       22, 24, 26, 28, 30);
	const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
	const __m512i one = _mm512_set1_epi32(1), wv = _mm512_set1_epi32(W);
	const __m512d md = _mm512_set1_pd(mean);
	const float *r0 = xp + (size_t)2 * p * W, *r1 = r0 + W;
	for (int q0 = 0; q0 < Q; q0 += 16) {
		int nq = Q - q0 < 16 ? Q - q0 : 16;
		__mmask16 m = (__mmask16)((1u << nq) - 1);
		Win16 w = win16(gp + q0, vp + q0, ap + q0, m, 2 * p * W + 2 * q0, slope);
		__m512 a0, b0, a1, b1;
		row32(r0 + 2 * q0, nq, &a0, &b0);
		row32(r1 + 2 * q0, nq, &a1, &b1);
		__m512 xa = _mm512_permutex2var_ps(a1, odd, b1);   // rel W + 1
		xa = _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(w.rel, wv), xa,
		                          _mm512_permutex2var_ps(a1, even, b1));
		xa = _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(w.rel, one), xa,
		                          _mm512_permutex2var_ps(a0, odd, b0));
		xa = _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(w.rel, _mm512_setzero_si512()),
		                          xa, _mm512_permutex2var_ps(a0, even, b0));
		__m512d g0 = _mm512_cvtps_pd(_mm512_castps512_ps256(w.gm));
		__m512d g1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(w.gm, 1));
		__m512d x0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(xa)), md);
		__m512d x1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(xa, 1)), md);
		s[0] = _mm512_add_pd(s[0], g0);
		s[1] = _mm512_add_pd(s[1], g1);
		t[0] = _mm512_add_pd(t[0], _mm512_mul_pd(g0, x0));
		t[1] = _mm512_add_pd(t[1], _mm512_mul_pd(g1, x1));
	}
}

// Pass 2 over pooled row p: dx of its two rows, each cell k*((dy - a) - t)
// with dy the window's gradient at its argmax cell and 0 elsewhere.
// stream: whole aligned vectors stored past the caches (dx, of a whole
// batch, is read again only by the convolution's backward, from memory;
// ordinary stores first read each line in: 205 MB at Tiny Darknet's first
// layer at batch 64).
static void dx_row(const float *xp, const float *gp, const float *vp,
                   const int32_t *ap, float *dp, int p, int W, int Q, float k,
                   float a, float mf, float bcoef, float slope, int stream)
{
	static const int32_t dup[2][16] = {
		{ 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7 },
		{ 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15 },
	};
	static const int32_t alt[16] = { 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1 };
	const __m512 kv = _mm512_set1_ps(k), av = _mm512_set1_ps(a);
	const __m512 mv = _mm512_set1_ps(mf), bv = _mm512_set1_ps(bcoef);
	for (int q0 = 0; q0 < Q; q0 += 16) {
		int nq = Q - q0 < 16 ? Q - q0 : 16;
		Win16 w = win16(gp + q0, vp + q0, ap + q0, (__mmask16)((1u << nq) - 1),
		                2 * p * W + 2 * q0, slope);
		for (int r = 0; r < 2; r++) {
			const size_t off = (size_t)(2 * p + r) * W + 2 * q0;
			const __m512i want = _mm512_add_epi32(_mm512_loadu_si512(alt),
			                                      _mm512_set1_epi32(r * W));
			for (int h = 0; h < 2; h++) {
				int n = 2 * nq - 16 * h;
				if (n <= 0)
					break;
				__mmask16 m = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
				const __m512i ix = _mm512_loadu_si512(dup[h]);
				__mmask16 at = _mm512_cmpeq_epi32_mask(_mm512_permutexvar_epi32(ix, w.rel),
				                                       want);
				__m512 g = _mm512_maskz_mov_ps(at, _mm512_permutexvar_ps(ix, w.gm));
				__m512 x = _mm512_maskz_loadu_ps(m, xp + off + 16 * h);
				__m512 t = _mm512_mul_ps(_mm512_sub_ps(x, mv), bv);
				__m512 d = _mm512_mul_ps(kv, _mm512_sub_ps(_mm512_sub_ps(g, av), t));
				float *o = dp + off + 16 * h;
				if (stream && m == 0xFFFF && (uintptr_t)o % 64 == 0)
					_mm512_stream_ps(o, d);
				else
					_mm512_mask_storeu_ps(o, m, d);
			}
		}
	}
}
#endif

// Per channel: batchnorm_backward_train_act's sums, over the argmax cells
// only (the others add exact zeros there), in double; then per image dx as
// it writes it where the gradient is zero, and at each argmax cell the
// value with the pooled gradient: its operations, in its order.
static void bwd_slice(void *ctx, size_t c0, size_t c1, int thread)
{
	(void)thread;
	BapJob *j = ctx;
	const PoolShape *s = j->s;
	const int C = s->C, HW = s->H * s->W, PQ = s->P * s->Q;
	const double M = (double)s->N * HW;
	const float sl = j->slope;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
	// even maps: every cell under exactly one window (the vector paths)
	const int even = s->H == 2 * s->P && s->W == 2 * s->Q;
	const int stream = bn_streams(s->N, C, HW);
#endif
	for (size_t c = c0; c < c1; c++) {
		const double mean = j->smean_in[c], invstd = j->sinvstd_in[c];
		double sdy = 0.0, sdyx = 0.0;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
		if (even) {   // the vector form of the loop below
			__m512d sv[2] = { _mm512_setzero_pd(), _mm512_setzero_pd() };
			__m512d tv[2] = { sv[0], sv[1] };
			for (int n = 0; n < s->N; n++) {
				size_t pl = (size_t)n * C + c;
				for (int p = 0; p < s->P; p++)
					sums_row(j->x + pl * HW, j->dy + pl * PQ + (size_t)p * s->Q,
					         j->y_in + pl * PQ + (size_t)p * s->Q,
					         j->argmax_in + pl * PQ + (size_t)p * s->Q, p, s->W,
					         s->Q, mean, sl, sv, tv);
			}
			sdy = _mm512_reduce_add_pd(_mm512_add_pd(sv[0], sv[1]));
			sdyx = _mm512_reduce_add_pd(_mm512_add_pd(tv[0], tv[1]));
		} else
#endif
		for (int n = 0; n < s->N; n++) {
			size_t pl = (size_t)n * C + c;
			const float *xp = j->x + pl * HW, *gp = j->dy + pl * PQ, *vp = j->y_in + pl * PQ;
			const int32_t *ap = j->argmax_in + pl * PQ;
			for (int o = 0; o < PQ; o++) {
				if (ap[o] < 0 || ap[o] >= HW)
					continue;
				float g = masked(gp[o], vp[o], sl);
				sdy += g;
				sdyx += g * (xp[ap[o]] - mean);
			}
		}
		sdyx *= invstd;   // = sum dy*xhat
		if (j->dgamma)
			j->dgamma[c] += (float)sdyx;
		if (j->dbeta)
			j->dbeta[c] += (float)sdy;
		if (!j->dx)
			continue;
		const float k = (float)((j->gamma ? j->gamma[c] : 1.0f) * invstd);
		const float a = (float)(sdy / M), bcoef = (float)(sdyx / M * invstd);
		const float mf = (float)mean;
		for (int n = 0; n < s->N; n++) {
			size_t pl = (size_t)n * C + c;
			const float *xp = j->x + pl * HW, *gp = j->dy + pl * PQ, *vp = j->y_in + pl * PQ;
			const int32_t *ap = j->argmax_in + pl * PQ;
			float *dp = j->dx + pl * HW;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
			if (even) {
				for (int p = 0; p < s->P; p++)
					dx_row(xp, gp + (size_t)p * s->Q, vp + (size_t)p * s->Q,
					       ap + (size_t)p * s->Q, dp, p, s->W, s->Q, k, a, mf,
					       bcoef, sl, stream);
				continue;
			}
#endif
			int i = 0;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
			const __m512 kv = _mm512_set1_ps(k), na = _mm512_sub_ps(_mm512_setzero_ps(),
			                                                         _mm512_set1_ps(a));
			const __m512 mv = _mm512_set1_ps(mf), bv = _mm512_set1_ps(bcoef);
			for (; i + 16 <= HW; i += 16) {
				__m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xp + i), mv), bv);
				_mm512_storeu_ps(dp + i, _mm512_mul_ps(kv, _mm512_sub_ps(na, t)));
			}
#endif
			for (; i < HW; i++)
				dp[i] = k * (0.0f - a - (xp[i] - mf) * bcoef);
			for (int o = 0; o < PQ; o++) {
				int at = ap[o];
				if (at < 0 || at >= HW)
					continue;
				dp[at] = k * (masked(gp[o], vp[o], sl) - a - (xp[at] - mf) * bcoef);
			}
		}
	}
#if defined(__AVX512F__) && defined(__AVX512DQ__)
	if (stream)
		ops_stream_fence();   // the streamed stores, before the slice is done
#endif
}

void batchnorm_act_maxpool2_backward_train(const PoolShape *s, const float *x,
        const float *gamma, const float *save_mean, const float *save_invstd,
        const float *y, const int32_t *argmax, float slope, const float *dy,
        float *dx, float *dgamma, float *dbeta)
{
	if ((size_t)s->N * s->H * s->W == 0)
		return;
	BapJob j = { .s = s, .x = x, .gamma = gamma, .smean_in = save_mean,
	             .sinvstd_in = save_invstd, .y_in = y, .argmax_in = argmax,
	             .slope = slope, .dy = dy, .dx = dx, .dgamma = dgamma, .dbeta = dbeta };
	parallel_for((size_t)s->C, ops_threads_for((size_t)s->C, 4.0 * s->N * s->H * s->W),
	             bwd_slice, &j);
}
