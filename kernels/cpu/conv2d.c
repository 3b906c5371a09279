// 2-D convolution (cross-correlation, as PyTorch's Conv2d), zero padding, no
// groups.  Reference: direct loops.  Fast paths of the forward: Winograd
// (conv_winograd.c), direct (conv_direct.c), and here column blocks of
// im2col times packed weights by our own kernel (or OpenBLAS).  The
// backward: conv_backward.c.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#undef I   // <complex.h> (via cblas.h) defines I; ops.h uses it as a name
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "ops.h"
#include "ops_internal.h"
#include "libcommon/util/threads.h"
#ifdef __AVX512F__
#include <immintrin.h>
#endif

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

// Eval batch norm folded into the convolution before it (ops.h), straight
// from the formula, in double:  g = gamma / sqrt(var + eps),
// wf = w * g, bf = (b - mean) * g + beta.
void conv_fold_batchnorm_ref(int K, size_t CRS, const float *w, const float *b,
                             const float *gamma, const float *beta,
                             const float *mean, const float *var, float eps,
                             float *wf, float *bf)
{
	for (int k = 0; k < K; k++) {
		double g = (double)gamma[k] / sqrt((double)var[k] + (double)eps);
		for (size_t e = 0; e < CRS; e++)
			wf[(size_t)k * CRS + e] = (float)((double)w[(size_t)k * CRS + e] * g);
		double bk = b ? (double)b[k] : 0.0;
		bf[k] = (float)((bk - (double)mean[k]) * g + (double)beta[k]);
	}
}

// ---- fast path ------------------------------------------------------------

// Valid output columns [*lo, *hi) for kernel column t: 0 <= q*st-pad+t < W.
void conv_valid_range(int W, int Q, int stride, int pad, int t, int *lo, int *hi)
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

// A 1x1 stride-1 unpadded convolution needs no im2col: x[n] is the matrix.
int conv_is_pointwise(const ConvShape *s)
{
	return s->R == 1 && s->S == 1 && s->stride == 1 && s->pad == 0;
}

// ---- forward: column blocks ------------------------------------------------
// The output pixels of the whole batch, j = (n*P + p)*Q + q, are cut into
// blocks of NB columns; per block: im2col of those columns, then one sgemm
//   out: (K, NB) = w: (K, CRS) . col: (CRS, NB)
// on one thread, blocks shared among threads.  Blocks of several small
// images keep the sgemm wide (layer4's 7x7 outputs), blocks of part of a
// large image keep col in cache (the stem's 147 x 12544 columns would not).

typedef struct {
	const ConvShape *s;
	const float *x, *w, *b;
	float *y;
	OpsScratch *scratch;
	const ConvEpi *epi;
	size_t total, nb;   // columns in all, per block
	int direct;         // pointwise: x[n] is already the column matrix
} FwdJob;

// dst[i] = src[2 * i], i < n: 16 at a time from two masked loads (never
// past src[2 * n - 2]) and a permute keeping the even lanes.
static void copy_stride2(float *dst, const float *src, int n)
{
	int i = 0;
#ifdef __AVX512F__
	const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20,
	                                       22, 24, 26, 28, 30);
	for (; i < n; i += 16) {
		int m = n - i < 16 ? n - i : 16;      // outputs this round
		int need = 2 * m - 1;                 // inputs read
		__mmask16 k0 = (__mmask16)(need >= 16 ? 0xFFFF : (1u << need) - 1);
		__mmask16 k1 = (__mmask16)(need > 16 ? (1u << (need - 16)) - 1 : 0);
		__m512 a = _mm512_maskz_loadu_ps(k0, src + 2 * i);
		__m512 b = _mm512_maskz_loadu_ps(k1, src + 2 * i + 16);
		_mm512_mask_storeu_ps(dst + i, (__mmask16)((1u << m) - 1),
		                      _mm512_permutex2var_ps(a, even, b));
	}
#endif
	for (; i < n; i++)
		dst[i] = src[2 * i];
}

