// Batch normalisation, as PyTorch's BatchNorm1d/2d (torch/nn/functional.py
// batch_norm; aten/src/ATen/native/Normalization.cpp): training mode
// normalises with the batch mean and the biased variance and moves the
// running statistics by `momentum` using the UNBIASED variance; eval mode
// uses the running statistics.  Channels are independent, so the fast path
// shares channels among threads; sums run in double so that large N*HW
// keep fp32 accuracy.
//   x, y, dy, dx: (N, C, HW); gamma, beta, stats: (C); gamma/beta may be
//   NULL (= 1 / 0, affine=False).
#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include "libcommon/util/alloc.h"
#include "ops.h"
#include "ops_internal.h"
#include "libcommon/util/threads.h"
#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
#endif

// ---- reference ------------------------------------------------------------
// Plain loops over the definitions, channel by channel, with every sum and
// every intermediate value in double (rounded to float once, when stored):
// more exact than the fast path, which scales in float.

#define XI(p, n, c, i) (p)[((size_t)(n) * C + (c)) * HW + (i)]

void batchnorm_forward_train_ref(int N, int C, int HW, const float *x,
                                 const float *gamma, const float *beta,
                                 float *running_mean, float *running_var,
                                 float momentum, float eps,
                                 float *save_mean, float *save_invstd, float *y)
{
	const double M = (double)N * HW;   // values per channel
	if (M == 0)
		return;                    // no batch: no statistics, nothing moves
	for (int c = 0; c < C; c++) {
		double sum = 0.0;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++)
				sum += XI(x, n, c, i);
		double mean = sum / M, ss = 0.0;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++) {
				double d = XI(x, n, c, i) - mean;
				ss += d * d;
			}
		double var = ss / M;                          // biased: normalises
		double uvar = M > 1 ? ss / (M - 1) : var;     // unbiased: running_var
		double invstd = 1.0 / sqrt(var + eps);
		double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++)
				XI(y, n, c, i) = (float)((XI(x, n, c, i) - mean) * invstd * g + b);
		if (running_mean)
			running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mean);
		if (running_var)
			running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * uvar);
		if (save_mean)
			save_mean[c] = (float)mean;
		if (save_invstd)
			save_invstd[c] = (float)invstd;
	}
}

void batchnorm_forward_eval_ref(int N, int C, int HW, const float *x,
                                const float *gamma, const float *beta,
                                const float *mean, const float *var, float eps,
                                float *y)
{
	for (int c = 0; c < C; c++) {
		double sd = sqrt((double)var[c] + eps);
		double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++)
				XI(y, n, c, i) = (float)((XI(x, n, c, i) - (double)mean[c]) / sd * g + b);
	}
}

// With xhat = (x - mean) * invstd, M = N*HW: dbeta += sum dy, dgamma +=
// sum dy*xhat; dx = gamma*invstd * (dy - sum(dy)/M - xhat * sum(dy*xhat)/M)
// in training (the batch statistics depend on x), gamma*invstd * dy in eval.
static void bn_backward_ref(int N, int C, int HW, int train, const float *x,
                            const float *gamma, const float *mean,
                            const float *invstd_of, const float *var, float eps,
                            const float *dy, float *dx, float *dgamma,
                            float *dbeta)
{
	const double M = (double)N * HW;
	for (int c = 0; c < C; c++) {
		double mu = mean[c];
		double invstd = train ? (double)invstd_of[c] : 1.0 / sqrt((double)var[c] + eps);
		double sdy = 0.0, sdyxhat = 0.0;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++) {
				double g = XI(dy, n, c, i);
				sdy += g;
				sdyxhat += g * ((XI(x, n, c, i) - mu) * invstd);
			}
		if (dgamma)
			dgamma[c] += (float)sdyxhat;
		if (dbeta)
			dbeta[c] += (float)sdy;
		if (!dx)
			continue;
		double k = (gamma ? gamma[c] : 1.0) * invstd;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++) {
				double g = XI(dy, n, c, i);
				if (train) {
					double xhat = (XI(x, n, c, i) - mu) * invstd;
					XI(dx, n, c, i) = (float)(k * (g - sdy / M - xhat * sdyxhat / M));
				} else {
					XI(dx, n, c, i) = (float)(k * g);
				}
			}
	}
}

