// The backward of the 2-D convolution (ops.h conv2d_backward), by the
// forward's machinery wherever the shape allows:
//   dx, 3x3 stride 1: dx = conv(dy, w rotated 180 degrees, channels
//       swapped, pad 2 - pad), a forward through Winograd F(4x4, 3x3);
//   dx, 1x1 stride 1: dx = conv1x1(dy, w^T) through the packed kernel;
//   dx, other shapes: w^T . dy per image, then col2im;
//   dw, 3x3 stride 1 of 3 channels: direct sums (conv_dw_c3.c);
//   dw, 3x3 stride 1: in the Winograd domain (conv_winograd_dw.c);
//   dw, other shapes: dy . col^T over column blocks of the whole batch
//       (several small images per product), partial sums per thread.
// With ops_winograd() off, every gradient is instead summed in PyTorch's
// order (backward_direct).
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#undef I   // <complex.h> (via cblas.h) defines I; ops.h uses it as a name
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/util/threads.h"
#include "ops.h"
#include "ops_internal.h"

// The data gradient's convolution: dy (N, K, P, Q) -> dx (N, C, H, W)
static ConvShape transposed_shape(const ConvShape *s)
{
	return conv_shape(s->N, s->K, s->P, s->Q, s->C, s->R, s->S, 1,
	                  s->R - 1 - s->pad);
}

// CNNPIPE_WINO_BWD=0: the backward without Winograd, the forward with it
// (comparisons)
static int wino_bwd(void)
{
	const char *e = getenv("CNNPIPE_WINO_BWD");
	return ops_winograd() && !(e && *e == '0');
}

static int dx_winograd(const ConvShape *s)
{
	if (!wino_bwd() || s->R != 3 || s->S != 3 || s->stride != 1 ||
	    s->pad > 2 || s->K < 8)
		return 0;
	ConvShape t = transposed_shape(s);
	return t.P == s->H && t.Q == s->W && conv2d_winograd_applies(&t);
}

// Few input channels and many outputs (Tiny Darknet's 16 -> 128) spend the
// Winograd filter gradient on transforming dy (36 K floats a tile) for
// products of only C: the column blocks ran 1.5x faster there (CPU time,
// batch 64), the Winograd domain 1.2x (64 -> 512) to 1.5x (16 -> 32)
// faster elsewhere.
int conv_backward_filter_winograd_applies(const ConvShape *s)
{
	return wino_bwd() && conv2d_winograd_applies(s) && s->C >= 8 &&
	       s->K >= 8 && (s->C >= 32 || s->K <= 2 * s->C || wino_dw_stream_applies(s));
}

