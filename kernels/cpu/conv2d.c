// 2-D convolution (cross-correlation, as PyTorch's Conv2d), zero padding, no
// groups.  Reference: direct loops.  Fast path: per image, im2col then one
// OpenBLAS sgemm; images are shared among threads, each with its own
// workspace of one image's columns (C*R*S x P*Q floats), so memory does not
// grow with the batch.
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#undef I   // <complex.h> (via cblas.h) defines I; ops.h uses it as a name
#include "alloc.h"
#include "err.h"
#include "ops.h"
#include "ops_internal.h"
#include "threads.h"

ConvShape conv_shape(int N, int C, int H, int W, int K, int R, int S,
                     int stride, int pad)
{
	ConvShape s = { N, C, H, W, K, R, S, stride, pad, 0, 0 };
	if (N < 0 || C < 1 || H < 1 || W < 1 || K < 1 || R < 1 || S < 1 ||
	    stride < 1 || pad < 0 || H + 2 * pad < R || W + 2 * pad < S)
		die("conv_shape: invalid shape");
	s.P = (H + 2 * pad - R) / stride + 1;
	s.Q = (W + 2 * pad - S) / stride + 1;
	return s;
}

// ---- reference ------------------------------------------------------------

// y[n,k,p,q] = b[k] + sum_{c,r,s} x[n,c,p*st-pad+r,q*st-pad+s] * w[k,c,r,s]
void conv2d_forward_ref(const ConvShape *s, const float *x, const float *w,
                        const float *b, float *y)
{
	for (int n = 0; n < s->N; n++)
	for (int k = 0; k < s->K; k++)
	for (int p = 0; p < s->P; p++)
	for (int q = 0; q < s->Q; q++) {
		double acc = b ? b[k] : 0.0;
		for (int c = 0; c < s->C; c++)
		for (int r = 0; r < s->R; r++) {
			int ih = p * s->stride - s->pad + r;
			if (ih < 0 || ih >= s->H)
				continue;
			for (int t = 0; t < s->S; t++) {
				int iw = q * s->stride - s->pad + t;
				if (iw < 0 || iw >= s->W)
					continue;
				acc += (double)x[(((size_t)n * s->C + c) * s->H + ih) * s->W + iw] *
				       w[(((size_t)k * s->C + c) * s->R + r) * s->S + t];
			}
		}
		y[(((size_t)n * s->K + k) * s->P + p) * s->Q + q] = (float)acc;
	}
}

// dx = sum over outputs touching x of dy*w (=); dw += dy*x; db += sum dy.
void conv2d_backward_ref(const ConvShape *s, const float *x, const float *w,
                         const float *dy, float *dx, float *dw, float *db)
{
	if (dx)
		memset(dx, 0, sizeof(float) * (size_t)s->N * s->C * s->H * s->W);
	for (int n = 0; n < s->N; n++)
	for (int k = 0; k < s->K; k++)
	for (int p = 0; p < s->P; p++)
	for (int q = 0; q < s->Q; q++) {
		float g = dy[(((size_t)n * s->K + k) * s->P + p) * s->Q + q];
		if (db)
			db[k] += g;
		for (int c = 0; c < s->C; c++)
		for (int r = 0; r < s->R; r++) {
			int ih = p * s->stride - s->pad + r;
			if (ih < 0 || ih >= s->H)
				continue;
			for (int t = 0; t < s->S; t++) {
				int iw = q * s->stride - s->pad + t;
				if (iw < 0 || iw >= s->W)
					continue;
				size_t xi = (((size_t)n * s->C + c) * s->H + ih) * s->W + iw;
				size_t wi = (((size_t)k * s->C + c) * s->R + r) * s->S + t;
				if (dx)
					dx[xi] += g * w[wi];
				if (dw)
					dw[wi] += g * x[xi];
			}
		}
	}
}

// ---- fast path ------------------------------------------------------------

// Valid output columns [*lo, *hi) for kernel column t: 0 <= q*st-pad+t < W.
static void valid_range(int W, int Q, int stride, int pad, int t, int *lo, int *hi)
{
	int a = pad - t;                 // need q*stride >= a
	int l = a <= 0 ? 0 : (a + stride - 1) / stride;
	int bnd = W + pad - t;           // need q*stride < bnd
	int h = bnd <= 0 ? 0 : (bnd - 1) / stride + 1;
	if (h > Q)
		h = Q;
	if (l > h)
		l = h;
	*lo = l;
	*hi = h;
}