void batchnorm_backward_train_ref(int N, int C, int HW, const float *x,
                                  const float *gamma, const float *save_mean,
                                  const float *save_invstd, const float *dy,
                                  float *dx, float *dgamma, float *dbeta)
{
	if (N * (size_t)HW == 0)
		return;   // as the forward: no batch, no gradient
	bn_backward_ref(N, C, HW, 1, x, gamma, save_mean, save_invstd, NULL, 0.0f,
	                dy, dx, dgamma, dbeta);
}

void batchnorm_backward_eval_ref(int N, int C, int HW, const float *x,
                                 const float *gamma, const float *mean,
                                 const float *var, float eps, const float *dy,
                                 float *dx, float *dgamma, float *dbeta)
{
	bn_backward_ref(N, C, HW, 0, x, gamma, mean, NULL, var, eps, dy, dx,
	                dgamma, dbeta);
}

// The activation's backward first (dy' = act > 0 ? dy : slope*dy, 0 for
// slope 0), then batchnorm_backward_train_ref on dy'.
void batchnorm_backward_train_act_ref(int N, int C, int HW, const float *x,
                                      const float *gamma,
                                      const float *save_mean,
                                      const float *save_invstd,
                                      const float *act, float slope,
                                      const float *dy, float *dx,
                                      float *dgamma, float *dbeta)
{
	size_t n = (size_t)N * C * HW;
	float *g = xmalloc_array(n ? n : 1, sizeof(float));
	for (size_t i = 0; i < n; i++)
		g[i] = act[i] > 0.0f ? dy[i] : slope == 0.0f ? 0.0f : dy[i] * slope;
	batchnorm_backward_train_ref(N, C, HW, x, gamma, save_mean, save_invstd, g,
	                             dx, dgamma, dbeta);
	free(g);
}

#undef XI

// ---- fast path ------------------------------------------------------------

typedef struct {
	int N, C, HW;
	const float *x, *gamma, *beta, *dy, *mean, *var;
	float *rmean, *rvar, *smean, *sinvstd, *y, *dx, *dgamma, *dbeta;
	float momentum, eps;
	const float *act;   // backward: the activation's mask source, or NULL
	float slope;
	int fact;           // forward: CONV_ACT_* applied to the output
	float fslope;
} BnJob;

#define AT(p, n, c) ((p) + ((size_t)(n) * j->C + (c)) * j->HW)

// (ops_internal.h) 16 at a time where the build has AVX-512 (the plain
// loop stayed scalar: x and y may alias).
void bn_apply_row(const float *x, float *y, int n, float scale, float shift,
                  int act, float slope, int stream)
{
	int i = 0;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
	const __m512 sc = _mm512_set1_ps(scale), sh = _mm512_set1_ps(shift);
	const __m512 sl = _mm512_set1_ps(act == CONV_ACT_RELU ? 0.0f : slope);
	const int nt = stream && (uintptr_t)y % 64 == 0;
	for (; i + 16 <= n; i += 16) {
		__m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), sc), sh);
		if (act != CONV_ACT_NONE) {
			__mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
			v = act == CONV_ACT_RELU ? _mm512_maskz_mov_ps(pos, v)
			  : _mm512_mask_blend_ps(pos, _mm512_mul_ps(v, sl), v);
		}
		if (nt)
			_mm512_stream_ps(y + i, v);
		else
			_mm512_storeu_ps(y + i, v);
	}
#else
	(void)stream;
#endif
	for (; i < n; i++) {
		float v = x[i] * scale + shift;
		if (act == CONV_ACT_RELU)
			v = v > 0.0f ? v : 0.0f;
		else if (act == CONV_ACT_LEAKY)
			v = v > 0.0f ? v : v * slope;
		y[i] = v;
	}
}

