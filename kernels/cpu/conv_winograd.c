// Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2015; points 0, +-1, +-2,
// inf): Y = A^T [ (G g G^T) (.) (B^T d B) ] A per 6x6 input tile and 4x4
// output tile, i.e. 36 multiplies per 16 outputs instead of 144.  The
// elementwise products summed over channels become 36 matrix products
//   M[xi]: (K, T) = U[xi]: (K, C) . V[xi]: (C, T)
// over a chunk of T tiles (a run of the N x TH x TW tiles of the batch, so
// the products are large even for 7x7 images).  Our own AVX-512 kernel does
// them, on operands laid out the way it reads them, so nothing is repacked:
//   U: (36, K/8, C, 8)  transformed filters, computed once per weights when
//                       the caller keeps them (ConvCache)
//   V: (36, T/32, C, 32) transformed inputs of the chunk
//   M: (36, K8, T)       products, K8 = K rounded up to 8
//   x: (N, C, H, W), w: (K, C, 3, 3), y: (N, K, P, Q) (pooled: P/2, Q/2)
// Accuracy: the transforms add rounding (factors up to 8 and 1/24); against
// the double reference the error is a few 1e-6 relative to max|y| (see
// test_ops.c), about 10x the direct sgemm path's.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "ops.h"
#include "ops_internal.h"
#include "libcommon/util/threads.h"
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#define PF_DIST 1        // channels ahead that the input transform prefetches
#define KB OPS_GEMM_MR   // output channels per kernel row block
#define TB OPS_GEMM_NR   // tiles per kernel column block

static int round_up(int v, int m)
{
	return (v + m - 1) / m * m;
}

size_t wino_filter_floats(int K, int C)
{
	return (size_t)36 * round_up(K, KB) * C;
}

// U[xi][k/8][c][k%8] = (G g G^T)[i][j], xi = 6i + j; rows k >= K are 0.
// Filter (k, c) tap e is w[k*sk + c*sc + e] (flip: tap 8 - e, the filter
// rotated by 180 degrees): the plain layout (K, C, 3, 3) or, for the data
// gradient, the transposed one read in place.  Vectorised over 16 input
// channels at a time; blocks of 8 output channels shared among threads,
// each finished in a small buffer and copied to U as whole runs of 16 x 8
// floats (writing U element by element at stride 8 across 36 planes cost
// 20 ms for 512 x 512 filters).
typedef struct {
	int K, C, flip;
	int stream;   // U larger than the cache: non-temporal stores
	size_t sk, sc;
	const float *w;
	float *U;
} FiltJob;

const float wino_G[6][3] = {
	{ 1.0f / 4, 0, 0 },
	{ -1.0f / 6, -1.0f / 6, -1.0f / 6 },
	{ -1.0f / 6, 1.0f / 6, -1.0f / 6 },
	{ 1.0f / 24, 1.0f / 12, 1.0f / 6 },
	{ 1.0f / 24, -1.0f / 12, 1.0f / 6 },
	{ 0, 0, 1 },
};

#ifdef __AVX512F__

// Block kb of 8 output channels, channels c0 .. c0+L-1: the taps gathered
// 16 channels at a time, the plain loop's products and sums in its order
// (the same values), then per plane an 8 x 16 transposition into U's runs.
static void filter_block(const FiltJob *f, size_t kb, int c0, int L)
{
	const size_t KC = (size_t)round_up(f->K, KB) * f->C;
	const __mmask16 m = (__mmask16)(L >= 16 ? 0xFFFF : (1u << L) - 1);
	const __m512i ix = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7,
	        8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)f->sc));
	_Alignas(64) float tmp[36][KB][16];   // [xi][k % 8][channel]
	for (int kk = 0; kk < KB; kk++) {
		size_t k = kb * KB + kk;
		if (k >= (size_t)f->K) {
			for (int xi = 0; xi < 36; xi++)
				_mm512_store_ps(tmp[xi][kk], _mm512_setzero_ps());
			continue;
		}
		const float *base = f->w + k * f->sk + (size_t)c0 * f->sc;
		__m512 g[9];
		for (int e = 0; e < 9; e++)
			g[e] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, ix,
			                                base + (f->flip ? 8 - e : e), 4);
		for (int i = 0; i < 6; i++) {
			__m512 t[3];   // (G g)[i][jj]
			for (int jj = 0; jj < 3; jj++)
				t[jj] = _mm512_add_ps(_mm512_add_ps(
				        _mm512_mul_ps(_mm512_set1_ps(wino_G[i][0]), g[jj]),
				        _mm512_mul_ps(_mm512_set1_ps(wino_G[i][1]), g[3 + jj])),
				        _mm512_mul_ps(_mm512_set1_ps(wino_G[i][2]), g[6 + jj]));
			for (int jx = 0; jx < 6; jx++)
				_mm512_store_ps(tmp[i * 6 + jx][kk], _mm512_add_ps(_mm512_add_ps(
				        _mm512_mul_ps(t[0], _mm512_set1_ps(wino_G[jx][0])),
				        _mm512_mul_ps(t[1], _mm512_set1_ps(wino_G[jx][1]))),
				        _mm512_mul_ps(t[2], _mm512_set1_ps(wino_G[jx][2]))));
		}
	}
	for (int xi = 0; xi < 36; xi++) {
		float *out = f->U + xi * KC + (kb * f->C + c0) * KB;
		for (int h = 0; h < 2 && 8 * h < L; h++) {
			__m256 r[8];
			for (int kk = 0; kk < KB; kk++)
				r[kk] = _mm256_load_ps(tmp[xi][kk] + 8 * h);
			ops_tr8x8(r);
			for (int c = 0; c < 8 && 8 * h + c < L; c++)
				if (f->stream)
					_mm256_stream_ps(out + (size_t)(8 * h + c) * KB, r[c]);
				else
					_mm256_storeu_ps(out + (size_t)(8 * h + c) * KB, r[c]);
		}
	}
}
#endif