// col: (CRS, ld) <- the input patches of output pixels [j0, j1) in its
// first j1 - j0 columns.  The range is cut once into segments, one per
// output row (n, p) it meets, so the loop over the C*R*S rows does no
// division.
typedef struct { const float *x; int ih0, qa, qb; size_t at; } Seg;

static void im2col_segs(const ConvShape *s, const Seg *sg, int nseg,
                        float *col, size_t ld)
{
	const int st = s->stride, H = s->H;
	const size_t plane = (size_t)H * s->W;
	for (int t = 0; t < s->S; t++) {
		int lo, hi;
		conv_valid_range(s->W, s->Q, st, s->pad, t, &lo, &hi);
		for (int c = 0; c < s->C; c++)
		for (int r = 0; r < s->R; r++) {
			float *row = col + ((size_t)(c * s->R + r) * s->S + t) * ld;
			for (int g = 0; g < nseg; g++) {
				const Seg *e = &sg[g];
				const int qa = e->qa, qb = e->qb, ih = e->ih0 + r;
				float *dst = row + e->at - qa;   // dst[q] for q in [qa, qb)
				if (ih < 0 || ih >= H) {
					memset(dst + qa, 0, sizeof(float) * (qb - qa));
					continue;
				}
				const float *src = e->x + c * plane + (size_t)ih * s->W - s->pad + t;
				int l = lo > qa ? lo : qa, h = hi < qb ? hi : qb;
				if (h < l)
					h = l;
				for (int q = qa; q < l; q++)
					dst[q] = 0.0f;
				if (st == 1)
					memcpy(dst + l, src + l, sizeof(float) * (h - l));
				else if (st == 2)
					copy_stride2(dst + l, src + 2 * l, h - l);
				else
					for (int q = l; q < h; q++)
						dst[q] = src[q * st];
				for (int q = h; q < qb; q++)
					dst[q] = 0.0f;
			}
		}
	}
}

void conv_im2col_range(const ConvShape *s, const float *x, size_t j0, size_t j1,
                      float *col, size_t ld)
{
	const int Q = s->Q;
	const size_t PQ = (size_t)s->P * Q;
	Seg sg[64];
	while (j0 < j1) {   // at most 64 segments at a time
		int nseg = 0;
		size_t j = j0;
		for (; j < j1 && nseg < 64; nseg++) {
			size_t n = j / PQ;
			int p = (int)(j % PQ / Q), qa = (int)(j % Q);
			int qb = (size_t)(Q - qa) < j1 - j ? Q : qa + (int)(j1 - j);
			sg[nseg] = (Seg){ x + n * s->C * (size_t)s->H * s->W,
			                  p * s->stride - s->pad, qa, qb, j - j0 };
			j += (size_t)(qb - qa);
		}
		im2col_segs(s, sg, nseg, col, ld);
		col += j - j0;
		j0 = j;
	}
}

// yn[k, i] (row stride ldy) = bias[k] + sum_c w[k, c] * B[c, i] for
// i < nc: one sgemm writing a run of columns of one image's output.
static void gemm_into_image(int K, size_t nc, int CRS, const float *w,
                            const float *B, size_t ldb, const float *bias,
                            float *yn, size_t ldy)
{
	float beta = 0.0f;
	if (bias) {
		for (int k = 0; k < K; k++)
			for (size_t i = 0; i < nc; i++)
				yn[k * ldy + i] = bias[k];
		beta = 1.0f;
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, (int)nc, CRS,
	            1.0f, w, CRS, B, (int)ldb, beta, yn, (int)ldy);
}

