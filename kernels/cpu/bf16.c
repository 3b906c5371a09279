// bfloat16 products with f32 accumulation (train --precision bf16): the
// rounding of f32 operands to bf16, the transformed filters repacked as
// pairs, and the two product kernels of the Winograd paths.  A bf16 keeps
// f32's exponent and 8 of its 24 significand bits, so the product of two is
// exact in f32 and only the sums round; AVX-512 BF16's vdpbf16ps does 32 of
// those multiply-adds (pairs along the reduction) per instruction, twice
// vfmadd231ps's 16 (measured here: 233 against 116 GFLOP/s a core).
// Without AVX-512 BF16 the same sums run as plain loops.
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "libcommon/util/threads.h"
#include "ops.h"
#include "ops_internal.h"
#if defined(__AVX512BF16__) && defined(__AVX512VL__) && defined(__AVX512BW__)
#include <immintrin.h>
#define HAVE_BF16 1
#endif

static int g_bf16;

void ops_set_bf16(int on)
{
	g_bf16 = on != 0;
}

int ops_bf16(void)
{
	return g_bf16;
}

// As vcvtneps2bf16: round to nearest even, denormals to signed zero, NaNs
// kept quiet.
uint16_t ops_bf16_round(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	if ((u & 0x7f800000u) == 0)
		return (uint16_t)((u >> 16) & 0x8000u);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x40u);
	u += 0x7fffu + ((u >> 16) & 1u);
	return (uint16_t)(u >> 16);
}