static void filter_slice(void *ctx, size_t kb0, size_t kb1, int thread)
{
	(void)thread;
	typedef float f16 __attribute__((vector_size(64)));
	FiltJob *f = ctx;
	const int C = f->C;
	const size_t KC = (size_t)round_up(f->K, KB) * C;
	for (size_t kb = kb0; kb < kb1; kb++)
		for (int c0 = 0; c0 < C; c0 += 16) {
			int L = C - c0 < 16 ? C - c0 : 16;
#ifdef __AVX512F__
			filter_block(f, kb, c0, L);
			continue;
#endif
			float tmp[36][16][KB];   // [xi][channel][k % 8] of one block
			for (int kk = 0; kk < KB; kk++) {
				size_t k = kb * KB + kk;
				if (k >= (size_t)f->K) {
					for (int xi = 0; xi < 36; xi++)
						for (int l = 0; l < 16; l++)
							tmp[xi][l][kk] = 0.0f;
					continue;
				}
				float gt[9][16] = { { 0 } };   // g[e] for 16 channels
				for (int l = 0; l < L; l++)
					for (int e = 0; e < 9; e++)
						gt[e][l] = f->w[k * f->sk + (size_t)(c0 + l) * f->sc +
						                (size_t)(f->flip ? 8 - e : e)];
				f16 g[9];
				for (int e = 0; e < 9; e++)
					memcpy(&g[e], gt[e], sizeof(f16));
				for (int i = 0; i < 6; i++) {
					f16 t[3];   // (G g)[i][jj]
					for (int jj = 0; jj < 3; jj++)
						t[jj] = wino_G[i][0] * g[jj] + wino_G[i][1] * g[3 + jj] + wino_G[i][2] * g[6 + jj];
					for (int jx = 0; jx < 6; jx++) {
						f16 u = t[0] * wino_G[jx][0] + t[1] * wino_G[jx][1] + t[2] * wino_G[jx][2];
						float ub[16];
						memcpy(ub, &u, sizeof ub);
						for (int l = 0; l < 16; l++)
							tmp[i * 6 + jx][l][kk] = ub[l];
					}
				}
			}
			for (int xi = 0; xi < 36; xi++)
				memcpy(f->U + xi * KC + (kb * C + c0) * KB, tmp[xi],
				       sizeof(float) * L * KB);
		}
	if (f->stream)
		ops_stream_fence();
}

static void filter_transform(FiltJob *f)
{
	size_t nkb = (size_t)round_up(f->K, KB) / KB;
	// ResNet34's layer4 filters, 37.7 MB transformed, are read from memory
	// by the products whatever the stores; stored through the cache they
	// were read in first (6.8 -> 6.3 ms on 2 threads).  Every run starts
	// at a multiple of 8 floats (KB) of U.
	f->stream = wino_filter_floats(f->K, f->C) * sizeof(float) > ((size_t)16 << 20) &&
	            ((uintptr_t)f->U & 31) == 0;
	parallel_for(nkb, ops_threads_for(nkb, 3200.0 * f->C), filter_slice, f);
}

void wino_filter_transform(int K, int C, const float *w, float *U)
{
	FiltJob f = { .K = K, .C = C, .sk = (size_t)C * 9, .sc = 9, .w = w, .U = U };
	filter_transform(&f);
}

// The data gradient's filters: output channel c, input channel k, tap e
// = w[k][c][8 - e], read in place (a transposed copy first took longer
// than the transform).
void wino_filter_transform_flipped(int K, int C, const float *w, float *U)
{
	FiltJob f = { .K = C, .C = K, .flip = 1, .sk = 9, .sc = (size_t)C * 9,
	              .w = w, .U = U };
	filter_transform(&f);
}

// 16 tiles side by side: the transforms run on vectors across tiles.
typedef float v16 __attribute__((vector_size(64)));
#define VL 16

// Unaligned loads and stores as macros: no vector crosses a function call
// (its ABI depends on -mavx512f, which the sanitizer build lacks).
typedef float v16u __attribute__((vector_size(64), aligned(4), may_alias));
#define vld(p) (*(const v16u *)(p))
#define vst(p, v) (*(v16u *)(p) = (v))