static void fwd_block_core(void *ctx, size_t blk, size_t blk_end, int thread)
{
	(void)blk_end;
	FwdJob *j = ctx;
	const ConvShape *s = j->s;
	const int CRS = s->C * s->R * s->S, K = s->K;
	const size_t PQ = (size_t)s->P * s->Q;
	size_t j0 = blk * j->nb, j1 = j0 + j->nb;
	if (j1 > j->total)
		j1 = j->total;
	const size_t nc = j1 - j0, n0 = j0 / PQ;
	const int one_image = (j1 - 1) / PQ == n0;
	if (j->direct && one_image) {   // pointwise, one image: x[n] is col
		const float *B = j->x + n0 * (size_t)s->C * PQ + (j0 - n0 * PQ);
		gemm_into_image(K, nc, CRS, j->w, B, PQ, j->b,
		                j->y + n0 * (size_t)K * PQ + (j0 - n0 * PQ), PQ);
		return;
	}
	float *col = ops_scratch(j->scratch, thread, (size_t)CRS * nc +
	                         (one_image ? 0 : (size_t)K * nc));
	conv_im2col_range(s, j->x, j0, j1, col, nc);
	if (one_image) {   // straight into y[n][:, j0 - n*PQ ...], row stride PQ
		gemm_into_image(K, nc, CRS, j->w, col, nc, j->b,
		                j->y + n0 * (size_t)K * PQ + (j0 - n0 * PQ), PQ);
		return;
	}
	float *out = col + (size_t)CRS * nc;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, (int)nc, CRS,
	            1.0f, j->w, CRS, col, (int)nc, 0.0f, out, (int)nc);
	// out (K, nc) -> y segments of each image met
	for (size_t a = j0; a < j1;) {
		size_t n = a / PQ, e = (n + 1) * PQ < j1 ? (n + 1) * PQ : j1;
		size_t off = a - n * PQ, len = e - a;
		for (int k = 0; k < K; k++) {
			float *dst = j->y + (n * K + k) * PQ + off;
			const float *src = out + (size_t)k * nc + (a - j0);
			if (j->b) {
				float bk = j->b[k];
				for (size_t i = 0; i < len; i++)
					dst[i] = src[i] + bk;
			} else {
				memcpy(dst, src, sizeof(float) * len);
			}
		}
		a = e;
	}
}


// one block, then its epilogue while the block is in cache
static void fwd_block(void *ctx, size_t blk, size_t blk_end, int thread)
{
	FwdJob *j = ctx;
	fwd_block_core(ctx, blk, blk_end, thread);
	if (j->epi->on) {
		size_t j0 = blk * j->nb, j1 = j0 + j->nb < j->total ? j0 + j->nb : j->total;
		conv_epilogue_range(j->epi, j->s, j->y, j0, j1);
	}
}

static void conv2d_forward_gemm(OpsScratch *sp, const ConvShape *s, const float *x,
                                const float *w, const float *b, const ConvEpi *epi,
                                float *y)
{
	const size_t CRS = (size_t)s->C * s->R * s->S, PQ = (size_t)s->P * s->Q;
	FwdJob j = { .s = s, .x = x, .w = w, .b = b, .y = y, .epi = epi };
	j.total = (size_t)s->N * PQ;
	j.direct = conv_is_pointwise(s);
	// Columns per block: col about 1 M floats (half the L2 cache), at
	// least 256 so that packing w is amortised; measured on ResNet34.
	// CNNPIPE_CONV_COLS sets it (tests and tuning).
	const char *e = getenv("CNNPIPE_CONV_COLS");
	size_t nb = ((size_t)1 << 20) / CRS;
	if (nb < 256)
		nb = 256;
	if (j.direct && PQ >= 1024)   // big pointwise images: whole images, no copy
		nb = PQ;
	if (e && atol(e) > 0)
		nb = (size_t)atol(e);
	if (nb > j.total)
		nb = j.total;
	j.nb = nb;
	size_t nblocks = (j.total + nb - 1) / nb;
	int T = ops_threads();
	j.scratch = sp;
	if (T > 1 && nblocks >= (size_t)T) {
		ops_blas_threads(1);
		ops_parallel_dynamic(nblocks, T, fwd_block, &j);
	} else {
		ops_blas_threads(T);
		for (size_t i = 0; i < nblocks; i++)
			fwd_block(&j, i, i + 1, 0);
	}
}

