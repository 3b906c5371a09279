// The fused epilogue of conv2d_forward_fused (ops_internal.h, ConvEpi):
// y = act(y + res) over a range of output pixels, or act then a 2x2 max
// pool over a block of rows.  Its own file so that the
// convolution's algorithms (conv2d.c's column blocks, conv_direct.c) call it
// without calling each other: conv2d.c -> conv_direct.c -> here.
//   y, res: (N, K, P, Q)
#include <stddef.h>
#include "ops.h"
#include "ops_internal.h"
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#ifdef __AVX512F__
// epi_act on 16 lanes
static inline __m512 act16(__m512 v, __m512 slope)
{
	__m512 sv = _mm512_mul_ps(v, slope);
	return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, sv, _CMP_GT_OQ), sv, v);
}

// pool_pick on 16 lanes
static inline __m512 pick16(__m512 m, __m512 v)
{
	__mmask16 take = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) |
	                 (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) &
	                  _mm512_cmp_ps_mask(m, m, _CMP_ORD_Q));
	return _mm512_mask_blend_ps(take, m, v);
}
#endif

// y = act(y + res) over n values (res may be NULL), 16 at a time where the
// build has AVX-512: a plain loop here ran at scalar speed (y and res may
// alias as far as the compiler knows), 16 ms of darknet's first layer.
static void epi_run(float *y, const float *res, size_t n, float slope)
{
	size_t i = 0;
#ifdef __AVX512F__
	const __m512 sl = _mm512_set1_ps(slope);
	for (; i + 16 <= n; i += 16) {
		__m512 v = _mm512_loadu_ps(y + i);
		if (res)
			v = _mm512_add_ps(v, _mm512_loadu_ps(res + i));
		_mm512_storeu_ps(y + i, act16(v, sl));
	}
#endif
	for (; i < n; i++)   // no + 0.0f without res, as the vector lines
		y[i] = epi_act(res ? y[i] + res[i] : y[i], slope);
}

void conv_epilogue_range(const ConvEpi *e, const ConvShape *s, float *y,
                         size_t j0, size_t j1)
{
	const size_t PQ = (size_t)s->P * s->Q, K = (size_t)s->K;
	for (size_t a = j0; a < j1;) {
		size_t n = a / PQ, off = a - n * PQ;
		size_t len = (n + 1) * PQ < j1 ? (n + 1) * PQ - a : j1 - a;
		for (size_t k = 0; k < K; k++)
			epi_run(y + (n * K + k) * PQ + off,
			        e->res ? e->res + (n * K + k) * PQ + off : NULL, len, e->slope);
		a += len;
	}
}

void conv_epilogue_pool2(const ConvEpi *e, int K, int rows, int Q,
                         const float *src, size_t src_cs, float *dst,
                         size_t dst_cs)
{
	const float slope = e->slope;
	const int act = e->on, Q2 = Q / 2;
#ifdef __AVX512F__
	const __m512 sl = _mm512_set1_ps(slope);
	const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20,
	                                       22, 24, 26, 28, 30);
	const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
#endif
	for (int k = 0; k < K; k++)
		for (int r = 0; r + 1 < rows; r += 2) {
			const float *a = src + (size_t)k * src_cs + (size_t)r * Q, *b = a + Q;
			float *o = dst + (size_t)k * dst_cs + (size_t)(r / 2) * Q2;
			int q = 0;
#ifdef __AVX512F__
			// 16 outputs from 32 columns of the two rows: each row's even
			// and odd columns apart, then the window's cells in order
			for (; q < Q2; q += 16) {
				int n = Q2 - q < 16 ? 2 * (Q2 - q) : 32;
				__mmask16 m0 = (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1);
				__mmask16 m1 = (__mmask16)(n > 16 ? (1u << (n - 16)) - 1 : 0);
				__m512 a0 = _mm512_maskz_loadu_ps(m0, a + 2 * q);
				__m512 a1 = _mm512_maskz_loadu_ps(m1, a + 2 * q + 16);
				__m512 b0 = _mm512_maskz_loadu_ps(m0, b + 2 * q);
				__m512 b1 = _mm512_maskz_loadu_ps(m1, b + 2 * q + 16);
				if (act) {
					a0 = act16(a0, sl);
					a1 = act16(a1, sl);
					b0 = act16(b0, sl);
					b1 = act16(b1, sl);
				}
				__m512 m = _mm512_permutex2var_ps(a0, even, a1);
				m = pick16(m, _mm512_permutex2var_ps(a0, odd, a1));
				m = pick16(m, _mm512_permutex2var_ps(b0, even, b1));
				m = pick16(m, _mm512_permutex2var_ps(b0, odd, b1));
				_mm512_mask_storeu_ps(o + q, (__mmask16)((1u << (n / 2)) - 1), m);
			}
#endif
			for (; q < Q2; q++) {
				float v[4] = { a[2 * q], a[2 * q + 1], b[2 * q], b[2 * q + 1] };
				for (int i = 0; act && i < 4; i++)
					v[i] = epi_act(v[i], slope);
				float m = v[0];
				for (int i = 1; i < 4; i++)
					m = pool_pick(m, v[i]);
				o[q] = m;
			}
		}
}