// B^T (6x6) applied to d0..d5, giving o0..o5
#define BT6(d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5) do {      \
	o0 = 4 * (d0) - 5 * (d2) + (d4);                                \
	o1 = -4 * (d1) - 4 * (d2) + (d3) + (d4);                        \
	o2 = 4 * (d1) - 4 * (d2) - (d3) + (d4);                         \
	o3 = -2 * (d1) - (d2) + 2 * (d3) + (d4);                        \
	o4 = 2 * (d1) - (d2) - 2 * (d3) + (d4);                         \
	o5 = 4 * (d1) - 5 * (d3) + (d5);                                \
} while (0)

// A^T (4x6) applied to m0..m5, giving o0..o3
#define AT4(m0, m1, m2, m3, m4, m5, o0, o1, o2, o3) do {               \
	v16 s1_ = (m1) + (m2), d1_ = (m1) - (m2);                      \
	v16 s2_ = (m3) + (m4), d2_ = (m3) - (m4);                      \
	o0 = (m0) + s1_ + s2_;                                          \
	o1 = d1_ + 2 * d2_;                                             \
	o2 = s1_ + 4 * s2_;                                             \
	o3 = d1_ + 8 * d2_ + (m5);                                      \
} while (0)

// Pooled (ConvEpi.pool): the activation, then the 2x2 maxima of each
// tile's 4x4 outputs (tiles start at multiples of 4 and P, Q are even, so
// every window lies in one tile), on vectors across the 16 tiles of o,
// each window's cells in maxpool2d_forward's order; then each tile's
// pooled 2x2 (fewer at the bottom and right edges) into y (N, K, P/2,
// Q/2).  Macros, as vld: no vector crosses a call.
typedef int32_t v16i __attribute__((vector_size(64)));
#define VSEL(m, a, b) ((v16)(((v16i)(a) & (m)) | ((v16i)(b) & ~(m))))
#define VACT(v) do { v16 s_ = (v) * j->epi->slope; v = VSEL((v) > s_, (v), s_); } while (0)
#define VPICK(m, v) m = VSEL(((v) > (m)) | (((v) != (v)) & ((m) == (m))), (v), (m))
#define WINO_POOL_STORE(k) do {                                                   \
	float pv_[4 * VL];                                                        \
	for (int w_ = 0; w_ < 4; w_++) {   /* window (w_/2, w_%2) of each tile */ \
		const float *c_ = o + ((w_ / 2) * 8 + (w_ % 2) * 2) * VL;          \
		v16 m_ = vld(c_), v1_ = vld(c_ + VL), v2_ = vld(c_ + 4 * VL);      \
		v16 v3_ = vld(c_ + 5 * VL);                                        \
		if (j->epi->on) {                                                 \
			VACT(m_); VACT(v1_); VACT(v2_); VACT(v3_);                \
		}                                                                 \
		VPICK(m_, v1_); VPICK(m_, v2_); VPICK(m_, v3_);                   \
		vst(pv_ + w_ * VL, m_);                                           \
	}                                                                         \
	const int P2_ = P / 2, Q2_ = Q / 2;                                       \
	for (int l_ = 0; l_ < L; l_++) {                                          \
		float *y_ = j->y + ((size_t)n[l_] * K + (k)) * P2_ * Q2_ +       \
		            (size_t)(oh[l_] / 2) * Q2_ + ow[l_] / 2;              \
		int na_ = P - oh[l_] < 4 ? 1 : 2, nb_ = Q - ow[l_] < 4 ? 1 : 2;  \
		for (int a_ = 0; a_ < na_; a_++)                                  \
			for (int b_ = 0; b_ < nb_; b_++)                          \
				y_[a_ * Q2_ + b_] = pv_[(a_ * 2 + b_) * VL + l_]; \
	}                                                                         \
} while (0)

typedef struct {
	const ConvShape *s;
	const float *x, *b, *U;
	const uint16_t *Ub;   // U as bf16 pairs (ops_bf16), or NULL
	float *y;
	OpsScratch *scratch;
	const ConvEpi *epi;
	int TH, TW;
	size_t ntiles, chunk;   // tiles in all, tiles per chunk (multiple of TB)
} WinoJob;

// Tile t (global, over N x TH x TW) -> image and top-left output corner.
static inline void tile_pos(int TH, int TW, size_t t, int *n, int *oh, int *ow)
{
	size_t per = (size_t)TH * TW;
	*n = (int)(t / per);
	int r = (int)(t % per);
	*oh = 4 * (r / TW);
	*ow = 4 * (r % TW);
}