// ---- forward: packed im2col and our own kernel -------------------------------
// The same column blocks, in groups of 32 columns packed (CRS, 32) by
// im2col, times the weights packed (K/8, CRS, 8) once per ConvCache, by
// ops_gemm_8x32: no repacking per call, and a kernel near the FMA peak
// (OpenBLAS reaches about 2/3 of it on these thin products).

#define PK_COLS 128   // columns per work item: 4 kernel column blocks

static int round8(int v)
{
	return (v + 7) / 8 * 8;
}

size_t conv_packed_weights_floats(const ConvShape *s)
{
	return (size_t)round8(s->K) * s->C * s->R * s->S;
}

// wp[k/8][e][k%8] = w[k][e], e over C*R*S; rows k >= K zero
void conv_pack_weights(const ConvShape *s, const float *w, float *wp)
{
	const size_t CRS = (size_t)s->C * s->R * s->S;
	const int K8 = round8(s->K);
	for (int k = 0; k < K8; k++)
		for (size_t e = 0; e < CRS; e++)
			wp[((size_t)(k / 8) * CRS + e) * 8 + k % 8] = k < s->K ? w[k * CRS + e] : 0.0f;
}

typedef struct {
	const ConvShape *s;
	const float *x, *wp, *b;
	float *y;
	OpsScratch *scratch;
	const ConvEpi *epi;
	size_t total;
} PackJob;

static void pk_item_core(void *ctx, size_t item, size_t item_end, int thread)
{
	(void)item_end;
	PackJob *j = ctx;
	const ConvShape *s = j->s;
	const int CRS = s->C * s->R * s->S, K = s->K, K8 = round8(K);
	const size_t PQ = (size_t)s->P * s->Q;
	const size_t j0 = item * PK_COLS;
	const size_t j1 = j0 + PK_COLS < j->total ? j0 + PK_COLS : j->total;
	const int nblk = (int)((j1 - j0 + 31) / 32), pw = conv_is_pointwise(s);
	float *col = ops_scratch(j->scratch, thread, (size_t)nblk * CRS * 32);
	// Column block tb: the kernel's v operand and its row stride; whole
	// blocks inside one image (inplace) are written straight into y.
	const float *vb[PK_COLS / 32];
	size_t ldv[PK_COLS / 32];
	int inplace[PK_COLS / 32];
	for (int tb = 0; tb < nblk; tb++) {
		size_t a = j0 + (size_t)tb * 32, e = a + 32 < j1 ? a + 32 : j1;
		size_t n = a / PQ;
		inplace[tb] = e - a == 32 && (e - 1) / PQ == n;
		float *cb = col + (size_t)tb * CRS * 32;
		if (pw && inplace[tb]) {
			// x[n] is the column matrix: copy the block's 32 columns of
			// each row together (one pass over x's rows, many pages
			// apart, instead of one per 8 output channels)
			const float *xb = j->x + n * s->C * PQ + (a - n * PQ);
			for (int c = 0; c < s->C; c++)
				memcpy(cb + (size_t)c * 32, xb + c * PQ, 32 * sizeof(float));
			vb[tb] = cb;
			ldv[tb] = 32;
			continue;
		}
		if (e - a < 32)   // last block: finite zeros in the unused columns
			memset(cb, 0, sizeof(float) * CRS * 32);
		conv_im2col_range(s, j->x, a, e, cb, 32);
		vb[tb] = cb;
		ldv[tb] = 32;
	}
	float m[8 * 32];
	for (int k0 = 0; k0 < K8; k0 += 8) {
		const float *wk = j->wp + (size_t)k0 * CRS;
		const int nk = K - k0 < 8 ? K - k0 : 8;
		// The bias goes into the accumulators first wherever the block
		// lands, so that every output is bias + the same sum in the same
		// order: an image's numbers do not depend on its place in the batch.
		float bias8[8];
		const float *b8 = ops_bias8(j->b, k0, nk, bias8);
		for (int tb = 0; tb < nblk; tb++) {
			size_t a = j0 + (size_t)tb * 32, e = a + 32 < j1 ? a + 32 : j1;
			if (inplace[tb] && nk == 8) {
				size_t n = a / PQ;
				ops_gemm_8x32(CRS, wk, vb[tb], ldv[tb],
				              j->y + (n * K + k0) * PQ + (a - n * PQ), PQ, b8);
				continue;
			}
			ops_gemm_8x32(CRS, wk, vb[tb], ldv[tb], m, 32, b8);
			// m (8, 32) -> y, per image met
			while (a < e) {
				size_t n = a / PQ, off = a - n * PQ;
				size_t len = (n + 1) * PQ < e ? (n + 1) * PQ - a : e - a;
				const float *src = m + (a - j0 - (size_t)tb * 32);
				for (int i = 0; i < nk; i++)
					memcpy(j->y + (n * K + k0 + i) * PQ + off, src + i * 32,
					       sizeof(float) * len);
				a += len;
			}
		}
	}
}

