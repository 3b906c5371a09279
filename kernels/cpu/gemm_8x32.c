// The register-blocked product kernel of the forward convolutions
// (Winograd products and packed im2col), on operands packed so that it
// reads both sequentially.
#include <math.h>
#include <string.h>
#include "ops_internal.h"
#ifdef __AVX512F__
#include <immintrin.h>
#endif

// M[k0..k0+8][t0..t0+32] (row stride ldm) = bias + sum over c of
// u[c][0..8] (x) v[c][0..32]: 16 accumulators, 2 loads and 8 broadcasts
// per 16 fused multiply-adds.
void ops_gemm_8x32(int C, const float *u, const float *v, size_t ldv, float *m,
                   size_t ldm, const float *bias)
{
#ifdef __AVX512F__
	__m512 a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15;
	if (bias) {
		a0 = a1 = _mm512_set1_ps(bias[0]);
		a2 = a3 = _mm512_set1_ps(bias[1]);
		a4 = a5 = _mm512_set1_ps(bias[2]);
		a6 = a7 = _mm512_set1_ps(bias[3]);
		a8 = a9 = _mm512_set1_ps(bias[4]);
		a10 = a11 = _mm512_set1_ps(bias[5]);
		a12 = a13 = _mm512_set1_ps(bias[6]);
		a14 = a15 = _mm512_set1_ps(bias[7]);
	} else {
		a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm512_setzero_ps();
		a8 = a9 = a10 = a11 = a12 = a13 = a14 = a15 = a0;
	}
	for (int c = 0; c < C; c++, u += OPS_GEMM_MR, v += ldv) {
		__m512 v0 = _mm512_loadu_ps(v), v1 = _mm512_loadu_ps(v + 16), b;
		b = _mm512_set1_ps(u[0]);
		a0 = _mm512_fmadd_ps(b, v0, a0); a1 = _mm512_fmadd_ps(b, v1, a1);
		b = _mm512_set1_ps(u[1]);
		a2 = _mm512_fmadd_ps(b, v0, a2); a3 = _mm512_fmadd_ps(b, v1, a3);
		b = _mm512_set1_ps(u[2]);
		a4 = _mm512_fmadd_ps(b, v0, a4); a5 = _mm512_fmadd_ps(b, v1, a5);
		b = _mm512_set1_ps(u[3]);
		a6 = _mm512_fmadd_ps(b, v0, a6); a7 = _mm512_fmadd_ps(b, v1, a7);
		b = _mm512_set1_ps(u[4]);
		a8 = _mm512_fmadd_ps(b, v0, a8); a9 = _mm512_fmadd_ps(b, v1, a9);
		b = _mm512_set1_ps(u[5]);
		a10 = _mm512_fmadd_ps(b, v0, a10); a11 = _mm512_fmadd_ps(b, v1, a11);
		b = _mm512_set1_ps(u[6]);
		a12 = _mm512_fmadd_ps(b, v0, a12); a13 = _mm512_fmadd_ps(b, v1, a13);
		b = _mm512_set1_ps(u[7]);
		a14 = _mm512_fmadd_ps(b, v0, a14); a15 = _mm512_fmadd_ps(b, v1, a15);
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
	// fused, as the AVX-512 path and OpenBLAS's kernels are: the same sums
	// in the same order, so a machine without AVX-512 computes the very
	// same numbers (with a multiply and an add rounded apart, ten training
	// steps of tests/train.bats's ResNet18 strayed 100x further from
	// PyTorch's).  fmaf is one instruction where the target has FMA.
	float acc[OPS_GEMM_MR][OPS_GEMM_NR];
	for (int i = 0; i < OPS_GEMM_MR; i++)
		for (int t = 0; t < OPS_GEMM_NR; t++)
			acc[i][t] = bias ? bias[i] : 0.0f;
	for (int c = 0; c < C; c++, u += OPS_GEMM_MR, v += ldv)
		for (int i = 0; i < OPS_GEMM_MR; i++)
			for (int t = 0; t < OPS_GEMM_NR; t++)
				acc[i][t] = fmaf(u[i], v[t], acc[i][t]);
	for (int i = 0; i < OPS_GEMM_MR; i++)
		memcpy(m + i * ldm, acc[i], sizeof acc[i]);
#endif
}