// The input transform of tiles tb + g .. tb + g + 15 (those past T are
// zeros): V[xi][c][t] = (B^T d B)[xi] for every channel, into V with row
// length Tr, 36 planes of C * Tr values, in one of WinoVLayout's layouts.
static void input_group(const ConvShape *s, const float *x, int TH, int TW,
                        size_t tb, int T, int g, float *V, int Tr, WinoVLayout layout)
{
	const int C = s->C, H = s->H, W = s->W;
	const size_t CT = (size_t)C * Tr;
	const int plain = layout == V_PLAIN, cached = layout == V_PLAIN_CACHED;
	const int bf = layout == V_BLOCKED_BF16 || layout == V_PLAIN_BF16;
	float d[36 * VL];   // gathered 6x6 inputs of 16 tiles: [r*6+i][tile]
	float ob[36 * VL];  // bf16 layouts: the 36 planes of a channel, and
	float ev[36 * VL];  // the even channel of a pair
	int n[VL], ih0[VL], iw0[VL], inside[VL];
	for (int l = 0; l < VL; l++) {
		if (g + l < T) {
			int oh, ow;
			tile_pos(TH, TW, tb + g + l, &n[l], &oh, &ow);
			ih0[l] = oh - s->pad;
			iw0[l] = ow - s->pad;
			inside[l] = ih0[l] >= 0 && iw0[l] >= 0 &&
			            ih0[l] + 6 <= H && iw0[l] + 6 <= W;
		} else {
			n[l] = -1;
			inside[l] = 0;
		}
	}
#ifdef __AVX512F__
	// Per tile l and window row r: where the row's 6 (of 8 loaded)
	// values start relative to channel c's plane of image 0, and
	// which of them are inside the image (a load mask; 0 for rows
	// outside and for lanes past the chunk).  Masked-off lanes are
	// never read, so starts before or after x are harmless.
	ptrdiff_t roff[VL];
	__mmask16 rm[6][VL];
	for (int l = 0; l < VL; l++) {
		roff[l] = n[l] < 0 ? 0 : (ptrdiff_t)n[l] * C * H * W +
		          (ptrdiff_t)ih0[l] * W + iw0[l];
		unsigned cm = 0;
		for (int i = 0; i < 6; i++)
			if (n[l] >= 0 && iw0[l] + i >= 0 && iw0[l] + i < W)
				cm |= 1u << i;
		for (int r = 0; r < 6; r++) {
			int ih = ih0[l] + r;
			rm[r][l] = (__mmask16)(ih >= 0 && ih < H ? cm : 0);
		}
	}
	const __m512i lo_idx = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19,
	                                         8, 9, 10, 11, 24, 25, 26, 27);
	const __m512i hi_idx = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23,
	                                         12, 13, 14, 15, 28, 29, 30, 31);