static void pk_item(void *ctx, size_t item, size_t item_end, int thread)
{
	PackJob *j = ctx;
	pk_item_core(ctx, item, item_end, thread);
	if (j->epi->on) {
		size_t j0 = item * PK_COLS;
		size_t j1 = j0 + PK_COLS < j->total ? j0 + PK_COLS : j->total;
		conv_epilogue_range(j->epi, j->s, j->y, j0, j1);
	}
}

void conv2d_forward_packed(OpsScratch *sp, const ConvShape *s, const float *x,
                           const float *wp, const float *b, const ConvEpi *epi,
                           float *y)
{
	PackJob j = { .s = s, .x = x, .wp = wp, .b = b, .y = y, .epi = epi };
	j.total = (size_t)s->N * s->P * s->Q;
	j.scratch = sp;
	ops_parallel_dynamic((j.total + PK_COLS - 1) / PK_COLS, ops_threads(), pk_item, &j);
}

// ---- forward: entry points and the cache ----------------------------------

enum { ALG_GEMM, ALG_WINOGRAD, ALG_DIRECT, ALG_PACKED };

// The packed kernel beats im2col + OpenBLAS by 10 % (ResNet's strided 3x3
// layers) to 40 % (Tiny Darknet's 1x1 layers at 14x14 and 28x28) with at
// least 32 output channels, and is as fast with 16 (Tiny Darknet's 1x1
// 32-16 and 128-16 at 56x56: 6.1 vs 6.8 and 20.7 vs 22.3 ms CPU, batch
// 64).  It also sums every output in one fixed order whatever the batch
// (OpenBLAS picks its kernels by the matrix widths), so it is the default
// for every shape: precompute's bytes do not depend on -b or -j.
// CNNPIPE_CONV_PACKED=0 / 1 forces OpenBLAS / it (tests, comparisons).
static int conv_algorithm(const ConvShape *s)
{
	if (ops_winograd() && conv2d_winograd_applies(s) && s->C >= 8)
		return ALG_WINOGRAD;
	if (conv2d_direct_applies(s))
		return ALG_DIRECT;
	const char *e = getenv("CNNPIPE_CONV_PACKED");
	return e && *e == '0' ? ALG_GEMM : ALG_PACKED;
}

// Weights rearranged for the algorithm (Winograd-transformed or packed).
struct ConvCache {
	const float *w;     // the weights buf was made from; NULL: nothing cached
	int K, C, R, S, alg;
	float *buf;
	size_t cap;
};

ConvCache *conv_cache_new(void)
{
	return xcalloc(1, sizeof(ConvCache));
}

void conv_cache_free(ConvCache *c)
{
	if (c) {
		free(c->buf);
		free(c);
	}
}

void conv_cache_invalidate(ConvCache *c)
{
	if (c)
		c->w = NULL;
}

static size_t prepared_floats(const ConvShape *s, int alg)
{
	return alg == ALG_WINOGRAD ? wino_filter_floats(s->K, s->C) :
	       alg == ALG_PACKED ? conv_packed_weights_floats(s) :
	       conv_direct_weights_floats(s);
}

