// The filter gradient of a 3x3 stride-1 convolution of an RGB input (3
// channels: darknet's first layer, 3 -> 16 at 224x224).  The column-block
// path built a 27 x 50176 column matrix per image (5.4 MB, past the L2
// cache) for an sgemm with 16 rows: 81 ms of a 64-image Tiny Darknet step.
// Here, per image, a zero-padded copy of x (3 x (P+2) x Wp, in L2) and, per
// output channel, its 27 sums in 27 vector accumulators over every row of
// dy: dw[k][c][r][t] = sum over n, p, q of dy[n][k][p][q] x[n][c][p+r-pad][q+t-pad].
// Images are split among threads in fixed slices, each with its own partial
// dw, summed in thread order: the same bits for the same threads.
//   x: (N, 3, H, W), dy: (N, K, P, Q), dw: (K, 3, 3, 3), accumulated (+=)
#include <string.h>
#include "libcommon/util/err.h"
#include "libcommon/util/threads.h"
#include "ops.h"
#include "ops_internal.h"
#ifdef __AVX512F__
#include <immintrin.h>
#endif

int conv_backward_filter_c3_applies(const ConvShape *s)
{
#ifdef __AVX512F__
	return s->C == 3 && s->R == 3 && s->S == 3 && s->stride == 1 && s->pad <= 2;
#else
	(void)s;
	return 0;
#endif
}

#ifdef __AVX512F__
typedef struct {
	const ConvShape *s;
	const float *x, *dy;
	float *dwt;             // threads x K*27 partials
	OpsScratch *scratch;
	int Wp;                 // padded row: Q rounded up to 16, + 2, rounded up to 16
} Dw3Job;

// one load into a register, not three folded into the multiply-adds
#define KEEP(v) __asm__("" : "+v"(v))
#define A3(c, r) __m512 a##c##r##0 = _mm512_setzero_ps(), a##c##r##1 = a##c##r##0, \
	a##c##r##2 = a##c##r##0
// x's vector at column offset t of channel c's row i, into the three
// window rows r it meets (dy's rows i - r: g0, g1, g2)
#define F3(c, t) do { __m512 v_ = _mm512_loadu_ps(xi + (size_t)(c) * rows * Wp + (t)); \
	KEEP(v_);                                                                   \
	a##c##0##t = _mm512_fmadd_ps(g0, v_, a##c##0##t);                           \
	a##c##1##t = _mm512_fmadd_ps(g1, v_, a##c##1##t);                           \
	a##c##2##t = _mm512_fmadd_ps(g2, v_, a##c##2##t); } while (0)
#define S3(c, r) do { float *o_ = dk + ((c) * 3 + (r)) * 3;          \
	o_[0] += _mm512_reduce_add_ps(a##c##r##0);                   \
	o_[1] += _mm512_reduce_add_ps(a##c##r##1);                   \
	o_[2] += _mm512_reduce_add_ps(a##c##r##2); } while (0)

// Per output channel k, the padded rows i of x in order, each loaded once
// (9 vectors: 3 channels x 3 column offsets) for the 27 products with dy's
// rows i, i-1, i-2 (a zero row past dy's edges): 12 loads per 27 fused
// multiply-adds.  Summing over dy's rows instead loaded x 27 times, 18 of
// them across cache lines: 31 ms of a 64-image Tiny Darknet step, PyTorch's
// 16.
static void dw3_images(void *ctx, size_t n0, size_t n1, int thread)
{
	Dw3Job *j = ctx;
	const ConvShape *s = j->s;
	const int H = s->H, W = s->W, P = s->P, Q = s->Q, K = s->K, pad = s->pad;
	const int Wp = j->Wp, rows = P + 2;
	float *xp = ops_scratch(j->scratch, thread, (size_t)3 * rows * Wp + (size_t)Wp);
	float *zero = xp + (size_t)3 * rows * Wp;   // a zero row of dy
	memset(zero, 0, sizeof(float) * Wp);
	float *dwp = j->dwt + (size_t)thread * K * 27;
	for (size_t n = n0; n < n1; n++) {
		// xp[c][i][m] = x[n][c][i - pad][m - pad], 0 outside x
		memset(xp, 0, sizeof(float) * 3 * rows * Wp);
		for (int c = 0; c < 3; c++)
			for (int i = 0; i < rows; i++) {
				int ih = i - pad;
				if (ih < 0 || ih >= H)
					continue;
				memcpy(xp + ((size_t)c * rows + i) * Wp + pad,
				       j->x + (((size_t)n * 3 + c) * H + ih) * W, sizeof(float) * W);
			}
		for (int k = 0; k < K; k++) {
			const float *dyk = j->dy + ((size_t)n * K + k) * P * Q;
			A3(0, 0); A3(0, 1); A3(0, 2); A3(1, 0); A3(1, 1); A3(1, 2);
			A3(2, 0); A3(2, 1); A3(2, 2);
			for (int i = 0; i < rows; i++) {
				const float *d0 = i < P ? dyk + (size_t)i * Q : zero;
				const float *d1 = i >= 1 && i - 1 < P ? dyk + (size_t)(i - 1) * Q : zero;
				const float *d2 = i >= 2 ? dyk + (size_t)(i - 2) * Q : zero;
				for (int q = 0; q < Q; q += 16) {
					__mmask16 m = (__mmask16)(Q - q >= 16 ? 0xffff : (1u << (Q - q)) - 1);
					const __m512 g0 = _mm512_maskz_loadu_ps(m, d0 + q);
					const __m512 g1 = _mm512_maskz_loadu_ps(m, d1 + q);
					const __m512 g2 = _mm512_maskz_loadu_ps(m, d2 + q);
					const float *xi = xp + (size_t)i * Wp + q;
					F3(0, 0); F3(0, 1); F3(0, 2); F3(1, 0); F3(1, 1); F3(1, 2);
					F3(2, 0); F3(2, 1); F3(2, 2);
				}
			}
			float *dk = dwp + (size_t)k * 27;
			S3(0, 0); S3(0, 1); S3(0, 2); S3(1, 0); S3(1, 1); S3(1, 2);
			S3(2, 0); S3(2, 1); S3(2, 2);
		}
	}
}
#undef A3
#undef KEEP
#undef F3
#undef S3
#endif

void conv2d_backward_filter_c3(OpsScratch *sp, const ConvShape *s, const float *x,
                               const float *dy, float *dw)
{
#ifdef __AVX512F__
	const size_t KC = (size_t)s->K * 27;
	int T = ops_threads();
	if ((size_t)T > (size_t)s->N)
		T = s->N;
	if (T < 1)
		T = 1;
	Dw3Job j = { .s = s, .x = x, .dy = dy, .scratch = sp };
	j.Wp = ((s->Q + 15) / 16 * 16 + 2 + 15) / 16 * 16;   // column offset 0 aligned
	if (j.Wp < s->W + 2 * s->pad)
		j.Wp = s->W + 2 * s->pad;
	j.dwt = ops_scratch(sp, OPS_SLOT_WEIGHTS, (size_t)T * KC);
	memset(j.dwt, 0, sizeof(float) * T * KC);
	parallel_for((size_t)s->N, T, dw3_images, &j);
	ops_add_partials(dw, j.dwt, T, KC);
#else
	(void)sp; (void)s; (void)x; (void)dy; (void)dw;
	die("conv2d_backward_filter_c3: a build without AVX-512");
#endif
}