#endif
	for (int c = 0; c < C; c++) {
#ifdef __AVX512F__
		// Row r of the 16 windows: zmm m holds tile m's 8 values in
		// its low half and tile m+8's in its high half; an 8x8
		// transpose inside each half (unpack, shuffle, then 128-bit
		// lanes by permutex2var) leaves value i of all 16 tiles in
		// one vector (gathers are several times slower here).
		const uintptr_t xc = (uintptr_t)(x + (size_t)c * H * W);
		if (c + PF_DIST < C) {   // a later channel's rows: hide memory latency
			const uintptr_t xn = xc + (uintptr_t)PF_DIST * H * W * 4;
			for (int l = 0; l < VL; l += 2)
				if (n[l] >= 0)
					for (int r = 0; r < 6; r++)
						_mm_prefetch((const char *)(xn + (roff[l] + (ptrdiff_t)r * W) * 4),
						             _MM_HINT_T0);
		}
		for (int r = 0; r < 6; r++) {
			__m512 z[8];
			for (int m = 0; m < 8; m++) {
				const float *p0 = (const float *)(xc + (roff[m] + (ptrdiff_t)r * W) * 4);
				const float *p1 = (const float *)(xc + (roff[m + 8] + (ptrdiff_t)r * W - 8) * 4);
				__m512 v = _mm512_maskz_loadu_ps(rm[r][m], p0);
				z[m] = _mm512_mask_loadu_ps(v, (__mmask16)(rm[r][m + 8] << 8), p1);
			}
			__m512 t0 = _mm512_unpacklo_ps(z[0], z[1]), t1 = _mm512_unpackhi_ps(z[0], z[1]);
			__m512 t2 = _mm512_unpacklo_ps(z[2], z[3]), t3 = _mm512_unpackhi_ps(z[2], z[3]);
			__m512 t4 = _mm512_unpacklo_ps(z[4], z[5]), t5 = _mm512_unpackhi_ps(z[4], z[5]);
			__m512 t6 = _mm512_unpacklo_ps(z[6], z[7]), t7 = _mm512_unpackhi_ps(z[6], z[7]);
			__m512 s0 = _mm512_shuffle_ps(t0, t2, 0x44), s1 = _mm512_shuffle_ps(t0, t2, 0xEE);
			__m512 s2 = _mm512_shuffle_ps(t1, t3, 0x44), s3 = _mm512_shuffle_ps(t1, t3, 0xEE);
			__m512 s4 = _mm512_shuffle_ps(t4, t6, 0x44), s5 = _mm512_shuffle_ps(t4, t6, 0xEE);
			__m512 s6 = _mm512_shuffle_ps(t5, t7, 0x44), s7 = _mm512_shuffle_ps(t5, t7, 0xEE);
			float *dr = d + r * 6 * VL;
			_mm512_storeu_ps(dr + 0 * VL, _mm512_permutex2var_ps(s0, lo_idx, s4));
			_mm512_storeu_ps(dr + 1 * VL, _mm512_permutex2var_ps(s1, lo_idx, s5));
			_mm512_storeu_ps(dr + 2 * VL, _mm512_permutex2var_ps(s2, lo_idx, s6));
			_mm512_storeu_ps(dr + 3 * VL, _mm512_permutex2var_ps(s3, lo_idx, s7));
			_mm512_storeu_ps(dr + 4 * VL, _mm512_permutex2var_ps(s0, hi_idx, s4));
			_mm512_storeu_ps(dr + 5 * VL, _mm512_permutex2var_ps(s1, hi_idx, s5));
		}
		goto transform;
#endif
		for (int l = 0; l < VL; l++) {
			if (inside[l]) {
				const float *xp = x + ((size_t)n[l] * C + c) * H * W +
				                  (size_t)ih0[l] * W + iw0[l];
				for (int r = 0; r < 6; r++)
					for (int i = 0; i < 6; i++)
						d[(r * 6 + i) * VL + l] = xp[r * W + i];
			} else if (n[l] < 0) {
				for (int e = 0; e < 36; e++)
					d[e * VL + l] = 0.0f;
			} else {
				const float *xc = x + ((size_t)n[l] * C + c) * H * W;
				for (int r = 0; r < 6; r++) {
					int ih = ih0[l] + r;
					for (int i = 0; i < 6; i++) {
						int iw = iw0[l] + i;
						d[(r * 6 + i) * VL + l] =
							(ih >= 0 && ih < H && iw >= 0 && iw < W) ?
							xc[(size_t)ih * W + iw] : 0.0f;
					}
				}
			}
		}
#ifdef __AVX512F__
transform:;
#endif
		v16 t[36];
		for (int i = 0; i < 6; i++)   // columns: B^T over r for each i
			BT6(vld(d + (0 * 6 + i) * VL), vld(d + (1 * 6 + i) * VL),
			    vld(d + (2 * 6 + i) * VL), vld(d + (3 * 6 + i) * VL),
			    vld(d + (4 * 6 + i) * VL), vld(d + (5 * 6 + i) * VL),
			    t[0 * 6 + i], t[1 * 6 + i], t[2 * 6 + i], t[3 * 6 + i],
			    t[4 * 6 + i], t[5 * 6 + i]);
		float *vc = bf ? ob : plain || cached ? V + (size_t)c * Tr + g
		                  : V + ((size_t)(g / TB) * C + c) * TB + g % TB;
		const size_t ps = bf ? VL : CT;   // plane stride
		for (int a = 0; a < 6; a++) {   // rows: B^T over i for each a
			v16 o0, o1, o2, o3, o4, o5;
			BT6(t[a * 6 + 0], t[a * 6 + 1], t[a * 6 + 2], t[a * 6 + 3],
			    t[a * 6 + 4], t[a * 6 + 5], o0, o1, o2, o3, o4, o5);
			// plain: rows of Tr (a multiple of 16) floats of an aligned
			// scratch, read back much later (VST_STREAM)
#define VST_V(p, v) do { if (plain) VST_STREAM(p, v); else vst(p, v); } while (0)
			VST_V(vc + (a * 6 + 0) * ps, o0);
			VST_V(vc + (a * 6 + 1) * ps, o1);
			VST_V(vc + (a * 6 + 2) * ps, o2);
			VST_V(vc + (a * 6 + 3) * ps, o3);
			VST_V(vc + (a * 6 + 4) * ps, o4);
			VST_V(vc + (a * 6 + 5) * ps, o5);
#undef VST_V
		}
		if (layout == V_PLAIN_BF16) {
			uint16_t *vb = (uint16_t *)V + (size_t)c * Tr + g;
			for (int xi = 0; xi < 36; xi++)
				ops_f32_to_bf16(ob + xi * VL, VL, vb + xi * CT);
		} else if (layout == V_BLOCKED_BF16) {
			if (c % 2 == 0 && c + 1 < C) {   // the pair's even channel: wait
				memcpy(ev, ob, sizeof ev);
				continue;
			}
			const int C2 = (C + 1) / 2;
			const float *lo = c % 2 ? ev : ob;   // channel 2 c2, then 2 c2 + 1
			if (c % 2 == 0)                      // odd C: a zero partner
				memset(ev, 0, sizeof ev);
			const float *hi = c % 2 ? ob : ev;
			uint16_t *vb = (uint16_t *)V + (((size_t)(g / TB) * C2 + c / 2) * TB + g % TB) * 2;
			const size_t pb = (size_t)C2 * 2 * Tr;   // plane stride, bf16s
			for (int xi = 0; xi < 36; xi++)
				wino_pair_bf16(lo + xi * VL, hi + xi * VL, vb + xi * pb);
		}
	}
}