// col: (C*R*S, P*Q) of one image -> dx: (C, H, W), accumulating
static void col2im(const ConvShape *s, const float *col, float *dx)
{
	const int P = s->P, Q = s->Q, st = s->stride;
	for (int c = 0; c < s->C; c++)
	for (int r = 0; r < s->R; r++)
	for (int t = 0; t < s->S; t++) {
		const float *src = col + ((size_t)(c * s->R + r) * s->S + t) * P * Q;
		int lo, hi;
		conv_valid_range(s->W, Q, st, s->pad, t, &lo, &hi);
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

typedef struct {
	const ConvShape *s;
	const float *x, *w, *dy;
	float *dx, *dw;
	float *dwt;            // per-thread dw partials: threads x K*CRS
	OpsScratch *scratch;
	size_t nb, total;      // columns per block, in all
} BwdJob;

// dx of images [begin, end): dcol = w^T . dy[n], then col2im
static void dx_images(void *ctx, size_t begin, size_t end, int thread)
{
	BwdJob *j = ctx;
	const ConvShape *s = j->s;
	const int CRS = s->C * s->R * s->S, PQ = s->P * s->Q;
	const size_t chw = (size_t)s->C * s->H * s->W;
	float *dcol = ops_scratch(j->scratch, thread, (size_t)CRS * PQ);
	for (size_t n = begin; n < end; n++) {
		const float *dyn = j->dy + n * (size_t)s->K * PQ;
		float *dxn = j->dx + n * chw;
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CRS, PQ, s->K,
		            1.0f, j->w, CRS, dyn, PQ, 0.0f, dcol, PQ);
		memset(dxn, 0, sizeof(float) * chw);
		col2im(s, dcol, dxn);
	}
}

static void backward_data(OpsScratch *sp, const ConvShape *s, const float *w,
                          const float *dy, float *dx)
{
	const ConvEpi none = { NULL, 1.0f, 0, 0, NULL };
	if (dx_winograd(s)) {
		ConvShape t = transposed_shape(s);
		float *U = ops_scratch(sp, OPS_SLOT_WEIGHTS, wino_filter_floats(s->C, s->K));
		wino_filter_transform_flipped(s->K, s->C, w, U);
		conv2d_forward_winograd(sp, &t, dy, U, NULL, &none, dx);
		return;
	}
	if (conv_is_pointwise(s)) {   // dx = w^T . dy: a 1x1 convolution C <- K
		ConvShape t = conv_shape(s->N, s->K, s->P, s->Q, s->C, 1, 1, 1, 0);
		float *wt = ops_scratch(sp, OPS_SLOT_WEIGHTS,
		                        conv_packed_weights_floats(&t) + (size_t)s->K * s->C);
		float *tr = wt + conv_packed_weights_floats(&t);
		for (int k = 0; k < s->K; k++)
			for (int c = 0; c < s->C; c++)
				tr[(size_t)c * s->K + k] = w[(size_t)k * s->C + c];
		conv_pack_weights(&t, tr, wt);
		conv2d_forward_packed(sp, &t, dy, wt, NULL, &none, dx);
		return;
	}
	BwdJob j = { .s = s, .w = w, .dy = dy, .dx = dx, .scratch = sp };
	int T = ops_threads();
	if (T > 1 && s->N >= T) {   // images to threads, one-thread sgemm each
		ops_blas_threads(1);
		parallel_for((size_t)s->N, T, dx_images, &j);
	} else {
		ops_blas_threads(T);
		dx_images(&j, 0, (size_t)s->N, 0);
	}
}

// The operands of dw += dy[:, block] . col[block]^T for column block blk
// (in thread's scratch): whole images' runs of dy read in place when the
// block lies in one image, else gathered (K, nb) beside col.
static void dw_operands(BwdJob *j, size_t blk, int thread, const float **pA,
                        size_t *plda, const float **pB, size_t *pldb, size_t *pnc)
{
	const ConvShape *s = j->s;
	const int CRS = s->C * s->R * s->S, K = s->K;
	const size_t PQ = (size_t)s->P * s->Q;
	size_t j0 = blk * j->nb, j1 = j0 + j->nb < j->total ? j0 + j->nb : j->total;
	const size_t nc = j1 - j0, n0 = j0 / PQ;
	const int one = (j1 - 1) / PQ == n0, pw = conv_is_pointwise(s);
	float *col = ops_scratch(j->scratch, thread, (size_t)(CRS + K) * nc);
	const float *A, *B;
	size_t lda, ldb;
	if (one) {
		A = j->dy + n0 * K * PQ + (j0 - n0 * PQ);
		lda = PQ;
		if (pw) {
			B = j->x + n0 * s->C * PQ + (j0 - n0 * PQ);
			ldb = PQ;
		} else {
			conv_im2col_range(s, j->x, j0, j1, col, nc);
			B = col;
			ldb = nc;
		}
	} else {
		float *g = col + (size_t)CRS * nc;
		for (size_t a = j0; a < j1;) {
			size_t n = a / PQ, e = (n + 1) * PQ < j1 ? (n + 1) * PQ : j1;
			for (int k = 0; k < K; k++)
				memcpy(g + (size_t)k * nc + (a - j0),
				       j->dy + (n * K + k) * PQ + (a - n * PQ),
				       sizeof(float) * (e - a));
			a = e;
		}
		conv_im2col_range(s, j->x, j0, j1, col, nc);
		A = g;
		lda = nc;
		B = col;
		ldb = nc;
	}
	*pA = A;
	*plda = lda;
	*pB = B;
	*pldb = ldb;
	*pnc = nc;
}

// dw partial of thread `thread` += the product of block blk
static void dw_block(void *ctx, size_t blk, size_t blk_end, int thread)
{
	(void)blk_end;
	BwdJob *j = ctx;
	const int CRS = j->s->C * j->s->R * j->s->S, K = j->s->K;
	const float *A, *B;
	size_t lda, ldb, nc;
	dw_operands(j, blk, thread, &A, &lda, &B, &ldb, &nc);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, K, CRS, (int)nc,
	            1.0f, A, (int)lda, B, (int)ldb, 1.0f,
	            j->dwt + (size_t)thread * K * CRS, CRS);
}

// One block's product, its rows (output channels) cut among the threads:
// each output the same sum as dw_block's, whatever the thread count.
typedef struct {
	const float *A, *B;
	size_t lda, ldb, nc;
	int K, CRS, T;
	float *dw;
} RowsJob;