void bn_train_channel(int N, int C, int HW, const float *x, int c,
                      const float *gamma, const float *beta, float *running_mean,
                      float *running_var, float momentum, float eps,
                      float *save_mean, float *save_invstd, float *scale,
                      float *shift)
{
	const double M = (double)N * HW;
	const size_t plane = (size_t)C * HW;
	// One pass for both sums, in double, about a shift k (the channel's
	// first value): sum (x - k) and sum (x - k)^2, then
	// ss = sum (x - mean)^2 = S2 - S1^2/M.  A channel of the early
	// layers is many megabytes: a second pass over it read it from
	// memory again.  With k inside the data's range and 53 bits, the
	// cancellation costs nothing a float result can show.
	const double k = x[(size_t)c * HW];
	double s1 = 0.0, s2 = 0.0;
	for (int n = 0; n < N; n++) {
		const float *xp = x + n * plane + (size_t)c * HW;
		int i = 0;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
		// 8 lanes apart (the scalar conversions ran at a value per
		// cycle: a tenth of Tiny Darknet's training)
		__m512d a0 = _mm512_setzero_pd(), a1 = a0, q0 = a0, q1 = a0;
		const __m512d kd = _mm512_set1_pd(k);
		for (; i + 16 <= HW; i += 16) {
			__m512 v = _mm512_loadu_ps(xp + i);
			__m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), kd);
			__m512d d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)), kd);
			a0 = _mm512_add_pd(a0, d0);
			a1 = _mm512_add_pd(a1, d1);
			q0 = _mm512_add_pd(q0, _mm512_mul_pd(d0, d0));
			q1 = _mm512_add_pd(q1, _mm512_mul_pd(d1, d1));
		}
		s1 += _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
		s2 += _mm512_reduce_add_pd(_mm512_add_pd(q0, q1));
#endif
		for (; i < HW; i++) {
			double d = xp[i] - k;
			s1 += d;
			s2 += d * d;
		}
	}
	bn_finish_channel(c, M, k, s1, s2, gamma, beta, running_mean, running_var,
	                  momentum, eps, save_mean, save_invstd, scale, shift);
}

static void train_fwd(void *ctx, size_t c0, size_t c1, int thread)
{
	(void)thread;
	BnJob *j = ctx;
	const int stream = bn_streams(j->N, j->C, j->HW);
	for (size_t c = c0; c < c1; c++) {
		float scale, shift;
		bn_train_channel(j->N, j->C, j->HW, j->x, (int)c, j->gamma, j->beta,
		                 j->rmean, j->rvar, j->momentum, j->eps, j->smean,
		                 j->sinvstd, &scale, &shift);
		for (int n = 0; n < j->N; n++)
			bn_apply_row(AT(j->x, n, c), AT(j->y, n, c), j->HW, scale, shift,
			             j->fact, j->fslope, stream);
	}
	if (stream)
		ops_stream_fence();
}

static int bn_threads(int N, int C, int HW)
{
	return ops_threads_for((size_t)C, 4.0 * N * HW);
}

void batchnorm_forward_train(int N, int C, int HW, const float *x,
                             const float *gamma, const float *beta,
                             float *running_mean, float *running_var,
                             float momentum, float eps,
                             float *save_mean, float *save_invstd, float *y)
{
	batchnorm_forward_train_act(N, C, HW, x, gamma, beta, running_mean, running_var,
	                            momentum, eps, save_mean, save_invstd,
	                            CONV_ACT_NONE, 0.0f, y);
}

void batchnorm_forward_train_act(int N, int C, int HW, const float *x,
                                 const float *gamma, const float *beta,
                                 float *running_mean, float *running_var,
                                 float momentum, float eps, float *save_mean,
                                 float *save_invstd, int act, float slope, float *y)
{
	if (N * (size_t)HW == 0)
		return;
	if (HW == 1) {   // rows of channels (batchnorm1d.c)
		bn1d_forward(N, C, 1, x, gamma, beta, running_mean, running_var, momentum,
		             eps, save_mean, save_invstd, NULL, NULL, act, slope, y);
		return;
	}
	BnJob j = { .N = N, .C = C, .HW = HW, .x = x, .gamma = gamma, .beta = beta,
	            .rmean = running_mean, .rvar = running_var, .momentum = momentum,
	            .eps = eps, .smean = save_mean, .sinvstd = save_invstd, .y = y,
	            .fact = act, .fslope = slope };
	parallel_for((size_t)C, bn_threads(N, C, HW), train_fwd, &j);
}

static void eval_fwd(void *ctx, size_t c0, size_t c1, int thread)
{
	(void)thread;
	BnJob *j = ctx;
	for (size_t c = c0; c < c1; c++) {
		float g = j->gamma ? j->gamma[c] : 1.0f, b = j->beta ? j->beta[c] : 0.0f;
		double invstd = 1.0 / sqrt((double)j->var[c] + j->eps);
		float scale = (float)(g * invstd);
		float shift = (float)(b - (double)j->mean[c] * g * invstd);
		for (int n = 0; n < j->N; n++)
			bn_apply_row(AT(j->x, n, c), AT(j->y, n, c), j->HW, scale, shift,
			             CONV_ACT_NONE, 0.0f, 0);
	}
}