// x: (C, H, W) one image -> col: (C*R*S, P*Q)
static void im2col(const ConvShape *s, const float *x, float *col)
{
	const int P = s->P, Q = s->Q, st = s->stride;
	for (int c = 0; c < s->C; c++)
	for (int r = 0; r < s->R; r++)
	for (int t = 0; t < s->S; t++) {
		float *dst = col + ((size_t)(c * s->R + r) * s->S + t) * P * Q;
		int lo, hi;
		valid_range(s->W, Q, st, s->pad, t, &lo, &hi);
		for (int p = 0; p < P; p++, dst += Q) {
			int ih = p * st - s->pad + r;
			if (ih < 0 || ih >= s->H) {
				memset(dst, 0, sizeof(float) * Q);
				continue;
			}
			const float *src = x + ((size_t)c * s->H + ih) * s->W - s->pad + t;
			for (int q = 0; q < lo; q++)
				dst[q] = 0.0f;
			if (st == 1)
				memcpy(dst + lo, src + lo, sizeof(float) * (hi - lo));
			else
				for (int q = lo; q < hi; q++)
					dst[q] = src[q * st];
			for (int q = hi; q < Q; q++)
				dst[q] = 0.0f;
		}
	}
}

// col: (C*R*S, P*Q) -> dx: (C, H, W), accumulating (dx zeroed by the caller)
static void col2im(const ConvShape *s, const float *col, float *dx)
{
	const int P = s->P, Q = s->Q, st = s->stride;
	for (int c = 0; c < s->C; c++)
	for (int r = 0; r < s->R; r++)
	for (int t = 0; t < s->S; t++) {
		const float *src = col + ((size_t)(c * s->R + r) * s->S + t) * P * Q;
		int lo, hi;
		valid_range(s->W, Q, st, s->pad, t, &lo, &hi);
		for (int p = 0; p < P; p++, src += Q) {
			int ih = p * st - s->pad + r;
			if (ih < 0 || ih >= s->H)
				continue;
			float *dst = dx + ((size_t)c * s->H + ih) * s->W - s->pad + t;
			if (st == 1)
				for (int q = lo; q < hi; q++)
					dst[q] += src[q];
			else
				for (int q = lo; q < hi; q++)
					dst[q * st] += src[q];
		}
	}
}

// A 1x1 stride-1 unpadded convolution needs no im2col: x[n] is the matrix.
static int is_pointwise(const ConvShape *s)
{
	return s->R == 1 && s->S == 1 && s->stride == 1 && s->pad == 0;
}

typedef struct {
	const ConvShape *s;
	const float *x, *w, *b, *dy;
	float *y, *dx, *dw, *db;
	float *dwt;            // per-thread dw partials: threads x K*CRS
	float *dbt;            // per-thread db partials: threads x K
	size_t ws_floats;      // per-thread workspace size
} ConvJob;

static void fwd_slice(void *ctx, size_t begin, size_t end, int thread)
{
	(void)thread;
	ConvJob *j = ctx;
	const ConvShape *s = j->s;
	const int CRS = s->C * s->R * s->S, PQ = s->P * s->Q;
	float *col = j->ws_floats ? xmalloc(sizeof(float) * j->ws_floats) : NULL;
	for (size_t n = begin; n < end; n++) {
		const float *xn = j->x + n * (size_t)s->C * s->H * s->W;
		float *yn = j->y + n * (size_t)s->K * PQ;
		const float *B = xn;
		if (col) {
			im2col(s, xn, col);
			B = col;
		}
		float beta = 0.0f;
		if (j->b) {
			for (int k = 0; k < s->K; k++)
				for (int i = 0; i < PQ; i++)
					yn[(size_t)k * PQ + i] = j->b[k];
			beta = 1.0f;
		}
		// y[n]: (K, PQ) = w: (K, CRS) . col: (CRS, PQ)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->K, PQ, CRS,
		            1.0f, j->w, CRS, B, PQ, beta, yn, PQ);
	}
	free(col);
}

