// Batch norm of (N, C) rows, HW = 1: BatchNorm1d, the two of fast.ai's head.
// batchnorm.c's channel loop walks one channel down its N values, C floats
// apart, and calls its row kernel once a value: a quarter of a millisecond
// a step for the head's (64, 512), most of what the head costs.  Here a
// block of channels runs along each row instead.  Every channel's sums are
// still taken in n order, in double, about the same shift, and finished by
// the same code (bn_finish_channel), and every float expression is the
// channel path's, so the bits are too.
//   x, y, dy, dx, act: (N, C); gamma, beta, stats: (C)
#include <math.h>
#include <stddef.h>
#include "ops.h"
#include "ops_internal.h"
#include "libcommon/util/threads.h"
#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
#define BN1D_AVX512 1
#endif

enum { CB = 64 };   // channels a task: its sums stay in L1

typedef struct {
	int N, C, train, act;
	const float *x, *gamma, *beta, *mean, *var, *dy, *a;
	float *rmean, *rvar, *smean, *sinvstd, *y, *dx, *dgamma, *dbeta;
	float momentum, eps, slope;
} Bn1dJob;

static inline float act_apply(float v, int act, float slope)
{
	if (act == CONV_ACT_RELU)
		return v > 0.0f ? v : 0.0f;
	if (act == CONV_ACT_LEAKY)
		return v > 0.0f ? v : v * slope;
	return v;
}

static void fwd_block(void *ctx, size_t b0, size_t b1, int thread)
{
	(void)thread;
	const Bn1dJob *j = ctx;
	const int N = j->N, C = j->C;
	for (size_t b = b0; b < b1; b++) {
		const int c0 = (int)b * CB, nc = C - c0 < CB ? C - c0 : CB;
		float scale[CB], shift[CB];
		if (j->train) {
			double k[CB], s1[CB], s2[CB];
			for (int c = 0; c < nc; c++) {
				k[c] = j->x[c0 + c];   // the shift: the channel's first value
				s1[c] = s2[c] = 0.0;
			}
			for (int n = 0; n < N; n++) {
				const float *xp = j->x + (size_t)n * C + c0;
				int c = 0;
#ifdef BN1D_AVX512
				// a channel a lane: each lane's sums the scalar line's
				for (; c + 8 <= nc; c += 8) {
					__m512d d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(xp + c)),
					                          _mm512_loadu_pd(k + c));
					_mm512_storeu_pd(s1 + c, _mm512_add_pd(_mm512_loadu_pd(s1 + c), d));
					_mm512_storeu_pd(s2 + c, _mm512_add_pd(_mm512_loadu_pd(s2 + c),
					                                       _mm512_mul_pd(d, d)));
				}
#endif
				for (; c < nc; c++) {
					double d = xp[c] - k[c];
					s1[c] += d;
					s2[c] += d * d;
				}
			}
			for (int c = 0; c < nc; c++)
				bn_finish_channel(c0 + c, (double)N, k[c], s1[c], s2[c], j->gamma,
				                  j->beta, j->rmean, j->rvar, j->momentum, j->eps,
				                  j->smean, j->sinvstd, &scale[c], &shift[c]);
		} else {
			for (int c = 0; c < nc; c++) {
				const int cc = c0 + c;
				float g = j->gamma ? j->gamma[cc] : 1.0f;
				float be = j->beta ? j->beta[cc] : 0.0f;
				double invstd = 1.0 / sqrt((double)j->var[cc] + j->eps);
				scale[c] = (float)(g * invstd);
				shift[c] = (float)(be - (double)j->mean[cc] * g * invstd);
			}
		}
		for (int n = 0; n < N; n++) {
			const float *xp = j->x + (size_t)n * C + c0;
			float *yp = j->y + (size_t)n * C + c0;
			int c = 0;
#ifdef BN1D_AVX512
			const __m512 sl = _mm512_set1_ps(j->slope);
			for (; c + 16 <= nc; c += 16) {
				__m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(xp + c),
				                                       _mm512_loadu_ps(scale + c)),
				                         _mm512_loadu_ps(shift + c));
				if (j->act != CONV_ACT_NONE) {
					__mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
					// ReLU's zeros are +0, as relu_forward's (v * 0 is -0)
					v = j->act == CONV_ACT_RELU ? _mm512_maskz_mov_ps(pos, v)
					  : _mm512_mask_blend_ps(pos, _mm512_mul_ps(v, sl), v);
				}
				_mm512_storeu_ps(yp + c, v);
			}
#endif
			for (; c < nc; c++) {
				float v = xp[c] * scale[c];
				yp[c] = act_apply(v + shift[c], j->act, j->slope);
			}
		}
	}
}

static int bn1d_threads(int N, int C)
{
	size_t blocks = ((size_t)C + CB - 1) / CB;
	return ops_threads_for(blocks, 8.0 * N * CB);
}

void bn1d_forward(int N, int C, int train, const float *x, const float *gamma,
                  const float *beta, float *running_mean, float *running_var,
                  float momentum, float eps, float *save_mean, float *save_invstd,
                  const float *mean, const float *var, int act, float slope,
                  float *y)
{
	Bn1dJob j = { .N = N, .C = C, .train = train, .act = act, .x = x,
	              .gamma = gamma, .beta = beta, .mean = mean, .var = var,
	              .rmean = running_mean, .rvar = running_var, .smean = save_mean,
	              .sinvstd = save_invstd, .y = y, .momentum = momentum,
	              .eps = eps, .slope = slope };
	parallel_for(((size_t)C + CB - 1) / CB, bn1d_threads(N, C), fwd_block, &j);
}