void batchnorm_forward_eval(int N, int C, int HW, const float *x,
                            const float *gamma, const float *beta,
                            const float *mean, const float *var, float eps,
                            float *y)
{
	if (HW == 1) {
		bn1d_forward(N, C, 0, x, gamma, beta, NULL, NULL, 0.0f, eps, NULL, NULL,
		             mean, var, CONV_ACT_NONE, 0.0f, y);
		return;
	}
	BnJob j = { .N = N, .C = C, .HW = HW, .x = x, .gamma = gamma, .beta = beta,
	            .mean = mean, .var = var, .eps = eps, .y = y };
	parallel_for((size_t)C, bn_threads(N, C, HW), eval_fwd, &j);
}

#if defined(__AVX512F__) && defined(__AVX512DQ__)
// DY of 16 values: a > 0 ? g : (slope 0 ? 0 : g * slope)
static inline __m512 act_mask16(__m512 g, __m512 a, float slope)
{
	__mmask16 pos = _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GT_OQ);
	if (slope == 0.0f)
		return _mm512_maskz_mov_ps(pos, g);
	return _mm512_mask_blend_ps(pos, _mm512_mul_ps(g, _mm512_set1_ps(slope)), g);
}
#endif

// With xhat = (x - mean) * invstd and M = N*HW:
//   dbeta = sum dy, dgamma = sum dy*xhat,
//   dx = gamma*invstd * (dy - dbeta/M - xhat*dgamma/M)   (training)
//   dx = gamma*invstd * dy                                (eval)
static void bwd(void *ctx, size_t c0, size_t c1, int thread, int train)
{
	(void)thread;
	BnJob *j = ctx;
	const int stream = bn_streams(j->N, j->C, j->HW);
	const double M = (double)j->N * j->HW;
	for (size_t c = c0; c < c1; c++) {
		double mean = j->mean[c];
		double invstd = train ? (double)j->var[c]  // var holds save_invstd
		                      : 1.0 / sqrt((double)j->var[c] + j->eps);
		double sdy = 0.0, sdyx = 0.0;
		const float sl = j->slope;
		// dy through the activation (ReLU / leaky after the batch norm),
		// where the fused backward was asked for: the same value as the
		// activation's own backward, without its pass over memory
#define DY(gp, ap, i) (ap ? (ap[i] > 0.0f ? gp[i] : sl == 0.0f ? 0.0f : gp[i] * sl) : gp[i])
		for (int n = 0; n < j->N; n++) {
			const float *xp = AT(j->x, n, c), *gp = AT(j->dy, n, c);
			const float *ap = j->act ? AT(j->act, n, c) : NULL;
			int i = 0;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
			// the same double sums, 8 lanes apart (the scalar loop's
			// conversions ran at a value per cycle)
			__m512d s0 = _mm512_setzero_pd(), s1 = s0, t0 = s0, t1 = s0;
			const __m512d md = _mm512_set1_pd(mean);
			for (; i + 16 <= j->HW; i += 16) {
				__m512 g = _mm512_loadu_ps(gp + i);
				if (ap)
					g = act_mask16(g, _mm512_loadu_ps(ap + i), sl);
				__m512d g0 = _mm512_cvtps_pd(_mm512_castps512_ps256(g));
				__m512d g1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(g, 1));
				__m512 x = _mm512_loadu_ps(xp + i);
				__m512d x0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x)), md);
				__m512d x1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1)), md);
				s0 = _mm512_add_pd(s0, g0);
				s1 = _mm512_add_pd(s1, g1);
				t0 = _mm512_add_pd(t0, _mm512_mul_pd(g0, x0));
				t1 = _mm512_add_pd(t1, _mm512_mul_pd(g1, x1));
			}
			sdy += _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
			sdyx += _mm512_reduce_add_pd(_mm512_add_pd(t0, t1));