static void dw_rows(void *ctx, size_t t, size_t t_end, int thread)
{
	(void)t_end;
	(void)thread;
	const RowsJob *r = ctx;
	int k0 = (int)((size_t)r->K * t / r->T), k1 = (int)((size_t)r->K * (t + 1) / r->T);
	if (k1 > k0)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k1 - k0, r->CRS, (int)r->nc,
		            1.0f, r->A + (size_t)k0 * r->lda, (int)r->lda, r->B, (int)r->ldb,
		            1.0f, r->dw + (size_t)k0 * r->CRS, r->CRS);
}

// Thread t sums the blocks of its fixed slice into its own partial dw: a
// dynamic hand-out of blocks made the partials, and so the weights after a
// step, depend on the threads' timing (two runs of the same training with
// -j 2 differed).
static void dw_slice(void *ctx, size_t b0, size_t b1, int thread)
{
	for (size_t b = b0; b < b1; b++)
		dw_block(ctx, b, b + 1, thread);
}

// The most columns one thread sums when the blocks of nb columns go to T
// threads in dw_slice's fixed slices.
static size_t slice_cols(size_t total, size_t nb, int T)
{
	size_t nblk = (total + nb - 1) / nb, worst = 0;
	for (int t = 0; t < T; t++) {
		size_t c0 = nblk * t / T * nb, c1 = nblk * (t + 1) / T * nb;
		if (c1 > total)
			c1 = total;
		if (c1 > c0 && c1 - c0 > worst)
			worst = c1 - c0;
	}
	return worst;
}

// Blocks of whole images: down to half as many images a block where that
// evens out the threads' slices (ResNet34's layer3.0 at batch 16 had 3
// blocks of 6 images: one thread summed two, the other one).  A single
// block stays one (dw_rows), so that its sums do not depend on the threads.
static size_t dw_balanced_block(size_t total, size_t nb, size_t PQ, int T)
{
	if (T < 2 || nb < PQ || nb % PQ != 0 || (total + nb - 1) / nb < (size_t)T)
		return nb;
	const size_t ipb = nb / PQ;
	size_t best = nb, worst = slice_cols(total, nb, T);
	for (size_t i = ipb - 1; i >= 1 && 2 * i >= ipb; i--) {
		size_t w = slice_cols(total, i * PQ, T);
		if (w < worst) {
			worst = w;
			best = i * PQ;
		}
	}
	return best;
}

static void backward_filter(OpsScratch *sp, const ConvShape *s, const float *x,
                            const float *dy, float *dw)
{
	if (conv_backward_filter_c3_applies(s)) {
		conv2d_backward_filter_c3(sp, s, x, dy, dw);
		return;
	}
	if (conv_backward_filter_winograd_applies(s)) {
		conv2d_backward_filter_winograd(sp, s, x, dy, dw);
		return;
	}
	const size_t CRS = (size_t)s->C * s->R * s->S, KCRS = (size_t)s->K * CRS;
	const size_t PQ = (size_t)s->P * s->Q;
	BwdJob j = { .s = s, .x = x, .dy = dy, .dw = dw, .scratch = sp };
	j.total = (size_t)s->N * PQ;
	// Columns per block: enough images for an inner dimension of about
	// 1024 (layer4's 49 columns per image alone ran at 2/3 of the speed);
	// whole images up to 2048 columns, and larger ones in equal parts of
	// at most 2048 where PQ divides (a block still lies in one image and
	// is read in place), so that col and dy's rows stay in L2: ResNet34's
	// conv1 (12544 columns, 7 parts) 40 -> 30 ms at batch 16, Tiny
	// Darknet's 1x1 layers at 56x56 (halves) 4.1 -> 2.8 and 14.1 -> 12.2
	// ms at batch 64.  At most 4 M floats of col and dy.
	size_t nb = PQ >= 1024 ? PQ : (1024 + PQ - 1) / PQ * PQ;
	for (size_t k = (PQ + 2047) / 2048; PQ > 2048 && k <= PQ / 512; k++)
		if (PQ % k == 0) {
			nb = PQ / k;
			break;
		}
	const size_t cap = ((size_t)4 << 20) / (CRS + s->K);
	if (nb > cap)
		nb = cap > 256 ? cap : 256;
	if (nb > j.total)
		nb = j.total;
	int T = ops_threads();
	nb = dw_balanced_block(j.total, nb, PQ, T);
	j.nb = nb;
	size_t nblocks = (j.total + nb - 1) / nb;
	int slots = T > 1 && nblocks >= (size_t)T ? T : 1;
	j.dwt = slots > 1 ? ops_scratch(sp, OPS_SLOT_WEIGHTS, slots * KCRS) : dw;
	if (slots > 1) {
		memset(j.dwt, 0, sizeof(float) * slots * KCRS);
		ops_blas_threads(1);
		parallel_for(nblocks, slots, dw_slice, &j);
		ops_add_partials(dw, j.dwt, slots, KCRS);
	} else if (T > 1 && nblocks == 1 && s->K >= 32) {
		RowsJob r = { .K = s->K, .CRS = (int)CRS, .T = T, .dw = dw };
		dw_operands(&j, 0, 0, &r.A, &r.lda, &r.B, &r.ldb, &r.nc);
		ops_blas_threads(1);
		parallel_for((size_t)T, T, dw_rows, &r);
	} else {
		ops_blas_threads(T);
		for (size_t b = 0; b < nblocks; b++)
			dw_block(&j, b, b + 1, 0);
	}
}