// Channel k of a group's outputs o ([a*4+b][tile], bias added) through the
// epilogue's activation (max(v, slope*v), as the unfused store), each
// tile's 16 into Z (see wino_slice): a 16 x 16 transposition.
static void wino_to_z(const float *o, const ConvEpi *e, int K, int k, float *Z)
{
#ifdef __AVX512F__
	__m512 r[16];
	const __m512 sl = _mm512_set1_ps(e->slope);
	for (int i = 0; i < 16; i++) {
		r[i] = _mm512_loadu_ps(o + i * VL);
		if (e->on)
			r[i] = _mm512_max_ps(r[i], _mm512_mul_ps(r[i], sl));
	}
	__m512 t[16], u[16];
	for (int i = 0; i < 16; i += 2) {
		t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
		t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
	}
	for (int i = 0; i < 16; i += 4) {   // u[i + m]: rows i..i+3, value 4L + m
		u[i + 0] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
		u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
		u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
		u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
	}
	for (int m = 0; m < 4; m++) {
		__m512 v0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88);
		__m512 v1 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
		__m512 v2 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xDD);
		__m512 v3 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xDD);
		// tile l's 16 outputs, l = m, m + 8, m + 4, m + 12
		const int l[4] = { m, m + 8, m + 4, m + 12 };
		const __m512 w[4] = { _mm512_shuffle_f32x4(v0, v1, 0x88),
		                      _mm512_shuffle_f32x4(v0, v1, 0xDD),
		                      _mm512_shuffle_f32x4(v2, v3, 0x88),
		                      _mm512_shuffle_f32x4(v2, v3, 0xDD) };
		for (int i = 0; i < 4; i++)
			_mm512_storeu_ps(Z + ((size_t)(l[i] / 2) * K + k) * 32 + (l[i] % 2) * 16, w[i]);
	}
#else
	for (int l = 0; l < VL; l++)
		for (int i = 0; i < 16; i++) {
			float v = o[i * VL + l];
			if (e->on)
				v = epi_act(v, e->slope);
			Z[((size_t)(l / 2) * K + k) * 32 + (l % 2) * 16 + i] = v;
		}
#endif
}

// The 1x1 convolution of a group's L tiles in Z (K channels each), by the
// packed kernel (the unfused layer's sums, in its order), its activation,
// each tile's outputs inside the maps into pw->y.
static void wino_pointwise(const ConvShape *s, const ConvPointwise *pw, float *Z,
                           int L, const int *n, const int *oh, const int *ow)
{
	const int K = s->K, K2 = pw->K2, P = s->P, Q = s->Q;
	float m[8 * 32];
	for (int cb = 0; cb < (L + 1) / 2; cb++) {
		float *zb = Z + (size_t)cb * K * 32;
		if (2 * cb + 1 >= L)   // one tile: finite zeros beside it
			for (int k = 0; k < K; k++)
				memset(zb + (size_t)k * 32 + 16, 0, 16 * sizeof(float));
		for (int k2 = 0; k2 < K2; k2 += 8) {
			const int nk = K2 - k2 < 8 ? K2 - k2 : 8;
			float bias8[8];
			ops_gemm_8x32(K, pw->wp + (size_t)k2 * K, zb, 32, m, 32,
			              ops_bias8(pw->b, k2, nk, bias8));
			for (int h = 0; h < 2 && 2 * cb + h < L; h++) {
				const int l = 2 * cb + h;
				const int na = P - oh[l] < 4 ? P - oh[l] : 4, nb = Q - ow[l] < 4 ? Q - ow[l] : 4;
				for (int i = 0; i < nk; i++) {
					float *yp = pw->y + (((size_t)n[l] * K2 + k2 + i) * P + oh[l]) * Q + ow[l];
					const float *mp = m + i * 32 + h * 16;
					for (int a = 0; a < na; a++)
						for (int b = 0; b < nb; b++) {
							float v = mp[a * 4 + b];
							yp[(size_t)a * Q + b] = pw->on ? epi_act(v, pw->slope) : v;
						}
				}
			}
		}
	}
}

