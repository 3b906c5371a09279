// Direct convolution for layers with few input channels (the 7x7 stem and
// darknet's first layer, C = 3), where im2col + sgemm spends most of its
// time building and repacking a tall thin column matrix.  Per output row:
// a block of 16*KV output channels times QB output columns held in
// registers, summed over c, r, s with the weights of the block as vectors
// and the inputs broadcast; the row, (Q x K) in registers' order, is then
// transposed into y.
//   x: (N, C, H, W), w: (K, C, R, S), y: (N, K, P, Q)
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "ops.h"
#include "ops_internal.h"

#ifdef __AVX512F__
#include <immintrin.h>
#endif

#define ROWS 4   // output rows per work item

int conv2d_direct_applies(const ConvShape *s)
{
	return s->C <= 4 && s->K % 16 == 0 && s->R * s->S >= 9;
}

size_t conv_direct_weights_floats(const ConvShape *s)
{
	return (size_t)s->K * s->C * s->R * s->S;
}

// wd[kb][c][r][s][16*KV]: the K channels of block kb side by side
static int kv_of(int K)
{
	return K % 64 == 0 ? 4 : 1;
}

void conv_direct_pack(const ConvShape *s, const float *w, float *wd)
{
	const int CRS = s->C * s->R * s->S, KBW = 16 * kv_of(s->K);
	for (int k = 0; k < s->K; k++)
		for (int e = 0; e < CRS; e++)
			wd[((size_t)(k / KBW) * CRS + e) * KBW + k % KBW] = w[(size_t)k * CRS + e];
}

typedef struct {
	const ConvShape *s;
	const float *x, *wd, *b;
	float *y;
	OpsScratch *scratch;
	const ConvEpi *epi;
	int rowblocks, Wp, Qr, KV, QB;
} DirJob;

