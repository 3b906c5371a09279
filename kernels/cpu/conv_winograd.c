// Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2015; points 0, +-1, +-2,
// inf): Y = A^T [ (G g G^T) (.) (B^T d B) ] A per 6x6 input tile and 4x4
// output tile, i.e. 36 multiplies per 16 outputs instead of 144.  The
// elementwise products summed over channels become 36 sgemms
//   M[xi]: (K, T) = U[xi]: (K, C) . V[xi]: (C, T)
// over a chunk of T tiles.  A chunk is a run of whole tile rows (possibly
// from several images) so the transforms run along contiguous tile rows,
// which the compiler vectorises: input rows are split into the 4 phases of
// the tile stride first.
//   x: (N, C, H, W), w: (K, C, 3, 3), y: (N, K, P, Q)
// Accuracy: the transforms add rounding (factors up to 8 and 1/24); against
// the double reference the error is a few 1e-6 relative to max|y| (see
// test_ops.c), about 10x the direct sgemm path's.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#undef I   // <complex.h> (via cblas.h) defines I; ops.h uses it as a name
#include "alloc.h"
#include "ops.h"
#include "ops_internal.h"
#include "threads.h"
#ifdef __AVX512F__
#include <immintrin.h>
#endif

// U[xi][k][c] = (G g G^T)[i][j], xi = 6i + j.  U: (36, K, C)
// Vectorised over 16 input channels at a time, output channels shared
// among threads: for large layers this runs on every call.
typedef struct { int K, C; const float *w; float *U; } FiltJob;

static void filter_slice(void *ctx, size_t k0, size_t k1, int thread)
{
	(void)thread;
	typedef float f16 __attribute__((vector_size(64)));
	static const float G[6][3] = {
		{ 1.0f / 4, 0, 0 },
		{ -1.0f / 6, -1.0f / 6, -1.0f / 6 },
		{ -1.0f / 6, 1.0f / 6, -1.0f / 6 },
		{ 1.0f / 24, 1.0f / 12, 1.0f / 6 },
		{ 1.0f / 24, -1.0f / 12, 1.0f / 6 },
		{ 0, 0, 1 },
	};
	FiltJob *f = ctx;
	const int C = f->C;
	const size_t KC = (size_t)f->K * C;
	for (size_t k = k0; k < k1; k++)
		for (int c0 = 0; c0 < C; c0 += 16) {
			int L = C - c0 < 16 ? C - c0 : 16;
			float gt[9][16] = { { 0 } };   // g[e] for 16 channels
			for (int l = 0; l < L; l++)
				for (int e = 0; e < 9; e++)
					gt[e][l] = f->w[((size_t)k * C + c0 + l) * 9 + e];
			f16 g[9];
			for (int e = 0; e < 9; e++)
				memcpy(&g[e], gt[e], sizeof(f16));
			for (int i = 0; i < 6; i++) {
				f16 t[3];   // (G g)[i][jj]
				for (int jj = 0; jj < 3; jj++)
					t[jj] = G[i][0] * g[jj] + G[i][1] * g[3 + jj] + G[i][2] * g[6 + jj];
				for (int jx = 0; jx < 6; jx++) {
					f16 u = t[0] * G[jx][0] + t[1] * G[jx][1] + t[2] * G[jx][2];
					float ub[16];
					memcpy(ub, &u, sizeof ub);
					memcpy(f->U + (size_t)(i * 6 + jx) * KC + k * C + c0, ub,
					       sizeof(float) * L);
				}
			}
		}
}