static void wino_slice(void *ctx, size_t c0, size_t c1, int thread)
{
	WinoJob *j = ctx;
	const ConvShape *s = j->s;
	const int C = s->C, K = s->K, P = s->P, Q = s->Q;
	const size_t Tp = j->chunk;
	const int K8 = round_up(K, KB);
	const ConvPointwise *pw = j->epi->pw;
	float *V = ops_scratch(j->scratch, thread, (size_t)36 * (C + K8) * Tp +
	                       (pw ? (size_t)16 * VL * K : 0));
	float *M = V + (size_t)36 * C * Tp;
	// pointwise: the outputs of a group of 16 tiles as the 1x1 product's
	// operand, 8 blocks of (K, 32): block l/2 holds tiles l and l+1 side by
	// side, each tile's 16 outputs in row order
	float *Z = pw ? M + (size_t)36 * K8 * Tp : NULL;
	float o[16 * VL];   // 4x4 outputs of 16 tiles: [a*4+b][tile]
	for (size_t chunk = c0; chunk < c1; chunk++) {
		size_t tb = chunk * j->chunk, te = tb + j->chunk;
		if (te > j->ntiles)
			te = j->ntiles;
		const int T = (int)(te - tb);
		const int Tr = round_up(T, TB);   // V, M row length
		const size_t CT = (size_t)C * Tr, KT = (size_t)K8 * Tr;
		for (int g = 0; g < Tr; g += VL)
			input_group(s, j->x, j->TH, j->TW, tb, T, g, V, Tr,
			            j->Ub ? V_BLOCKED_BF16 : V_BLOCKED);
		for (int xi = 0; xi < 36; xi++) {
			if (j->Ub) {
				const int C2 = (C + 1) / 2;
				const uint16_t *Ux = j->Ub + (size_t)xi * K8 * C2 * 2;
				const uint16_t *Vb = (const uint16_t *)V + (size_t)xi * C2 * 2 * Tr;
				for (int t0 = 0; t0 < Tr; t0 += TB)
					for (int k0 = 0; k0 < K8; k0 += KB)
						ops_gemm_8x32_bf16(C2, Ux + (size_t)k0 * C2 * 2,
						                   Vb + (size_t)(t0 / TB) * C2 * TB * 2, TB * 2,
						                   M + (size_t)xi * KT + (size_t)k0 * Tr + t0,
						                   Tr, 0);
				continue;
			}
			const float *Ux = j->U + (size_t)xi * K8 * C;
			for (int t0 = 0; t0 < Tr; t0 += TB) {
				const float *Vx = V + (size_t)xi * CT + (size_t)t0 * C;
				for (int k0 = 0; k0 < K8; k0 += KB)
					ops_gemm_8x32(C, Ux + (size_t)k0 * C, Vx, TB,
					              M + (size_t)xi * KT + (size_t)k0 * Tr + t0, Tr,
					              NULL);
			}
		}
		// output transform: y = A^T M A (+ bias)
		for (int g = 0; g < T; g += VL) {
			int n[VL], oh[VL], ow[VL];
			int L = T - g < VL ? T - g : VL;
			for (int l = 0; l < L; l++)
				tile_pos(j->TH, j->TW, tb + g + l, &n[l], &oh[l], &ow[l]);
#if defined(__AVX512F__) && defined(__AVX512VL__)
			// Per tile: where its 4x4 block starts in y[n][0], how many of
			// its rows are inside, which of its 4 columns (a store mask).
			size_t yoff[VL];
			int nrow[VL];
			__mmask8 cmask[VL];
			for (int l = 0; l < VL; l++) {
				if (l < L) {
					yoff[l] = (size_t)n[l] * K * P * Q + (size_t)oh[l] * Q + ow[l];
					nrow[l] = P - oh[l] < 4 ? P - oh[l] : 4;
					int nc = Q - ow[l] < 4 ? Q - ow[l] : 4;
					cmask[l] = (__mmask8)((1u << nc) - 1);
				} else {
					yoff[l] = 0;
					nrow[l] = 0;
					cmask[l] = 0;
				}
			}
#endif
			for (int k = 0; k < K; k++) {
				const float *mk = M + (size_t)k * Tr + g;
				v16 t[24];
				for (int i = 0; i < 6; i++)   // A^T over rows for column i
					AT4(vld(mk + (0 * 6 + i) * KT), vld(mk + (1 * 6 + i) * KT),
					    vld(mk + (2 * 6 + i) * KT), vld(mk + (3 * 6 + i) * KT),
					    vld(mk + (4 * 6 + i) * KT), vld(mk + (5 * 6 + i) * KT),
					    t[0 * 6 + i], t[1 * 6 + i], t[2 * 6 + i], t[3 * 6 + i]);
				float bias = j->b ? j->b[k] : 0.0f;
				for (int a = 0; a < 4; a++) {
					v16 o0, o1, o2, o3;
					AT4(t[a * 6 + 0], t[a * 6 + 1], t[a * 6 + 2], t[a * 6 + 3],
					    t[a * 6 + 4], t[a * 6 + 5], o0, o1, o2, o3);
					vst(o + (a * 4 + 0) * VL, o0 + bias);
					vst(o + (a * 4 + 1) * VL, o1 + bias);
					vst(o + (a * 4 + 2) * VL, o2 + bias);
					vst(o + (a * 4 + 3) * VL, o3 + bias);
				}
				if (pw) {
					wino_to_z(o, j->epi, K, k, Z);
					continue;
				}
				if (j->epi->pool) {
					WINO_POOL_STORE(k);
					continue;
				}
#if defined(__AVX512F__) && defined(__AVX512VL__)
				// Row a of 16 tiles: o[a][b] over tiles -> per tile its 4
				// values side by side (a 4x4 transpose inside each 128-bit
				// lane), then one masked 4-float store per tile and row:
				// a quarter of the stores of a scatter.
				float *yk = j->y + (size_t)k * P * Q;
				const int epi_on = j->epi->on;
				const float *rk = j->epi->res ? j->epi->res + (size_t)k * P * Q : NULL;
				const __m128 slope4 = _mm_set1_ps(j->epi->slope);
				for (int a = 0; a < 4; a++) {
					__m512 o0 = _mm512_loadu_ps(o + (a * 4 + 0) * VL);
					__m512 o1 = _mm512_loadu_ps(o + (a * 4 + 1) * VL);
					__m512 o2 = _mm512_loadu_ps(o + (a * 4 + 2) * VL);
					__m512 o3 = _mm512_loadu_ps(o + (a * 4 + 3) * VL);
					__m512 t0 = _mm512_unpacklo_ps(o0, o1), t1 = _mm512_unpackhi_ps(o0, o1);
					__m512 t2 = _mm512_unpacklo_ps(o2, o3), t3 = _mm512_unpackhi_ps(o2, o3);
					__m512 u[4];   // lane q of u[i]: tile 4q + i
					u[0] = _mm512_shuffle_ps(t0, t2, 0x44);
					u[1] = _mm512_shuffle_ps(t0, t2, 0xEE);
					u[2] = _mm512_shuffle_ps(t1, t3, 0x44);
					u[3] = _mm512_shuffle_ps(t1, t3, 0xEE);
					const size_t ra = (size_t)a * Q;
#define STORE_LANE(q) for (int i = 0; i < 4; i++) {                            \
	int l_ = 4 * (q) + i;                                                  \
	if (a < nrow[l_]) {                                                    \
		__m128 v_ = _mm512_extractf32x4_ps(u[i], q);                   \
		if (epi_on) {                                                  \
			if (rk)                                                \
				v_ = _mm_add_ps(v_, _mm_maskz_loadu_ps(cmask[l_], \
				                rk + yoff[l_] + ra));          \
			v_ = _mm_max_ps(v_, _mm_mul_ps(v_, slope4));           \
		}                                                              \
		_mm_mask_storeu_ps(yk + yoff[l_] + ra, cmask[l_], v_);         \
	}                                                                      \
}
					STORE_LANE(0) STORE_LANE(1) STORE_LANE(2) STORE_LANE(3)
#undef STORE_LANE
				}
				continue;
#endif
				for (int l = 0; l < L; l++) {
					float *yp = j->y + ((size_t)n[l] * K + k) * P * Q +
					            (size_t)oh[l] * Q + ow[l];
					int na = P - oh[l] < 4 ? P - oh[l] : 4;
					int nb = Q - ow[l] < 4 ? Q - ow[l] : 4;
					const float *rp = j->epi->res ? j->epi->res + (yp - j->y) : NULL;
					for (int a = 0; a < na; a++)
						for (int b2 = 0; b2 < nb; b2++) {
							float v = o[(a * 4 + b2) * VL + l];
							if (j->epi->on)
								v = epi_act(rp ? v + rp[a * Q + b2] : v,
								            j->epi->slope);
							yp[a * Q + b2] = v;
						}
				}
			}
			if (pw)
				wino_pointwise(s, pw, Z, L, n, oh, ow);
		}
	}
}

