// Pooling: max and average over k x k windows, fast.ai's concat pool and the
// global average.  Plain loops (planes are shared among threads): pooling is
// a small part of the time next to the convolutions.
//   x: (N, C, H, W), y: (N, C, P, Q); argmax: (N, C, P, Q) indices into H*W.
#include <float.h>
#include <math.h>
#include <string.h>
#include "err.h"
#include "ops.h"
#include "ops_internal.h"
#include "threads.h"

// PyTorch's floor rule (ceil_mode=False), torch.nn.MaxPool2d docs.
PoolShape pool_shape(int N, int C, int H, int W, int k, int stride, int pad)
{
	PoolShape s = { N, C, H, W, k, stride, pad, 0, 0 };
	if (N < 0 || C < 1 || H < 1 || W < 1 || k < 1 || stride < 1 || pad < 0 ||
	    H + 2 * pad < k || W + 2 * pad < k)
		die("pool_shape: invalid shape");
	s.P = (H + 2 * pad - k) / stride + 1;
	s.Q = (W + 2 * pad - k) / stride + 1;
	return s;
}

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

void maxpool2d_forward(const PoolShape *s, const float *x, float *y,
                       int32_t *argmax)
{
	PoolJob j = { .s = s, .x = x, .y = y, .argmax = argmax };
	size_t planes = (size_t)s->N * s->C;
	parallel_for(planes, plane_threads(planes, (size_t)s->P * s->Q * s->k * s->k),
	             max_f, &j);
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