static void prepare(const ConvShape *s, int alg, const float *w, float *buf)
{
	if (alg == ALG_WINOGRAD)
		wino_filter_transform(s->K, s->C, w, buf);
	else if (alg == ALG_PACKED)
		conv_pack_weights(s, w, buf);
	else
		conv_direct_pack(s, w, buf);
}

static ConvEpi epilogue(const float *res, int act, float slope, int pool)
{
	ConvEpi epi = { res, 1.0f, 0, pool, NULL };
	if (act == CONV_ACT_RELU)
		epi.slope = 0.0f;
	else if (act == CONV_ACT_LEAKY)
		epi.slope = slope < 0.0f ? 0.0f : slope > 1.0f ? 1.0f : slope;
	epi.on = res != NULL || act == CONV_ACT_RELU || act == CONV_ACT_LEAKY;
	return epi;
}

// The weights rearranged for alg: kept in c when given (remade when w or
// the shape changed), else made into scratch slot `slot` (reused memory: a
// fresh 37 MB buffer costs 20 ms of page faults).
static const float *prepared_weights(ConvCache *c, const ConvShape *s, int alg,
                                     const float *w, OpsScratch *sp, int slot)
{
	if (!c) {
		float *buf = ops_scratch(sp, slot, prepared_floats(s, alg));
		prepare(s, alg, w, buf);
		return buf;
	}
	if (c->w != w || c->K != s->K || c->C != s->C || c->R != s->R ||
	    c->S != s->S || c->alg != alg) {
		size_t n = prepared_floats(s, alg);
		if (c->cap < n) {
			free(c->buf);
			c->buf = xmalloc_array(n, sizeof(float));
			c->cap = n;
		}
		prepare(s, alg, w, c->buf);
		c->w = w;
		c->K = s->K;
		c->C = s->C;
		c->R = s->R;
		c->S = s->S;
		c->alg = alg;
	}
	return c->buf;
}

// The forward with epilogue epi by algorithm alg (the pooled epilogue
// only with Winograd or direct, the pointwise one only with Winograd).
static void forward_epi(ConvCache *c, const ConvShape *s, int alg, const float *x,
                        const float *w, const float *b, const ConvEpi *epi, float *y,
                        OpsScratch *sp)
{
	if (alg == ALG_GEMM) {
		conv2d_forward_gemm(sp, s, x, w, b, epi, y);
		return;
	}
	const float *buf = prepared_weights(c, s, alg, w, sp, OPS_SLOT_WEIGHTS);
	if (alg == ALG_WINOGRAD)
		conv2d_forward_winograd(sp, s, x, buf, b, epi, y);
	else if (alg == ALG_PACKED)
		conv2d_forward_packed(sp, s, x, buf, b, epi, y);
	else
		conv2d_forward_direct(sp, s, x, buf, b, epi, y);
}

void conv2d_forward_fused(ConvCache *c, const ConvShape *s, const float *x,
                          const float *w, const float *b, const float *res,
                          int act, float slope, float *y)
{
	if (s->N == 0)
		return;
	ConvEpi epi = epilogue(res, act, slope, 0);
	OpsScratch *sp = ops_scratch_acquire();
	forward_epi(c, s, conv_algorithm(s), x, w, b, &epi, y, sp);
	ops_scratch_release(sp);
}