static void filter_transform(int K, int C, const float *w, float *U)
{
	FiltJob f = { K, C, w, U };
	parallel_for((size_t)K, ops_threads_for((size_t)K, 400.0 * C), filter_slice, &f);
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

typedef struct {
	const ConvShape *s;
	const float *x, *b, *U;
	float *y;
	int TH, TW;
	size_t ntiles, chunk;   // tiles in all, tiles per chunk (multiple of VL)
} WinoJob;

// Tile t (global, over N x TH x TW) -> image and top-left output corner.
static inline void tile_pos(const WinoJob *j, size_t t, int *n, int *oh, int *ow)
{
	size_t per = (size_t)j->TH * j->TW;
	*n = (int)(t / per);
	int r = (int)(t % per);
	*oh = 4 * (r / j->TW);
	*ow = 4 * (r % j->TW);
}

static void wino_slice(void *ctx, size_t c0, size_t c1, int thread)
{
	(void)thread;
	WinoJob *j = ctx;
	const ConvShape *s = j->s;
	const int C = s->C, K = s->K, H = s->H, W = s->W, P = s->P, Q = s->Q;
	const size_t Tp = j->chunk;
	float *V = xmalloc_array((size_t)36 * C * Tp, sizeof(float));
	float *M = xmalloc_array((size_t)36 * K * Tp, sizeof(float));
	float d[36 * VL];   // gathered 6x6 inputs of 16 tiles: [r*6+i][tile]
	float o[16 * VL];   // 4x4 outputs of 16 tiles: [a*4+b][tile]
	for (size_t chunk = c0; chunk < c1; chunk++) {
		size_t tb = chunk * j->chunk, te = tb + j->chunk;
		if (te > j->ntiles)
			te = j->ntiles;
		const int T = (int)(te - tb);
		const int Tr = (T + VL - 1) / VL * VL;   // V, M row length
		const size_t CT = (size_t)C * Tr, KT = (size_t)K * Tr;
		// input transform: V[xi][c][t] = (B^T d B)[xi]
		for (int g = 0; g < Tr; g += VL) {
			int n[VL], ih0[VL], iw0[VL], inside[VL];
			for (int l = 0; l < VL; l++) {
				if (g + l < T) {
					int oh, ow;
					tile_pos(j, tb + g + l, &n[l], &oh, &ow);
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
			// Masked gathers: lane l reads x[n, c, ih0+r, iw0+i] when inside.
			// Offsets are int32 from the channel-c plane of image 0.
			int gather = (size_t)s->N * C * H * W < (size_t)INT32_MAX;
			__m512i vbase = _mm512_setzero_si512(), vih = vbase, viw = vbase;
			__mmask16 live = 0;
			if (gather) {
				int32_t base[VL], hh[VL], ww[VL];
				for (int l = 0; l < VL; l++) {
					base[l] = n[l] < 0 ? 0 : (int32_t)((long)n[l] * C * H * W +
					          (long)ih0[l] * W + iw0[l]);
					hh[l] = n[l] < 0 ? -100 : ih0[l];
					ww[l] = n[l] < 0 ? -100 : iw0[l];
					if (n[l] >= 0)
						live |= (__mmask16)(1u << l);
				}
				vbase = _mm512_loadu_si512(base);
				vih = _mm512_loadu_si512(hh);
				viw = _mm512_loadu_si512(ww);
			}
			__mmask16 mrow[6], mcol[6];
			for (int r = 0; r < 6; r++) {
				__m512i h = _mm512_add_epi32(vih, _mm512_set1_epi32(r));
				__m512i w = _mm512_add_epi32(viw, _mm512_set1_epi32(r));
				mrow[r] = _mm512_cmpge_epi32_mask(h, _mm512_setzero_si512()) &
				          _mm512_cmplt_epi32_mask(h, _mm512_set1_epi32(H));
				mcol[r] = _mm512_cmpge_epi32_mask(w, _mm512_setzero_si512()) &
				          _mm512_cmplt_epi32_mask(w, _mm512_set1_epi32(W));
			}
#endif
			for (int c = 0; c < C; c++) {
#ifdef __AVX512F__
				if (gather) {
					const float *xc = j->x + (size_t)c * H * W;
					for (int r = 0; r < 6; r++)
						for (int i = 0; i < 6; i++) {
							__m512i idx = _mm512_add_epi32(vbase,
							                _mm512_set1_epi32(r * W + i));
							__m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(),
							                live & mrow[r] & mcol[i], idx, xc, 4);
							_mm512_storeu_ps(d + (r * 6 + i) * VL, v);
						}
				} else
#endif
				for (int l = 0; l < VL; l++) {
					if (inside[l]) {
						const float *xp = j->x + ((size_t)n[l] * C + c) * H * W +
						                  (size_t)ih0[l] * W + iw0[l];
						for (int r = 0; r < 6; r++)
							for (int i = 0; i < 6; i++)
								d[(r * 6 + i) * VL + l] = xp[r * W + i];
					} else if (n[l] < 0) {
						for (int e = 0; e < 36; e++)
							d[e * VL + l] = 0.0f;
					} else {
						const float *xc = j->x + ((size_t)n[l] * C + c) * H * W;
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
				v16 t[36];
				for (int i = 0; i < 6; i++)   // columns: B^T over r for each i
					BT6(vld(d + (0 * 6 + i) * VL), vld(d + (1 * 6 + i) * VL),
					    vld(d + (2 * 6 + i) * VL), vld(d + (3 * 6 + i) * VL),
					    vld(d + (4 * 6 + i) * VL), vld(d + (5 * 6 + i) * VL),
					    t[0 * 6 + i], t[1 * 6 + i], t[2 * 6 + i], t[3 * 6 + i],
					    t[4 * 6 + i], t[5 * 6 + i]);
				float *vc = V + (size_t)c * Tr + g;
				for (int a = 0; a < 6; a++) {   // rows: B^T over i for each a
					v16 o0, o1, o2, o3, o4, o5;
					BT6(t[a * 6 + 0], t[a * 6 + 1], t[a * 6 + 2], t[a * 6 + 3],
					    t[a * 6 + 4], t[a * 6 + 5], o0, o1, o2, o3, o4, o5);
					vst(vc + (size_t)(a * 6 + 0) * CT, o0);
					vst(vc + (size_t)(a * 6 + 1) * CT, o1);
					vst(vc + (size_t)(a * 6 + 2) * CT, o2);
					vst(vc + (size_t)(a * 6 + 3) * CT, o3);
					vst(vc + (size_t)(a * 6 + 4) * CT, o4);
					vst(vc + (size_t)(a * 6 + 5) * CT, o5);
				}
			}
		}
		for (int xi = 0; xi < 36; xi++)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, Tr, C, 1.0f,
			            j->U + (size_t)xi * K * C, C, V + (size_t)xi * CT, Tr,
			            0.0f, M + (size_t)xi * KT, Tr);
		// output transform: y = A^T M A (+ bias)
		for (int g = 0; g < T; g += VL) {
			int n[VL], oh[VL], ow[VL];
			int L = T - g < VL ? T - g : VL;
			for (int l = 0; l < L; l++)
				tile_pos(j, tb + g + l, &n[l], &oh[l], &ow[l]);
#ifdef __AVX512F__
			int scatter = (size_t)s->N * K * P * Q < (size_t)INT32_MAX;
			__m512i vout = _mm512_setzero_si512();
			__mmask16 mo[16];
			if (scatter) {
				int32_t base[VL], hh[VL], ww[VL];
				__mmask16 live = 0;
				for (int l = 0; l < VL; l++) {
					base[l] = l < L ? (int32_t)((long)n[l] * K * P * Q +
					          (long)oh[l] * Q + ow[l]) : 0;
					hh[l] = l < L ? oh[l] : 0;
					ww[l] = l < L ? ow[l] : 0;
					if (l < L)
						live |= (__mmask16)(1u << l);
				}
				vout = _mm512_loadu_si512(base);
				__m512i vh = _mm512_loadu_si512(hh), vw = _mm512_loadu_si512(ww);
				for (int a = 0; a < 4; a++)
					for (int b2 = 0; b2 < 4; b2++)
						mo[a * 4 + b2] = live &
							_mm512_cmplt_epi32_mask(_mm512_add_epi32(vh, _mm512_set1_epi32(a)),
							                        _mm512_set1_epi32(P)) &
							_mm512_cmplt_epi32_mask(_mm512_add_epi32(vw, _mm512_set1_epi32(b2)),
							                        _mm512_set1_epi32(Q));
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
#ifdef __AVX512F__
				if (scatter) {
					float *yk = j->y + (size_t)k * P * Q;
					for (int a = 0; a < 4; a++)
						for (int b2 = 0; b2 < 4; b2++)
							_mm512_mask_i32scatter_ps(yk, mo[a * 4 + b2],
								_mm512_add_epi32(vout, _mm512_set1_epi32(a * Q + b2)),
								_mm512_loadu_ps(o + (a * 4 + b2) * VL), 4);
					continue;
				}
#endif
				for (int l = 0; l < L; l++) {
					float *yp = j->y + ((size_t)n[l] * K + k) * P * Q +
					            (size_t)oh[l] * Q + ow[l];
					int na = P - oh[l] < 4 ? P - oh[l] : 4;
					int nb = Q - ow[l] < 4 ? Q - ow[l] : 4;
					for (int a = 0; a < na; a++)
						for (int b2 = 0; b2 < nb; b2++)
							yp[a * Q + b2] = o[(a * 4 + b2) * VL + l];
				}
			}
		}
	}
	free(V);
	free(M);
}

int conv2d_winograd_applies(const ConvShape *s)
{
	return s->R == 3 && s->S == 3 && s->stride == 1 && s->pad <= 2 &&
	       s->P >= 4 && s->Q >= 4;
}

void conv2d_forward_winograd(const ConvShape *s, const float *x, const float *w,
                             const float *b, float *y)
{
	if (s->N == 0)
		return;
	WinoJob j = { .s = s, .x = x, .b = b, .y = y };
	j.TH = (s->P + 3) / 4;
	j.TW = (s->Q + 3) / 4;
	j.ntiles = (size_t)s->N * j.TH * j.TW;
	// Tiles per chunk: small enough that V and M stay in cache, large enough
	// that OpenBLAS's packing of U[xi] (K x C) per sgemm is amortised;
	// measured on ResNet34's shapes: 64 tiles up to C = 256, C/4 above.
	const char *e = getenv("CNNPIPE_WINO_TILES");
	long target = e ? atol(e) : s->C / 4;
	if (target < 64)
		target = 64;
	if (target > 1024)
		target = 1024;
	j.chunk = (size_t)(target + VL - 1) / VL * VL;
	size_t nchunks = (j.ntiles + j.chunk - 1) / j.chunk;
	float *U = xmalloc_array((size_t)36 * s->K * s->C, sizeof(float));
	filter_transform(s->K, s->C, w, U);
	j.U = U;
	int T = ops_threads();
	if (T > 1 && nchunks >= (size_t)T) {
		ops_blas_threads(1);
		parallel_for(nchunks, T, wino_slice, &j);
		ops_blas_threads(T);
	} else {
		wino_slice(&j, 0, nchunks, 0);
	}
	free(U);
}