// dy through the activation after the batch norm, as batchnorm.c's DY
static inline float dy_act(const float *gp, const float *ap, int i, float sl)
{
	return ap ? (ap[i] > 0.0f ? gp[i] : sl == 0.0f ? 0.0f : gp[i] * sl) : gp[i];
}

#ifdef BN1D_AVX512
static inline __m256 dy_act8(const float *gp, const float *ap, float sl)
{
	__m256 g = _mm256_loadu_ps(gp);
	if (!ap)
		return g;
	__mmask8 pos = _mm256_cmp_ps_mask(_mm256_loadu_ps(ap), _mm256_setzero_ps(), _CMP_GT_OQ);
	if (sl == 0.0f)
		return _mm256_maskz_mov_ps(pos, g);
	return _mm256_mask_blend_ps(pos, _mm256_mul_ps(g, _mm256_set1_ps(sl)), g);
}
#endif

static void bwd_block(void *ctx, size_t b0, size_t b1, int thread)
{
	(void)thread;
	const Bn1dJob *j = ctx;
	const int N = j->N, C = j->C;
	const double M = (double)N;
	const float sl = j->slope;
	for (size_t b = b0; b < b1; b++) {
		const int c0 = (int)b * CB, nc = C - c0 < CB ? C - c0 : CB;
		double mean[CB], invstd[CB], sdy[CB], sdyx[CB];
		for (int c = 0; c < nc; c++) {
			mean[c] = j->mean[c0 + c];
			invstd[c] = j->train ? (double)j->var[c0 + c]
			                     : 1.0 / sqrt((double)j->var[c0 + c] + j->eps);
			sdy[c] = sdyx[c] = 0.0;
		}
		for (int n = 0; n < N; n++) {
			const float *xp = j->x + (size_t)n * C + c0;
			const float *gp = j->dy + (size_t)n * C + c0;
			const float *ap = j->a ? j->a + (size_t)n * C + c0 : NULL;
			int c = 0;
#ifdef BN1D_AVX512
			for (; c + 8 <= nc; c += 8) {
				__m256 g = dy_act8(gp + c, ap ? ap + c : NULL, sl);
				__m512d gd = _mm512_cvtps_pd(g);
				__m512d xd = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(xp + c)),
				                           _mm512_loadu_pd(mean + c));
				_mm512_storeu_pd(sdy + c, _mm512_add_pd(_mm512_loadu_pd(sdy + c), gd));
				_mm512_storeu_pd(sdyx + c, _mm512_add_pd(_mm512_loadu_pd(sdyx + c),
				                                         _mm512_mul_pd(gd, xd)));
			}
#endif
			for (; c < nc; c++) {
				float g = dy_act(gp, ap, c, sl);
				sdy[c] += g;
				sdyx[c] += g * (xp[c] - mean[c]);
			}
		}
		float k[CB], a[CB], bc[CB], mf[CB];
		for (int c = 0; c < nc; c++) {
			const int cc = c0 + c;
			sdyx[c] *= invstd[c];   // = sum dy*xhat
			if (j->dgamma)
				j->dgamma[cc] += (float)sdyx[c];
			if (j->dbeta)
				j->dbeta[cc] += (float)sdy[c];
			float g = j->gamma ? j->gamma[cc] : 1.0f;
			k[c] = (float)(g * invstd[c]);
			a[c] = (float)(sdy[c] / M);
			bc[c] = (float)(sdyx[c] / M * invstd[c]);
			mf[c] = (float)mean[c];
		}
		if (!j->dx)
			continue;
		for (int n = 0; n < N; n++) {
			const float *xp = j->x + (size_t)n * C + c0;
			const float *gp = j->dy + (size_t)n * C + c0;
			const float *ap = j->a ? j->a + (size_t)n * C + c0 : NULL;
			float *dp = j->dx + (size_t)n * C + c0;
			if (j->train) {
				int c = 0;
#ifdef BN1D_AVX512
				// the scalar line's float operations, in its order
				for (; c + 8 <= nc; c += 8) {
					__m256 g = dy_act8(gp + c, ap ? ap + c : NULL, sl);
					__m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xp + c),
					                                       _mm256_loadu_ps(mf + c)),
					                         _mm256_loadu_ps(bc + c));
					_mm256_storeu_ps(dp + c, _mm256_mul_ps(_mm256_loadu_ps(k + c),
					        _mm256_sub_ps(_mm256_sub_ps(g, _mm256_loadu_ps(a + c)), t)));
				}
#endif
				for (; c < nc; c++)
					dp[c] = k[c] * (dy_act(gp, ap, c, sl) - a[c] - (xp[c] - mf[c]) * bc[c]);
			} else
				for (int c = 0; c < nc; c++)
					dp[c] = k[c] * gp[c];
		}
	}
}

void bn1d_backward(int N, int C, int train, const float *x, const float *gamma,
                   const float *mean, const float *var, float eps,
                   const float *act, float slope, const float *dy, float *dx,
                   float *dgamma, float *dbeta)
{
	Bn1dJob j = { .N = N, .C = C, .train = train, .x = x, .gamma = gamma,
	              .mean = mean, .var = var, .eps = eps, .a = act, .slope = slope,
	              .dy = dy, .dx = dx, .dgamma = dgamma, .dbeta = dbeta };
	parallel_for(((size_t)C + CB - 1) / CB, bn1d_threads(N, C), bwd_block, &j);
}