static void backward_bias(const ConvShape *s, const float *dy, float *db)
{
	const size_t PQ = (size_t)s->P * s->Q;
	for (int n = 0; n < s->N; n++)
		for (int k = 0; k < s->K; k++) {
			const float *g = dy + ((size_t)n * s->K + k) * PQ;
			float acc = 0.0f;
			for (size_t i = 0; i < PQ; i++)
				acc += g[i];
			db[k] += acc;
		}
}

// ---- direct: PyTorch's order ------------------------------------------------
// With Winograd off every gradient is summed as PyTorch's CPU convolution
// does (per image: dw += dy[n] . col^T, dcol = w^T . dy[n]), and threads
// split the images with partial dw per thread: the step-matching test
// (tests/train.bats) holds this path to 1e-4 of PyTorch after ten steps,
// which ten steps of training amplify any other summation order past.
static void direct_images(void *ctx, size_t begin, size_t end, int thread)
{
	BwdJob *j = ctx;
	const ConvShape *s = j->s;
	const int CRS = s->C * s->R * s->S, PQ = s->P * s->Q;
	const size_t chw = (size_t)s->C * s->H * s->W;
	const int pw = conv_is_pointwise(s);
	float *col = ops_scratch(j->scratch, thread, (size_t)2 * CRS * PQ);
	float *dcol = col + (size_t)CRS * PQ;
	float *dw = j->dw ? j->dwt + (size_t)thread * s->K * CRS : NULL;
	for (size_t n = begin; n < end; n++) {
		const float *xn = j->x + n * chw;
		const float *dyn = j->dy + n * (size_t)s->K * PQ;
		if (dw) {
			const float *B = xn;
			if (!pw) {
				conv_im2col_range(s, xn, 0, (size_t)PQ, col, (size_t)PQ);
				B = col;
			}
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->K, CRS, PQ,
			            1.0f, dyn, PQ, B, PQ, 1.0f, dw, CRS);
		}
		if (j->dx) {
			float *dxn = j->dx + n * chw;
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
}

static void backward_direct(OpsScratch *sp, const ConvShape *s, const float *x,
                            const float *w, const float *dy, float *dx, float *dw)
{
	const size_t KCRS = (size_t)s->K * s->C * s->R * s->S;
	int T = ops_threads();
	int slots = T > 1 && s->N >= T ? T : 1;
	BwdJob j = { .s = s, .x = x, .w = w, .dy = dy, .dx = dx, .dw = dw,
	             .scratch = sp };
	if (dw) {
		j.dwt = ops_scratch(sp, OPS_SLOT_WEIGHTS, slots * KCRS);
		memset(j.dwt, 0, sizeof(float) * slots * KCRS);
	}
	if (slots > 1) {
		ops_blas_threads(1);
		parallel_for((size_t)s->N, T, direct_images, &j);
	} else {
		ops_blas_threads(T);
		direct_images(&j, 0, (size_t)s->N, 0);
	}
	if (dw)
		ops_add_partials(dw, j.dwt, slots, KCRS);
}

void conv2d_backward(const ConvShape *s, const float *x, const float *w,
                     const float *dy, float *dx, float *dw, float *db)
{
	if (s->N == 0 || (!dx && !dw && !db))
		return;
	OpsScratch *sp = ops_scratch_acquire();
	if (!ops_winograd()) {
		if (db)
			backward_bias(s, dy, db);
		if (dx || dw)
			backward_direct(sp, s, x, w, dy, dx, dw);
		ops_scratch_release(sp);
		return;
	}
	if (db)
		backward_bias(s, dy, db);
	if (dx)
		backward_data(sp, s, w, dy, dx);
	if (dw)
		backward_filter(sp, s, x, dy, dw);
	ops_scratch_release(sp);
}