// Winograd and direct pool their outputs while they are in registers or
// cache: Tiny Darknet's layers before its four pools wrote and read back
// 4x their pooled size (c1's 205 MB at batch 64), and the pools' pass
// was 9 % of its forward.  The other algorithms run unpooled into a
// buffer and then maxpool2d_forward, whose values the fused pool equals.
void conv2d_forward_fused_maxpool2(ConvCache *c, const ConvShape *s, const float *x,
                                   const float *w, const float *b, int act,
                                   float slope, float *y)
{
	if (s->P % 2 || s->Q % 2)
		die("conv2d_forward_fused_maxpool2: %dx%d outputs: not even", s->P, s->Q);
	if (s->N == 0)
		return;
	int alg = conv_algorithm(s);
	OpsScratch *sp = ops_scratch_acquire();
	if (alg == ALG_WINOGRAD || alg == ALG_DIRECT) {
		ConvEpi epi = epilogue(NULL, act, slope, 2);
		forward_epi(c, s, alg, x, w, b, &epi, y, sp);
		ops_scratch_release(sp);
		return;
	}
	float *full = xmalloc_array((size_t)s->N * s->K * s->P * s->Q, sizeof(float));
	ConvEpi epi = epilogue(NULL, act, slope, 0);
	forward_epi(c, s, alg, x, w, b, &epi, full, sp);
	ops_scratch_release(sp);
	PoolShape ps = pool_shape(s->N, s->K, s->P, s->Q, 2, 2, 0);
	maxpool2d_forward(&ps, full, y, NULL);
	free(full);
}

// A Winograd layer's outputs, still in cache, through the 1x1 layer that
// alone reads them (Tiny Darknet's 16 -> 128 -> 16 at 56x56 and its three
// like pairs): the 128-channel maps (102 MB at batch 64) are neither
// written nor read back.  Other first layers: the two convolutions one
// after the other.  The same values either way, bit for bit.
void conv2d_forward_fused_pointwise(ConvCache *c, const ConvShape *s, const float *x,
                                    const float *w, const float *b, int act,
                                    float slope, ConvCache *c2, int K2,
                                    const float *w2, const float *b2, int act2,
                                    float slope2, float *y)
{
	if (s->N == 0)
		return;
	ConvShape s2 = conv_shape(s->N, s->K, s->P, s->Q, K2, 1, 1, 1, 0);
	int alg = conv_algorithm(s), alg2 = conv_algorithm(&s2);
	if (alg != ALG_WINOGRAD || alg2 != ALG_PACKED) {
		float *mid = xmalloc_array((size_t)s->N * s->K * s->P * s->Q, sizeof(float));
		conv2d_forward_fused(c, s, x, w, b, NULL, act, slope, mid);
		conv2d_forward_fused(c2, &s2, mid, w2, b2, NULL, act2, slope2, y);
		free(mid);
		return;
	}
	OpsScratch *sp = ops_scratch_acquire();
	ConvEpi e2 = epilogue(NULL, act2, slope2, 0);
	ConvPointwise pw = { prepared_weights(c2, &s2, ALG_PACKED, w2, sp, OPS_SLOT_WORK), b2,
	                     K2, e2.on, e2.slope, y };
	ConvEpi epi = epilogue(NULL, act, slope, 0);
	epi.pw = &pw;
	forward_epi(c, s, alg, x, w, b, &epi, NULL, sp);
	ops_scratch_release(sp);
}

void conv_fold_batchnorm(int K, size_t CRS, const float *w, const float *b,
                         const float *gamma, const float *beta,
                         const float *mean, const float *var, float eps,
                         float *wf, float *bf)
{
	for (int k = 0; k < K; k++) {
		// in double, as batchnorm_forward_eval's 1/sqrt is the reference
		double g = gamma[k] / sqrt((double)var[k] + eps);
		for (size_t e = 0; e < CRS; e++)
			wf[k * CRS + e] = (float)(w[k * CRS + e] * g);
		bf[k] = (float)(((b ? b[k] : 0.0) - mean[k]) * g + beta[k]);
	}
}

void conv2d_forward_cached(ConvCache *c, const ConvShape *s, const float *x,
                           const float *w, const float *b, float *y)
{
	conv2d_forward_fused(c, s, x, w, b, NULL, CONV_ACT_NONE, 0.0f, y);
}

void conv2d_forward(const ConvShape *s, const float *x, const float *w,
                    const float *b, float *y)
{
	conv2d_forward_cached(NULL, s, x, w, b, y);
}