float ops_bf16_float(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

void ops_f32_to_bf16(const float *x, size_t n, uint16_t *y)
{
	size_t i = 0;
#ifdef HAVE_BF16
	for (; i + 16 <= n; i += 16)
		_mm256_storeu_si256((__m256i *)(y + i),
		                    (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
#endif
	for (; i < n; i++)
		y[i] = ops_bf16_round(x[i]);
}

void wino_pair_bf16(const float *lo, const float *hi, uint16_t *out)
{
#ifdef HAVE_BF16
	// cvtne2ps: hi's 16 above lo's; the permute interleaves them
	static const uint16_t ix[32] = { 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21,
	                                 6, 22, 7, 23, 8, 24, 9, 25, 10, 26, 11, 27,
	                                 12, 28, 13, 29, 14, 30, 15, 31 };
	const __m512i inter = _mm512_loadu_si512(ix);
	__m512i h = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(hi), _mm512_loadu_ps(lo));
	_mm512_storeu_si512(out, _mm512_permutexvar_epi16(inter, h));
#else
	for (int l = 0; l < 16; l++) {
		out[2 * l] = ops_bf16_round(lo[l]);
		out[2 * l + 1] = ops_bf16_round(hi[l]);
	}
#endif
}

// ---- transformed filters as pairs ------------------------------------------------

size_t wino_filter_bf16_halfs(int K, int C)
{
	return (size_t)36 * ((K + OPS_GEMM_MR - 1) / OPS_GEMM_MR) * ((C + 1) / 2) * 16;
}

typedef struct {
	int C;
	const float *U;
	uint16_t *Ub;
} PairJob;

// Block b of U (one plane's 8 output channels, (C, 8)) -> (C2, 8, 2): rows
// c and c + 1 interleaved, a zero row after an odd C.
static void pair_slice(void *ctx, size_t b0, size_t b1, int thread)
{
	(void)thread;
	const PairJob *j = ctx;
	const int C = j->C, C2 = (C + 1) / 2;
	for (size_t b = b0; b < b1; b++) {
		const float *u = j->U + b * C * 8;
		uint16_t *o = j->Ub + b * C2 * 16;
		int c2 = 0;
#ifdef HAVE_BF16
		const __m256i inter = _mm256_setr_epi16(0, 8, 1, 9, 2, 10, 3, 11,
		                                        4, 12, 5, 13, 6, 14, 7, 15);
		for (; 2 * c2 + 1 < C; c2++) {   // rows 2c2, 2c2+1: 16 floats in a row
			__m256i h = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(u + 2 * c2 * 8));
			_mm256_storeu_si256((__m256i *)(o + c2 * 16),
			                    _mm256_permutexvar_epi16(inter, h));
		}
#endif
		for (; c2 < C2; c2++)
			for (int i = 0; i < 8; i++)
				for (int h = 0; h < 2; h++) {
					int c = 2 * c2 + h;
					o[c2 * 16 + i * 2 + h] = c < C ? ops_bf16_round(u[c * 8 + i]) : 0;
				}
	}
}

void wino_filter_to_bf16(int K, int C, const float *U, uint16_t *Ub)
{
	PairJob j = { C, U, Ub };
	size_t blocks = (size_t)36 * ((K + OPS_GEMM_MR - 1) / OPS_GEMM_MR);
	parallel_for(blocks, ops_threads_for(blocks, 16.0 * C), pair_slice, &j);
}

// ---- the 8 x 32 kernel of the forward and data-gradient products ---------------

// m[i][j] = sum over c2 < C2, h < 2 of u[c2][i][h] v[c2][j][h], i < 8, j < 32
//   u: (C2, 8, 2), v: (C2, ldv) rows of (32, 2), m: (8, ldm)
void ops_gemm_8x32_bf16_ref(int C2, const uint16_t *u, const uint16_t *v,
                            size_t ldv, float *m, size_t ldm, int acc)
{
	for (int i = 0; i < 8; i++)
		for (int t = 0; t < 32; t++) {
			float s = 0.0f;
			for (int c2 = 0; c2 < C2; c2++) {
				const uint16_t *uu = u + (size_t)c2 * 16 + i * 2;
				const uint16_t *vv = v + (size_t)c2 * ldv + t * 2;
				// products of bf16 are exact in f32: fmaf rounds the sum only
				s = fmaf(ops_bf16_float(uu[1]), ops_bf16_float(vv[1]), s);
				s = fmaf(ops_bf16_float(uu[0]), ops_bf16_float(vv[0]), s);
			}
			m[(size_t)i * ldm + t] = s + (acc ? m[(size_t)i * ldm + t] : 0.0f);
		}
}

void ops_gemm_8x32_bf16(int C2, const uint16_t *u, const uint16_t *v, size_t ldv,
                        float *m, size_t ldm, int acc)
{
#ifdef HAVE_BF16
	__m512 a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15;
	if (acc) {
#define LD2(i, x, y) x = _mm512_loadu_ps(m + (i) * ldm); y = _mm512_loadu_ps(m + (i) * ldm + 16)
		LD2(0, a0, a1); LD2(1, a2, a3); LD2(2, a4, a5); LD2(3, a6, a7);
		LD2(4, a8, a9); LD2(5, a10, a11); LD2(6, a12, a13); LD2(7, a14, a15);
#undef LD2
	} else {
		a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm512_setzero_ps();
		a8 = a9 = a10 = a11 = a12 = a13 = a14 = a15 = a0;
	}
	for (int c2 = 0; c2 < C2; c2++, u += 16, v += ldv) {
		__m512bh v0 = (__m512bh)_mm512_loadu_si512(v);
		__m512bh v1 = (__m512bh)_mm512_loadu_si512(v + 32), b;
		const int32_t *p = (const int32_t *)(const void *)u;
#define DP2(i, x, y) b = (__m512bh)_mm512_set1_epi32(p[i]);                  \
		x = _mm512_dpbf16_ps(x, b, v0); y = _mm512_dpbf16_ps(y, b, v1)
		DP2(0, a0, a1); DP2(1, a2, a3); DP2(2, a4, a5); DP2(3, a6, a7);
		DP2(4, a8, a9); DP2(5, a10, a11); DP2(6, a12, a13); DP2(7, a14, a15);
#undef DP2
	}
	_mm512_storeu_ps(m + 0 * ldm, a0); _mm512_storeu_ps(m + 0 * ldm + 16, a1);
	_mm512_storeu_ps(m + 1 * ldm, a2); _mm512_storeu_ps(m + 1 * ldm + 16, a3);
	_mm512_storeu_ps(m + 2 * ldm, a4); _mm512_storeu_ps(m + 2 * ldm + 16, a5);
	_mm512_storeu_ps(m + 3 * ldm, a6); _mm512_storeu_ps(m + 3 * ldm + 16, a7);
	_mm512_storeu_ps(m + 4 * ldm, a8); _mm512_storeu_ps(m + 4 * ldm + 16, a9);
	_mm512_storeu_ps(m + 5 * ldm, a10); _mm512_storeu_ps(m + 5 * ldm + 16, a11);
	_mm512_storeu_ps(m + 6 * ldm, a12); _mm512_storeu_ps(m + 6 * ldm + 16, a13);
	_mm512_storeu_ps(m + 7 * ldm, a14); _mm512_storeu_ps(m + 7 * ldm + 16, a15);
#else
	ops_gemm_8x32_bf16_ref(C2, u, v, ldv, m, ldm, acc);
#endif
}

void ops_pack_words(const uint32_t *s, int rows, size_t W, int blk, uint32_t *d)
{
	for (int r0 = 0; r0 < rows; r0 += 8) {
		const size_t b = (size_t)(r0 / blk), ro = (size_t)(r0 % blk);
		for (size_t p0 = 0; p0 < W; p0 += 8) {
#ifdef __AVX512F__
			__m256 x[8];
			for (int i = 0; i < 8; i++)
				x[i] = _mm256_loadu_ps((const float *)(const void *)(s + (r0 + i) * W + p0));
			ops_tr8x8(x);
			for (int q = 0; q < 8; q++)
				_mm256_storeu_ps((float *)(void *)(d + (b * W + p0 + q) * blk + ro), x[q]);
#else
			for (int i = 0; i < 8; i++)
				for (int q = 0; q < 8; q++)
					d[(b * W + p0 + q) * blk + ro + i] = s[(r0 + i) * W + p0 + q];
#endif
		}
	}
}

void ops_pack_pairs(const uint16_t *src, int rows, int n, int blk, uint16_t *dst)
{
	ops_pack_words((const uint32_t *)(const void *)src, rows, (size_t)n / 2, blk,
	               (uint32_t *)(void *)dst);
}

// ---- the 4 x 4 dot kernel of the filter gradient's products ---------------------

// c[r][q] += sum over t < n of a[r][t] b[q][t], r, q < 4
//   a: (4, lda), b: (4, ldb) bf16 rows, c: (4, ldc); n even
void ops_dot4x4_bf16_ref(int n, const uint16_t *a, size_t lda, const uint16_t *b,
                         size_t ldb, float *c, size_t ldc)
{
	for (int r = 0; r < 4; r++)
		for (int q = 0; q < 4; q++) {
			float acc = 0.0f;
			for (int t = 0; t < n; t++)
				acc = fmaf(ops_bf16_float(a[(size_t)r * lda + t]),
				           ops_bf16_float(b[(size_t)q * ldb + t]), acc);
			c[(size_t)r * ldc + q] += acc;
		}
}

#ifdef HAVE_BF16
// The 16 vectors' sums, lane 4r + q of the result = sum of s[4r + q]: pairs
// within 128-bit lanes, then quadruples, then across the lanes.
static inline __m512 hsum16(const __m512 s[16])
{
	__m512 t[8], u[4];
	for (int i = 0; i < 8; i++)
		t[i] = _mm512_add_ps(_mm512_unpacklo_ps(s[2 * i], s[2 * i + 1]),
		                     _mm512_unpackhi_ps(s[2 * i], s[2 * i + 1]));
	for (int i = 0; i < 4; i++) {
		__m512d x = _mm512_castps_pd(t[2 * i]), y = _mm512_castps_pd(t[2 * i + 1]);
		u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
		                     _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
	}
	__m512 v01 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x44),
	                           _mm512_shuffle_f32x4(u[0], u[1], 0xEE));
	__m512 v23 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x44),
	                           _mm512_shuffle_f32x4(u[2], u[3], 0xEE));
	return _mm512_add_ps(_mm512_shuffle_f32x4(v01, v23, 0x88),
	                     _mm512_shuffle_f32x4(v01, v23, 0xDD));
}
#endif