// Images go to threads with single-threaded sgemm when there are enough of
// them; a single image uses OpenBLAS's own threads instead.
static void run_images(ConvJob *j, ParallelFn fn)
{
	const ConvShape *s = j->s;
	int T = ops_threads();
	if (T > 1 && s->N >= T) {
		ops_blas_threads(1);
		parallel_for((size_t)s->N, T, fn, j);
	} else {
		ops_blas_threads(T);
		fn(j, 0, (size_t)s->N, 0);
	}
	ops_blas_threads(T);
}

void conv2d_forward(const ConvShape *s, const float *x, const float *w,
                    const float *b, float *y)
{
	if (s->N == 0)
		return;
	ConvJob j = { .s = s, .x = x, .w = w, .b = b, .y = y };
	j.ws_floats = is_pointwise(s) ? 0 :
		(size_t)s->C * s->R * s->S * s->P * s->Q;
	run_images(&j, fwd_slice);
}

static void bwd_slice(void *ctx, size_t begin, size_t end, int thread)
{
	ConvJob *j = ctx;
	const ConvShape *s = j->s;
	const int CRS = s->C * s->R * s->S, PQ = s->P * s->Q;
	const size_t chw = (size_t)s->C * s->H * s->W;
	int pw = is_pointwise(s);
	float *col = (!pw && j->dw) ? xmalloc(sizeof(float) * j->ws_floats) : NULL;
	float *dcol = (!pw && j->dx) ? xmalloc(sizeof(float) * j->ws_floats) : NULL;
	float *dw = j->dw ? j->dwt + (size_t)thread * s->K * CRS : NULL;
	float *db = j->db ? j->dbt + (size_t)thread * s->K : NULL;
	for (size_t n = begin; n < end; n++) {
		const float *xn = j->x + n * chw;
		const float *dyn = j->dy + n * (size_t)s->K * PQ;
		if (db)
			for (int k = 0; k < s->K; k++) {
				const float *g = dyn + (size_t)k * PQ;
				float acc = 0.0f;
				for (int i = 0; i < PQ; i++)
					acc += g[i];
				db[k] += acc;
			}
		if (dw) {
			const float *B = xn;
			if (col) {
				im2col(s, xn, col);
				B = col;
			}
			// dw: (K, CRS) += dy[n]: (K, PQ) . col^T: (PQ, CRS)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->K, CRS, PQ,
			            1.0f, dyn, PQ, B, PQ, 1.0f, dw, CRS);
		}
		if (j->dx) {
			float *dxn = j->dx + n * chw;
			// dcol: (CRS, PQ) = w^T: (CRS, K) . dy[n]: (K, PQ)
			if (pw) {
				cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CRS, PQ, s->K,
				            1.0f, j->w, CRS, dyn, PQ, 0.0f, dxn, PQ);
			} else {
				cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CRS, PQ, s->K,
				            1.0f, j->w, CRS, dyn, PQ, 0.0f, dcol, PQ);
				memset(dxn, 0, sizeof(float) * chw);
				col2im(s, dcol, dxn);
			}
		}
	}
	free(col);
	free(dcol);
}

void conv2d_backward(const ConvShape *s, const float *x, const float *w,
                     const float *dy, float *dx, float *dw, float *db)
{
	if (s->N == 0 || (!dx && !dw && !db))
		return;
	const size_t KCRS = (size_t)s->K * s->C * s->R * s->S;
	int T = ops_threads();
	int slots = (T > 1 && s->N >= T) ? T : 1;
	ConvJob j = { .s = s, .x = x, .w = w, .dy = dy, .dx = dx, .dw = dw, .db = db };
	j.ws_floats = (size_t)s->C * s->R * s->S * s->P * s->Q;
	// Partial parameter gradients per thread, summed at the end, so that
	// threads never write the same memory.
	if (dw)
		j.dwt = xcalloc((size_t)slots * KCRS, sizeof(float));
	if (db)
		j.dbt = xcalloc((size_t)slots * s->K, sizeof(float));
	run_images(&j, bwd_slice);
	for (int t = 0; t < slots; t++) {
		if (dw)
			for (size_t i = 0; i < KCRS; i++)
				dw[i] += j.dwt[(size_t)t * KCRS + i];
		if (db)
			for (int k = 0; k < s->K; k++)
				db[k] += j.dbt[(size_t)t * s->K + k];
	}
	free(j.dwt);
	free(j.dbt);
}