#endif
			for (; i < j->HW; i++) {
				float g = DY(gp, ap, i);
				sdy += g;
				sdyx += g * (xp[i] - mean);
			}
		}
		sdyx *= invstd;   // = sum dy*xhat
		float g = j->gamma ? j->gamma[c] : 1.0f;
		if (j->dgamma)
			j->dgamma[c] += (float)sdyx;
		if (j->dbeta)
			j->dbeta[c] += (float)sdy;
		if (!j->dx)
			continue;
		float k = (float)(g * invstd);
		if (train) {
			float a = (float)(sdy / M);
			float bcoef = (float)(sdyx / M * invstd);  // per (x - mean)
			for (int n = 0; n < j->N; n++) {
				const float *xp = AT(j->x, n, c), *gp = AT(j->dy, n, c);
				const float *ap = j->act ? AT(j->act, n, c) : NULL;
				float *dp = AT(j->dx, n, c);
				if (ap) {
					int i = 0;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
					// the scalar line's float operations, in its order
					const __m512 kv = _mm512_set1_ps(k), av = _mm512_set1_ps(a);
					const __m512 mv = _mm512_set1_ps((float)mean);
					const __m512 bv = _mm512_set1_ps(bcoef);
					const int nt = stream && (uintptr_t)dp % 64 == 0;
					for (; i + 16 <= j->HW; i += 16) {
						__m512 g = act_mask16(_mm512_loadu_ps(gp + i),
						                      _mm512_loadu_ps(ap + i), sl);
						__m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xp + i), mv), bv);
						__m512 d = _mm512_mul_ps(kv, _mm512_sub_ps(_mm512_sub_ps(g, av), t));
						if (nt)
							_mm512_stream_ps(dp + i, d);
						else
							_mm512_storeu_ps(dp + i, d);
					}
#endif
					for (; i < j->HW; i++)
						dp[i] = k * (DY(gp, ap, i) - a - (xp[i] - (float)mean) * bcoef);
				} else
					for (int i = 0; i < j->HW; i++)
						dp[i] = k * (gp[i] - a - (xp[i] - (float)mean) * bcoef);
			}
		} else {
			for (int n = 0; n < j->N; n++) {
				const float *gp = AT(j->dy, n, c);
				float *dp = AT(j->dx, n, c);
				for (int i = 0; i < j->HW; i++)
					dp[i] = k * gp[i];
			}
		}
	}
	if (stream)
		ops_stream_fence();
}

static void train_bwd(void *ctx, size_t c0, size_t c1, int t) { bwd(ctx, c0, c1, t, 1); }
static void eval_bwd(void *ctx, size_t c0, size_t c1, int t) { bwd(ctx, c0, c1, t, 0); }

void batchnorm_backward_train(int N, int C, int HW, const float *x,
                              const float *gamma, const float *save_mean,
                              const float *save_invstd, const float *dy,
                              float *dx, float *dgamma, float *dbeta)
{
	batchnorm_backward_train_act(N, C, HW, x, gamma, save_mean, save_invstd, NULL,
	                             0.0f, dy, dx, dgamma, dbeta);
}

void batchnorm_backward_train_act(int N, int C, int HW, const float *x,
                                  const float *gamma, const float *save_mean,
                                  const float *save_invstd, const float *act,
                                  float slope, const float *dy, float *dx,
                                  float *dgamma, float *dbeta)
{
	if (N * (size_t)HW == 0)
		return;
	if (HW == 1) {
		bn1d_backward(N, C, 1, x, gamma, save_mean, save_invstd, 0.0f, act, slope,
		              dy, dx, dgamma, dbeta);
		return;
	}
	BnJob j = { .N = N, .C = C, .HW = HW, .x = x, .gamma = gamma, .dy = dy,
	            .mean = save_mean, .var = save_invstd, .dx = dx,
	            .dgamma = dgamma, .dbeta = dbeta, .act = act, .slope = slope };
	parallel_for((size_t)C, bn_threads(N, C, HW), train_bwd, &j);
}

void batchnorm_backward_eval(int N, int C, int HW, const float *x,
                             const float *gamma, const float *mean,
                             const float *var, float eps, const float *dy,
                             float *dx, float *dgamma, float *dbeta)
{
	if (HW == 1) {
		bn1d_backward(N, C, 0, x, gamma, mean, var, eps, NULL, 0.0f, dy, dx,
		              dgamma, dbeta);
		return;
	}
	BnJob j = { .N = N, .C = C, .HW = HW, .x = x, .gamma = gamma, .dy = dy,
	            .mean = mean, .var = var, .eps = eps, .dx = dx,
	            .dgamma = dgamma, .dbeta = dbeta };
	parallel_for((size_t)C, bn_threads(N, C, HW), eval_bwd, &j);
}