// n a multiple of 32 (the Winograd filter gradient's rows; others go to the
// plain loop)
void ops_dot4x4_bf16(int n, const uint16_t *a, size_t lda, const uint16_t *b,
                     size_t ldb, float *c, size_t ldc)
{
#ifdef HAVE_BF16
	if (n % 32 == 0) {
		__m512 s[16];
		for (int i = 0; i < 16; i++)
			s[i] = _mm512_setzero_ps();
		for (int t = 0; t < n; t += 32) {
			__m512bh x0 = (__m512bh)_mm512_loadu_si512(a + t);
			__m512bh x1 = (__m512bh)_mm512_loadu_si512(a + lda + t);
			__m512bh x2 = (__m512bh)_mm512_loadu_si512(a + 2 * lda + t);
			__m512bh x3 = (__m512bh)_mm512_loadu_si512(a + 3 * lda + t);
			for (int q = 0; q < 4; q++) {
				__m512bh y = (__m512bh)_mm512_loadu_si512(b + q * ldb + t);
				s[0 + q] = _mm512_dpbf16_ps(s[0 + q], x0, y);
				s[4 + q] = _mm512_dpbf16_ps(s[4 + q], x1, y);
				s[8 + q] = _mm512_dpbf16_ps(s[8 + q], x2, y);
				s[12 + q] = _mm512_dpbf16_ps(s[12 + q], x3, y);
			}
		}
		float o[16];
		_mm512_storeu_ps(o, hsum16(s));
		for (int i = 0; i < 4; i++)
			for (int q = 0; q < 4; q++)
				c[(size_t)i * ldc + q] += o[4 * i + q];
		return;
	}
#endif
	ops_dot4x4_bf16_ref(n, a, lda, b, ldb, c, ldc);
}

// dU (M, N) += A (M, n) . B (N, n)^T over bf16 rows, in 4 x 4 blocks; the
// edges of M and N not a multiple of 4 by the plain loop, one row or column
// at a time
void ops_gemm_nt_bf16(int M, int N, int n, const uint16_t *A, size_t lda,
                      const uint16_t *B, size_t ldb, float *C, size_t ldc)
{
	int M4 = M / 4 * 4, N4 = N / 4 * 4;
	for (int i = 0; i < M4; i += 4)
		for (int q = 0; q < N4; q += 4)
			ops_dot4x4_bf16(n, A + (size_t)i * lda, lda, B + (size_t)q * ldb, ldb,
			                C + (size_t)i * ldc + q, ldc);
	for (int i = 0; i < M; i++)
		for (int q = i < M4 ? N4 : 0; q < N; q++) {
			float acc = 0.0f;
			for (int t = 0; t < n; t++)
				acc = fmaf(ops_bf16_float(A[(size_t)i * lda + t]),
				           ops_bf16_float(B[(size_t)q * ldb + t]), acc);
			C[(size_t)i * ldc + q] += acc;
		}
}