// Output columns q0..q0+QB of one row for a block of 16*KV channels,
// summed over c, r, s; xr: padded input at (c = 0, first row of the
// window, column q0*st); out: (Qr, K) row buffer.  The accumulators are
// named variables so that they stay in registers; ISO C forbids
// contracting a*b+c, hence the explicit fused multiply-adds.
#ifdef __AVX512F__
#define FM(a, b, w) a = _mm512_fmadd_ps(b, w, a)
#define Q4(q) do { __m512 b_ = _mm512_set1_ps(xt[(q) * st]);               \
	FM(a##q##0, b_, w0); FM(a##q##1, b_, w1); FM(a##q##2, b_, w2);     \
	FM(a##q##3, b_, w3); } while (0)
#define ST4(q) do { float *o_ = out + (size_t)(q0 + q) * K + kb * 64;      \
	_mm512_storeu_ps(o_, a##q##0); _mm512_storeu_ps(o_ + 16, a##q##1); \
	_mm512_storeu_ps(o_ + 32, a##q##2); _mm512_storeu_ps(o_ + 48, a##q##3); } while (0)
#define Z4(q) __m512 a##q##0 = _mm512_setzero_ps(), a##q##1 = a##q##0, \
	a##q##2 = a##q##0, a##q##3 = a##q##0
#endif

// KV = 4, QB = 6: 24 accumulators, 4 weight loads and 6 broadcasts per
// 24 fused multiply-adds.
static void dir_block64(const DirJob *j, const float *xr, const float *wd,
                        int q0, int kb, float *out)
{
	const ConvShape *s = j->s;
	const int st = s->stride, Hin = ROWS * st + s->R, K = s->K;
#ifdef __AVX512F__
	Z4(0); Z4(1); Z4(2); Z4(3); Z4(4); Z4(5);
	for (int c = 0; c < s->C; c++)
		for (int r = 0; r < s->R; r++) {
			const float *xt = xr + ((size_t)c * Hin + r) * j->Wp;
			for (int t = 0; t < s->S; t++, wd += 64, xt++) {
				__m512 w0 = _mm512_loadu_ps(wd), w1 = _mm512_loadu_ps(wd + 16);
				__m512 w2 = _mm512_loadu_ps(wd + 32), w3 = _mm512_loadu_ps(wd + 48);
				Q4(0); Q4(1); Q4(2); Q4(3); Q4(4); Q4(5);
			}
		}
	ST4(0); ST4(1); ST4(2); ST4(3); ST4(4); ST4(5);
#else
	for (int q = 0; q < 6; q++)
		for (int e = 0; e < 64; e++) {
			const float *wq = wd + e;
			float acc = 0.0f;
			for (int c = 0; c < s->C; c++)
				for (int r = 0; r < s->R; r++) {
					const float *xrow = xr + ((size_t)c * Hin + r) * j->Wp + q * st;
					for (int t = 0; t < s->S; t++, wq += 64)
						acc += xrow[t] * *wq;
				}
			out[(size_t)(q0 + q) * K + kb * 64 + e] = acc;
		}
#endif
}

// KV = 1, QB = 12: 12 accumulators (K = 16, 32, 48...).
static void dir_block16(const DirJob *j, const float *xr, const float *wd,
                        int q0, int kb, float *out)
{
	const ConvShape *s = j->s;
	const int st = s->stride, Hin = ROWS * st + s->R, K = s->K;
#ifdef __AVX512F__
	__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
	       a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
	for (int c = 0; c < s->C; c++)
		for (int r = 0; r < s->R; r++) {
			const float *xt = xr + ((size_t)c * Hin + r) * j->Wp;
			for (int t = 0; t < s->S; t++, wd += 16, xt++) {
				__m512 w = _mm512_loadu_ps(wd);
#define Q1(q) FM(a##q, _mm512_set1_ps(xt[(q) * st]), w)
				Q1(0); Q1(1); Q1(2); Q1(3); Q1(4); Q1(5);
				Q1(6); Q1(7); Q1(8); Q1(9); Q1(10); Q1(11);
#undef Q1
			}
		}
#define S1(q) _mm512_storeu_ps(out + (size_t)(q0 + q) * K + kb * 16, a##q)
	S1(0); S1(1); S1(2); S1(3); S1(4); S1(5); S1(6); S1(7); S1(8); S1(9);
	S1(10); S1(11);
#undef S1
#else
	for (int q = 0; q < 12; q++)
		for (int e = 0; e < 16; e++) {
			const float *wq = wd + e;
			float acc = 0.0f;
			for (int c = 0; c < s->C; c++)
				for (int r = 0; r < s->R; r++) {
					const float *xrow = xr + ((size_t)c * Hin + r) * j->Wp + q * st;
					for (int t = 0; t < s->S; t++, wq += 16)
						acc += xrow[t] * *wq;
				}
			out[(size_t)(q0 + q) * K + kb * 16 + e] = acc;
		}
#endif
}

#ifdef __AVX512F__
// Stride 1, 8 channels (half h of the 16 of block kb): output columns q0 ..
// q0+nq (nq <= 48) of row p, written straight into y (no transposition):
// 24 accumulators (8 channels x 3 vectors of columns); per (c, r, s) three
// input vectors and 8 broadcast weights feed 24 fused multiply-adds, in 28
// of the 32 registers.  Darknet's first layer (3 -> 16 at 224x224) spent as
// long transposing dir_block16's rows into y as computing them.
#define AC(k) __m512 c##k##a = _mm512_setzero_ps(), c##k##b = c##k##a, c##k##c = c##k##a
#define FMK(k) do { __m512 w_ = _mm512_set1_ps(wt[k]);                     \
	c##k##a = _mm512_fmadd_ps(x0, w_, c##k##a);                         \
	c##k##b = _mm512_fmadd_ps(x1, w_, c##k##b);                         \
	c##k##c = _mm512_fmadd_ps(x2, w_, c##k##c); } while (0)
#define STK(k) do { float *o_ = y + (size_t)(k) * cs;                       \
	__m512 b_ = _mm512_set1_ps(b ? b[k] : 0.0f);                         \
	_mm512_mask_storeu_ps(o_, m0, _mm512_add_ps(c##k##a, b_));           \
	_mm512_mask_storeu_ps(o_ + 16, m1, _mm512_add_ps(c##k##b, b_));      \
	_mm512_mask_storeu_ps(o_ + 32, m2, _mm512_add_ps(c##k##c, b_)); } while (0)
static __mmask16 cols_mask(int nq, int from)
{
	return nq >= from + 16 ? 0xffff : nq > from ? (__mmask16)((1u << (nq - from)) - 1) : 0;
}

// y: channel k0 + k at y + k*cs
static void dir_row8x48(const DirJob *j, const float *xr, const float *wd, int nq,
                        const float *b, float *y, size_t cs)
{
	const ConvShape *s = j->s;
	const int Hin = ROWS + s->R;
	const __mmask16 m0 = cols_mask(nq, 0), m1 = cols_mask(nq, 16), m2 = cols_mask(nq, 32);
	AC(0); AC(1); AC(2); AC(3); AC(4); AC(5); AC(6); AC(7);
	for (int c = 0; c < s->C; c++)
		for (int r = 0; r < s->R; r++) {
			const float *xt = xr + ((size_t)c * Hin + r) * j->Wp;
			for (int t = 0; t < s->S; t++, wd += 16) {
				const __m512 x0 = _mm512_loadu_ps(xt + t), x1 = _mm512_loadu_ps(xt + t + 16);
				const __m512 x2 = _mm512_loadu_ps(xt + t + 32);
				const float *wt = wd;
				FMK(0); FMK(1); FMK(2); FMK(3); FMK(4); FMK(5); FMK(6); FMK(7);
			}
		}
	STK(0); STK(1); STK(2); STK(3); STK(4); STK(5); STK(6); STK(7);
}
#undef AC
#undef FMK
#undef STK
#endif

// dir_row8x48 applies: stride 1, channels in blocks of 16 (not of 64,
// which dir_block64 takes)
static int dir_rows_apply(const ConvShape *s)
{
#ifdef __AVX512F__
	return s->stride == 1 && kv_of(s->K) == 1;
#else
	(void)s;
	return 0;
#endif
}

static void dir_item_core(void *ctx, size_t item, size_t item_end, int thread)
{
	(void)item_end;
	DirJob *j = ctx;
	const ConvShape *s = j->s;
	const int C = s->C, H = s->H, W = s->W, K = s->K, P = s->P, Q = s->Q;
	const int st = s->stride, Hin = ROWS * st + s->R, KBW = 16 * j->KV;
	const int CRS = C * s->R * s->S;
	const int n = (int)(item / j->rowblocks), p0 = (int)(item % j->rowblocks) * ROWS;
	const int p1 = p0 + ROWS < P ? p0 + ROWS : P;
	const int pool = j->epi->pool;
	float *xp = ops_scratch(j->scratch, thread, (size_t)C * Hin * j->Wp +
	                        (size_t)j->Qr * K + (pool ? (size_t)K * ROWS * Q : 0));
	float *out = xp + (size_t)C * Hin * j->Wp;
	// pooled: the item's rows (K, ROWS, Q) here, then act and pool into y
	float *rows = pool ? out + (size_t)j->Qr * K : NULL;
	const size_t cs = pool ? (size_t)ROWS * Q : (size_t)P * Q;
	// padded copy of the input rows the item reads: row i of channel c is
	// input row p0*st - pad + i, column 0 is input column -pad
	memset(xp, 0, sizeof(float) * C * Hin * j->Wp);
	for (int c = 0; c < C; c++)
		for (int i = 0; i < Hin; i++) {
			int ih = p0 * st - s->pad + i;
			if (ih < 0 || ih >= H)
				continue;
			memcpy(xp + ((size_t)c * Hin + i) * j->Wp + s->pad,
			       j->x + (((size_t)n * C + c) * H + ih) * W, sizeof(float) * W);
		}
	for (int p = p0; p < p1; p++) {
		const float *xr = xp + (size_t)(p - p0) * st * j->Wp;
#ifdef __AVX512F__
		if (dir_rows_apply(s)) {
			for (int k0 = 0; k0 < K; k0 += 8)
				for (int q0 = 0; q0 < Q; q0 += 48)
					dir_row8x48(j, xr + q0, j->wd + (size_t)(k0 / 16) * CRS * 16 + k0 % 16,
					            Q - q0 < 48 ? Q - q0 : 48, j->b ? j->b + k0 : NULL,
					            (pool ? rows + ((size_t)k0 * ROWS + (p - p0)) * Q
					                  : j->y + (((size_t)n * K + k0) * P + p) * Q) + q0,
					            cs);
			continue;
		}
#endif
		for (int kb = 0; kb < K / KBW; kb++) {
			const float *wd = j->wd + (size_t)kb * CRS * KBW;
			for (int q0 = 0; q0 < Q; q0 += j->QB) {
				const float *xq = xr + (size_t)q0 * st;
				if (j->KV == 4)
					dir_block64(j, xq, wd, q0, kb, out);
				else
					dir_block16(j, xq, wd, q0, kb, out);
			}
		}
		// out (Qr, K) -> y[n][k][p][0..Q) (pooled: rows[k][p - p0])
		for (int k = 0; k < K; k++) {
			float *yk = pool ? rows + ((size_t)k * ROWS + (p - p0)) * Q
			                 : j->y + (((size_t)n * K + k) * P + p) * Q;
			float bk = j->b ? j->b[k] : 0.0f;
			for (int q = 0; q < Q; q++)
				yk[q] = out[(size_t)q * K + k] + bk;
		}
	}
	if (pool) {   // ROWS and P even: whole windows
		const size_t PQ2 = (size_t)(P / 2) * (Q / 2);
		conv_epilogue_pool2(j->epi, K, p1 - p0, Q, rows, cs,
		                    j->y + (size_t)n * K * PQ2 + (size_t)(p0 / 2) * (Q / 2), PQ2);
	}
}

// one item, then its epilogue while the rows are in cache (pooled: in
// dir_item_core, from its buffer of the item's rows)
static void dir_item(void *ctx, size_t item, size_t item_end, int thread)
{
	DirJob *j = ctx;
	dir_item_core(ctx, item, item_end, thread);
	if (j->epi->on && !j->epi->pool) {
		const ConvShape *s = j->s;
		size_t n = item / j->rowblocks;
		int p0 = (int)(item % j->rowblocks) * ROWS;
		int p1 = p0 + ROWS < s->P ? p0 + ROWS : s->P;
		size_t base = n * s->P * s->Q;
		conv_epilogue_range(j->epi, s, j->y, base + (size_t)p0 * s->Q,
		                    base + (size_t)p1 * s->Q);
	}
}

void conv2d_forward_direct(OpsScratch *sp, const ConvShape *s, const float *x,
                           const float *wd, const float *b, const ConvEpi *epi,
                           float *y)
{
	DirJob j = { .s = s, .x = x, .wd = wd, .b = b, .y = y, .epi = epi };
	j.KV = kv_of(s->K);
	j.QB = j.KV == 4 ? 6 : 12;
	j.Qr = (s->Q + j.QB - 1) / j.QB * j.QB;
	// the last block reads up to column (Qr-1)*st + S - 1 of the padded row
	j.Wp = (j.Qr - 1) * s->stride + s->S;
	if (dir_rows_apply(s)) {   // three vectors from each column block's start
		int Q48 = (s->Q + 47) / 48 * 48;
		if (j.Wp < Q48 + s->S - 1)
			j.Wp = Q48 + s->S - 1;
	}
	if (j.Wp < s->W + 2 * s->pad)
		j.Wp = s->W + 2 * s->pad;
	j.rowblocks = (s->P + ROWS - 1) / ROWS;
	j.scratch = sp;
	ops_parallel_dynamic((size_t)s->N * j.rowblocks, ops_threads(), dir_item, &j);
}