void wino_input_transform_plain(const ConvShape *s, const float *x, size_t tb,
                                int T, int g0, int g1, float *V, int Tr,
                                WinoVLayout layout)
{
	const int TH = (s->P + 3) / 4, TW = (s->Q + 3) / 4;
	for (int g = g0; g < g1; g += VL)
		input_group(s, x, TH, TW, tb, T, g, V, Tr, layout);
}

void ops_stream_fence(void)
{
#ifdef __AVX512F__
	_mm_sfence();
#endif
}

int conv2d_winograd_applies(const ConvShape *s)
{
	return s->R == 3 && s->S == 3 && s->stride == 1 && s->pad <= 2 &&
	       s->P >= 4 && s->Q >= 4;
}

void conv2d_forward_winograd(OpsScratch *sp, const ConvShape *s, const float *x,
                             const float *U, const float *b, const ConvEpi *epi,
                             float *y)
{
	if (s->N == 0)
		return;
	WinoJob j = { .s = s, .x = x, .b = b, .y = y, .U = U, .epi = epi };
	j.TH = (s->P + 3) / 4;
	j.TW = (s->Q + 3) / 4;
	j.ntiles = (size_t)s->N * j.TH * j.TW;
	// Tiles per chunk: V and M of a chunk, 36 (C + K) floats per tile, in
	// the L2 cache; measured on ResNet34's and Tiny Darknet's shapes at
	// batch 64 (32 to 256 tried): 64 when C + K <= 160, else 32.
	const char *e = getenv("CNNPIPE_WINO_TILES");
	long target = e ? atol(e) : s->C + s->K <= 160 ? 64 : 32;
	if (target < TB)
		target = TB;
	if (target > 1024)
		target = 1024;
	j.chunk = (size_t)round_up((int)target, TB);
	size_t nchunks = (j.ntiles + j.chunk - 1) / j.chunk;
	j.scratch = sp;
	if (ops_bf16()) {
		uint16_t *Ub = (uint16_t *)ops_scratch(sp, OPS_SLOT_BF16,
		                                       wino_filter_bf16_halfs(s->K, s->C) / 2);
		wino_filter_to_bf16(s->K, s->C, U, Ub);
		j.Ub = Ub;
	}
	ops_parallel_dynamic(nchunks, ops_threads(), wino_slice, &j);
}
