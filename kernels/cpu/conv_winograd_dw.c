// The filter gradient of a 3x3 stride-1 convolution in the Winograd domain
// of the forward's F(4x4, 3x3) (conv_winograd.c): the forward computes, per
// 4x4 output tile, Y = A^T [ U (.) V ] A with U = G g G^T and V = B^T d B,
// so with dM = A dY A^T (the tile's output gradient taken back through A):
//   dU[xi] (K, C) = sum over tiles t of dM[xi][k][t] * V[xi][c][t]
//   dw[k][c]      += G^T dU[.][k][c] G        (6x6 -> 3x3)
// 36 products of K x C over the tiles, instead of one of K x 9C over the
// pixels: 36 / (9 * 16) = 1/4 of the multiplies on 56x56 maps (1/3 on 7x7,
// where the partial tiles cost more).  Tiles are taken in chunks; per chunk
// the transforms are shared among threads by tile groups, then the 36
// products by plane, each one OpenBLAS sgemm on one thread, accumulated in
// the chunks' order: the result does not depend on the thread count.
//   x: (N, C, H, W), dy: (N, K, P, Q), dw: (K, C, 3, 3)
// Accuracy: as the forward's, a few 1e-6 relative to max|dw| in tests.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#undef I   // <complex.h> (via cblas.h) defines I; ops.h uses it as a name
#include "libcommon/util/threads.h"
#include "ops.h"
#include "ops_internal.h"
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#define VL 16   // tiles per vector
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4), may_alias));
#define vld(p) (*(const v16u *)(p))
#define vst(p, v) (*(v16u *)(p) = (v))

// A (6x4) applied to d0..d3: the output transform's adjoint
#define A6(d0, d1, d2, d3, o0, o1, o2, o3, o4, o5) do {                 \
	v16 s02_ = (d0) + (d2), s13_ = (d1) + (d3);                     \
	v16 u02_ = (d0) + 4 * (d2), u13_ = 2 * (d1) + 8 * (d3);         \
	o0 = (d0);                                                      \
	o1 = s02_ + s13_;                                               \
	o2 = s02_ - s13_;                                               \
	o3 = u02_ + u13_;                                               \
	o4 = u02_ - u13_;                                               \
	o5 = (d3);                                                      \
} while (0)

typedef struct {
	const ConvShape *s;
	const float *x, *dy;
	float *V, *D, *dU, *dw;
	size_t tb;          // the chunk's first tile
	int T, Tr, TH, TW;  // tiles in the chunk, row length (multiple of 16)
	int bf16;           // V and D as bf16 (ops_bf16), rows of a multiple of 32
	int cached;         // D by ordinary stores (a small buffer, read at once)
	uint16_t *pack;     // bf16: per thread, a plane's D and V repacked, or NULL;
	                    // one chunk: every plane's (f32 or bf16)
} DwJob;

// D[xi][k][t - tb] = (A dY A^T)[xi] of tiles tb + g .. tb + g + 15
static void dy_group(const DwJob *j, int g)
{
	const ConvShape *s = j->s;
	const int K = s->K, P = s->P, Q = s->Q;
	const size_t KT = (size_t)K * j->Tr, per = (size_t)j->TH * j->TW;
	const size_t PQ = (size_t)P * Q;
	size_t off[VL];
	int nr[VL], ncol[VL];
	for (int l = 0; l < VL; l++) {
		if (g + l >= j->T) {
			nr[l] = ncol[l] = 0;
			off[l] = 0;
			continue;
		}
		size_t t = j->tb + g + l, n = t / per;
		int r = (int)(t % per), oh = 4 * (r / j->TW), ow = 4 * (r % j->TW);
		nr[l] = P - oh < 4 ? P - oh : 4;
		ncol[l] = Q - ow < 4 ? Q - ow : 4;
		off[l] = n * K * PQ + (size_t)oh * Q + ow;
	}
	float d[16 * VL];   // [a*4+b][tile]
#ifdef __AVX512F__
	// Per tile: the row loads' masks (its columns inside dy, none for rows
	// past P or tiles past the chunk).  Row a of tiles 4m..4m+3 is loaded
	// into one vector (tile 4m+i in lanes 4i..4i+3), then permutes leave
	// value b of all 16 tiles in one vector.
	__mmask16 rmask[4][VL];
	for (int l = 0; l < VL; l++)
		for (int a = 0; a < 4; a++)
			rmask[a][l] = (__mmask16)(a < nr[l] ? ((1u << ncol[l]) - 1) << (4 * (l % 4)) : 0);
	__m512i pick[4];
	for (int b = 0; b < 4; b++) {
		int ix[16];
		for (int i = 0; i < 16; i++)
			ix[i] = i < 8 ? 4 * i + b : 0;
		pick[b] = _mm512_loadu_si512(ix);
	}
#endif
	for (int k = 0; k < K; k++) {
		const float *dk = j->dy + (size_t)k * PQ;
#ifdef __AVX512F__
		for (int a = 0; a < 4; a++) {
			__m512 z[4];
			for (int m = 0; m < 4; m++) {
				z[m] = _mm512_setzero_ps();
				for (int i = 0; i < 4; i++) {
					int l = 4 * m + i;
					z[m] = _mm512_mask_loadu_ps(z[m], rmask[a][l],
					        dk + off[l] + (size_t)a * Q - 4 * i);
				}
			}
			for (int b = 0; b < 4; b++) {
				__m512 lo = _mm512_permutex2var_ps(z[0], pick[b], z[1]);
				__m512 hi = _mm512_permutex2var_ps(z[2], pick[b], z[3]);
				_mm512_storeu_ps(d + (a * 4 + b) * VL, _mm512_shuffle_f32x4(lo, hi, 0x44));
			}
		}
		goto transform;
#endif
		for (int l = 0; l < VL; l++) {
			const float *src = dk + off[l];
			if (nr[l] == 4 && ncol[l] == 4) {   // whole tiles: no tests
				for (int a = 0; a < 4; a++, src += Q) {
					d[(a * 4 + 0) * VL + l] = src[0];
					d[(a * 4 + 1) * VL + l] = src[1];
					d[(a * 4 + 2) * VL + l] = src[2];
					d[(a * 4 + 3) * VL + l] = src[3];
				}
				continue;
			}
			for (int a = 0; a < 4; a++)
				for (int b = 0; b < 4; b++)
					d[(a * 4 + b) * VL + l] = a < nr[l] && b < ncol[l] ?
						src[(size_t)a * Q + b] : 0.0f;
		}
#ifdef __AVX512F__
transform:;
#endif
		v16 t[24];   // [i*4+b]: A over the rows a, for each column b
		for (int b = 0; b < 4; b++)
			A6(vld(d + (0 * 4 + b) * VL), vld(d + (1 * 4 + b) * VL),
			   vld(d + (2 * 4 + b) * VL), vld(d + (3 * 4 + b) * VL),
			   t[0 * 4 + b], t[1 * 4 + b], t[2 * 4 + b], t[3 * 4 + b],
			   t[4 * 4 + b], t[5 * 4 + b]);
		// as V (VST_STREAM): rows of Tr floats of an aligned scratch;
		// bf16: through ob, 16 bf16s at a time
		float ob[36 * VL];
		float *out = j->bf16 ? ob : j->D + (size_t)k * j->Tr + g;
		const size_t ps = j->bf16 ? VL : KT;
		for (int i = 0; i < 6; i++) {
			v16 o0, o1, o2, o3, o4, o5;
			A6(t[i * 4 + 0], t[i * 4 + 1], t[i * 4 + 2], t[i * 4 + 3],
			   o0, o1, o2, o3, o4, o5);
#define VST_D(p, v) do { if (j->bf16 || j->cached) vst(p, v); else VST_STREAM(p, v); } while (0)
			VST_D(out + (i * 6 + 0) * ps, o0);
			VST_D(out + (i * 6 + 1) * ps, o1);
			VST_D(out + (i * 6 + 2) * ps, o2);
			VST_D(out + (i * 6 + 3) * ps, o3);
			VST_D(out + (i * 6 + 4) * ps, o4);
			VST_D(out + (i * 6 + 5) * ps, o5);
#undef VST_D
		}
		if (j->bf16) {
			uint16_t *db = (uint16_t *)j->D + (size_t)k * j->Tr + g;
			for (int xi = 0; xi < 36; xi++)
				ops_f32_to_bf16(ob + xi * VL, VL, db + xi * KT);
		}
	}
}

static void transform_slice(void *ctx, size_t g0, size_t g1, int thread)
{
	(void)thread;
	DwJob *j = ctx;
	wino_input_transform_plain(j->s, j->x, j->tb, j->T, (int)g0 * VL,
	                           (int)g1 * VL, j->V, j->Tr, j->bf16 ? V_PLAIN_BF16 : V_PLAIN);
	for (size_t g = g0; g < g1; g++)
		dy_group(j, (int)g * VL);
	ops_stream_fence();
}

static void product_slice(void *ctx, size_t x0, size_t x1, int thread)
{
	DwJob *j = ctx;
	const int K = j->s->K, C = j->s->C, Tr = j->Tr;
	if (j->bf16) {
		// each plane's D and V repacked (8 and 32 rows a block) for the
		// 8 x 32 kernel; shapes it does not fit by the dot kernel
		const uint16_t *D = (const uint16_t *)j->D, *V = (const uint16_t *)j->V;
		uint16_t *pu = j->pack ? j->pack + (size_t)thread * (K + C) * Tr : NULL;
		uint16_t *pv = pu ? pu + (size_t)K * Tr : NULL;
		for (size_t xi = x0; xi < x1; xi++) {
			const uint16_t *Dx = D + xi * K * Tr, *Vx = V + xi * C * Tr;
			float *dUx = j->dU + xi * K * C;
			if (!pu) {
				ops_gemm_nt_bf16(K, C, Tr, Dx, Tr, Vx, Tr, dUx, C);
				continue;
			}
			ops_pack_pairs(Dx, K, Tr, 8, pu);
			ops_pack_pairs(Vx, C, Tr, 32, pv);
			for (int k0 = 0; k0 < K; k0 += 8)
				for (int c0 = 0; c0 < C; c0 += 32)
					ops_gemm_8x32_bf16(Tr / 2, pu + (size_t)k0 * Tr,
					                   pv + (size_t)c0 * Tr, 64,
					                   dUx + (size_t)k0 * C + c0, C, 1);
		}
		return;
	}
	for (size_t xi = x0; xi < x1; xi++)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, K, C, Tr, 1.0f,
		            j->D + xi * K * Tr, Tr, j->V + xi * C * Tr, Tr, 1.0f,
		            j->dU + xi * K * C, C);
}

// out[l*9 + e] += (G^T dU[.][l] G)[e] for l < L <= 16: the 36 planes of
// L channels at plane stride xs, u[xi*xs + l]
static void du_to_dw(const float *u, size_t xs, int L, float *out)
{
	const float (*G)[3] = wino_G;
	float ub[36][VL] = { { 0 } }, ob[9][VL];
	for (int xi = 0; xi < 36; xi++)
		memcpy(ub[xi], u + xi * xs, sizeof(float) * L);
	v16 t[6][3];   // (dU G)[i][e]
	for (int i = 0; i < 6; i++)
		for (int e = 0; e < 3; e++) {
			v16 a = vld(ub[i * 6]) * G[0][e];
			for (int jj = 1; jj < 6; jj++)
				a += vld(ub[i * 6 + jj]) * G[jj][e];
			t[i][e] = a;
		}
	for (int r = 0; r < 3; r++)
		for (int e = 0; e < 3; e++) {
			v16 a = t[0][e] * G[0][r];
			for (int i = 1; i < 6; i++)
				a += t[i][e] * G[i][r];
			vst(ob[r * 3 + e], a);
		}
	for (int l = 0; l < L; l++)
		for (int e = 0; e < 9; e++)
			out[l * 9 + e] += ob[e][l];
}

// dw[k][c] += G^T dU[.][k][c] G for k in [k0, k1), 16 channels at a time
static void filter_slice(void *ctx, size_t k0, size_t k1, int thread)
{
	(void)thread;
	DwJob *j = ctx;
	const int C = j->s->C;
	const size_t KC = (size_t)j->s->K * C;
	for (size_t k = k0; k < k1; k++)
		for (int c0 = 0; c0 < C; c0 += VL)
			du_to_dw(j->dU + k * C + c0, KC, C - c0 < VL ? C - c0 : VL,
			         j->dw + (k * C + c0) * 9);
}

// ---- one chunk, no dU --------------------------------------------------------
// When every tile fits in one small chunk and dU (36 K C) would outweigh
// the transforms (ResNet34's layer4 at batch 16: 37.7 MB of dU, zeroed,
// summed into and read back, for 64 tiles), each 8 x 32 block of (k, c) is
// finished at once: its 36 products in a small buffer, then G^T . G into
// dw.  The planes of D and V are first repacked as the 8 x 32 kernels read
// them (rows of 8 and 32 channels; bf16: pairs of tiles).
static void pack_slice(void *ctx, size_t x0, size_t x1, int thread)
{
	(void)thread;
	DwJob *j = ctx;
	const int K = j->s->K, C = j->s->C, Tr = j->Tr;
	for (size_t xi = x0; xi < x1; xi++) {
		if (j->bf16) {
			const uint16_t *D = (const uint16_t *)j->D, *V = (const uint16_t *)j->V;
			ops_pack_pairs(D + xi * K * Tr, K, Tr, 8, j->pack + xi * K * Tr);
			ops_pack_pairs(V + xi * C * Tr, C, Tr, 32,
			               j->pack + (size_t)36 * K * Tr + xi * C * Tr);
		} else {
			float *pk = (float *)j->pack;
			ops_pack_words((const uint32_t *)(const void *)(j->D + xi * K * Tr), K,
			               (size_t)Tr, 8, (uint32_t *)(void *)(pk + xi * K * Tr));
			ops_pack_words((const uint32_t *)(const void *)(j->V + xi * C * Tr), C,
			               (size_t)Tr, 32,
			               (uint32_t *)(void *)(pk + (size_t)36 * K * Tr + xi * C * Tr));
		}
	}
}

static void block_slice(void *ctx, size_t b0, size_t b1, int thread)
{
	(void)thread;
	DwJob *j = ctx;
	const int K = j->s->K, C = j->s->C, Tr = j->Tr, CB = C / 32;
	float m[36][8 * 32];
	for (size_t b = b0; b < b1; b++) {
		const int k0 = (int)(b / CB) * 8, c0 = (int)(b % CB) * 32;
		for (int xi = 0; xi < 36; xi++) {
			if (j->bf16) {
				const uint16_t *pu = j->pack + (size_t)xi * K * Tr + (size_t)k0 * Tr;
				const uint16_t *pv = j->pack + (size_t)36 * K * Tr +
				                     (size_t)xi * C * Tr + (size_t)c0 * Tr;
				ops_gemm_8x32_bf16(Tr / 2, pu, pv, 64, m[xi], 32, 0);
			} else {
				const float *pk = (const float *)j->pack;
				const float *pu = pk + (size_t)xi * K * Tr + (size_t)k0 * Tr;
				const float *pv = pk + (size_t)36 * K * Tr + (size_t)xi * C * Tr +
				                  (size_t)c0 * Tr;
				ops_gemm_8x32(Tr, pu, pv, 32, m[xi], 32, NULL);
			}
		}
		for (int i = 0; i < 8; i++)
			for (int h = 0; h < 32; h += VL)
				du_to_dw(&m[0][i * 32 + h], 8 * 32, VL,
				         j->dw + ((size_t)(k0 + i) * C + c0 + h) * 9);
	}
}

// ---- few input channels: streamed, V and D never in memory -------------------
// With C = 16 to 64 input channels and as many or more outputs (Tiny
// Darknet's 16 -> 32 at 112x112, 16 -> 128 at 56x56, 32 -> 256 at 28x28;
// ResNet34's layer1), D (36 K values a tile) is most of the chunked path's
// traffic: written and read back through memory, 230 MB a layer at batch
// 64.  Here each group of 16 tiles is transformed
// into small buffers and summed at once into a partial dU that stays in the
// cache: dU[xi][k][c] += sum over t of D[xi][k][t] V[xi][c][t], V turned to
// (t, c) so that a tile's C values are one or two vectors.  The groups are
// split into DW_SLICES fixed runs, each with its own partial, added in run
// order: the sums do not depend on the thread count.
#define DW_SLICES 8

typedef struct {
	DwJob *j;
	OpsScratch *sp;
	size_t ngroups, ntiles;
	float *part;   // DW_SLICES partials of 36 K C
} StreamJob;

int wino_dw_stream_applies(const ConvShape *s)
{
	// at least 512 tiles: below, V and D of the chunked path stay in the
	// cache anyway (and a net's training trajectory at such sizes is where
	// train.bats compares ten steps with PyTorch's: kept on the path it was
	// measured on)
	size_t ntiles = (size_t)s->N * ((s->P + 3) / 4) * ((s->Q + 3) / 4);
	if (ntiles < 512)
		return 0;
	const char *e = getenv("CNNPIPE_WINO_DW_STREAM");
	if (e && *e == '0')
		return 0;
	// the partial dU (36 K C floats) up to 1.25 MB, in L2 or near it:
	// batch 64, dw before -> after: Tiny Darknet 16 -> 32 68 -> 51 ms,
	// 16 -> 128 48-60 -> 36 ms, 32 -> 256 38-41 -> 26 ms; ResNet34 layer1
	// 63-75 -> 49-51 ms (batch 16: 16-21 -> 13-15 ms)
	return s->C % 16 == 0 && s->C <= 64 && s->K >= s->C && s->K % 4 == 0 &&
	       (size_t)36 * s->K * s->C <= ((size_t)320 << 10);
}

static void stream_slice(void *ctx, size_t r0, size_t r1, int thread)
{
	StreamJob *sj = ctx;
	const ConvShape *s = sj->j->s;
	const int C = s->C, K = s->K;
	const size_t KC = (size_t)K * C;
	float *Vg = ops_scratch(sj->sp, thread, (size_t)36 * 16 * (2 * C + K));
	float *Vt = Vg + (size_t)36 * 16 * C, *Dg = Vt + (size_t)36 * 16 * C;
	DwJob g = *sj->j;   // one group: tb its first tile, rows of 16
	g.Tr = VL;
	g.D = Dg;
	g.cached = 1;
	for (size_t r = r0; r < r1; r++) {
		float *dU = sj->part + r * 36 * KC;
		memset(dU, 0, sizeof(float) * 36 * KC);
		size_t gb = r * sj->ngroups / DW_SLICES, ge = (r + 1) * sj->ngroups / DW_SLICES;
		for (size_t q = gb; q < ge; q++) {
			g.tb = q * VL;
			g.T = (int)(sj->ntiles - g.tb);
			wino_input_transform_plain(s, g.x, g.tb, g.T, 0, VL, Vg, VL, V_PLAIN_CACHED);
			dy_group(&g, 0);
			for (int xi = 0; xi < 36; xi++)   // (c, t) -> (t, c): one block of C rows
				ops_pack_words((const uint32_t *)(const void *)(Vg + (size_t)xi * C * VL),
				               C, VL, C, (uint32_t *)(void *)(Vt + (size_t)xi * VL * C));
			for (int xi = 0; xi < 36; xi++) {
				const float *vt = Vt + (size_t)xi * VL * C;
				for (int k = 0; k < K; k += 4) {
					const float *d = Dg + ((size_t)xi * K + k) * VL;
					float *u = dU + (size_t)xi * KC + (size_t)k * C;
#ifdef __AVX512F__
					for (int c0 = 0; c0 < C; c0 += VL) {
						__m512 a0 = _mm512_loadu_ps(u + c0);
						__m512 a1 = _mm512_loadu_ps(u + C + c0);
						__m512 a2 = _mm512_loadu_ps(u + 2 * C + c0);
						__m512 a3 = _mm512_loadu_ps(u + 3 * C + c0);
						for (int t = 0; t < VL; t++) {
							__m512 v = _mm512_loadu_ps(vt + (size_t)t * C + c0);
							a0 = _mm512_fmadd_ps(_mm512_set1_ps(d[t]), v, a0);
							a1 = _mm512_fmadd_ps(_mm512_set1_ps(d[VL + t]), v, a1);
							a2 = _mm512_fmadd_ps(_mm512_set1_ps(d[2 * VL + t]), v, a2);
							a3 = _mm512_fmadd_ps(_mm512_set1_ps(d[3 * VL + t]), v, a3);
						}
						_mm512_storeu_ps(u + c0, a0);
						_mm512_storeu_ps(u + C + c0, a1);
						_mm512_storeu_ps(u + 2 * C + c0, a2);
						_mm512_storeu_ps(u + 3 * C + c0, a3);
					}
#else
					for (int i = 0; i < 4; i++)
						for (int c = 0; c < C; c++) {
							float a = u[i * C + c];
							for (int t = 0; t < VL; t++)
								a = fmaf(d[i * VL + t], vt[(size_t)t * C + c], a);
							u[i * C + c] = a;
						}
#endif
				}
			}
		}
	}
}

static void backward_filter_streamed(OpsScratch *sp, DwJob *j, size_t ntiles)
{
	const size_t KC = (size_t)j->s->K * j->s->C;
	StreamJob sj = { .j = j, .sp = sp, .ntiles = ntiles, .ngroups = (ntiles + VL - 1) / VL };
	sj.part = ops_scratch(sp, OPS_SLOT_WEIGHTS, (size_t)(DW_SLICES + 1) * 36 * KC);
	j->dU = sj.part + (size_t)DW_SLICES * 36 * KC;
	j->bf16 = 0;
	parallel_for(DW_SLICES, ops_threads(), stream_slice, &sj);
	memset(j->dU, 0, sizeof(float) * 36 * KC);
	ops_add_partials(j->dU, sj.part, DW_SLICES, 36 * KC);
	parallel_for((size_t)j->s->K, ops_threads_for((size_t)j->s->K, 300.0 * j->s->C),
	             filter_slice, j);
}

static int one_chunk_applies(const ConvShape *s, size_t ntiles)
{
	const char *e = getenv("CNNPIPE_WINO_DW_FUSED");
	if (e && *e == '0')
		return 0;
	// ResNet34 at batch 16: layer4 (64 tiles) 21-26 -> 10-15 ms; layer3
	// (256 tiles) and layer4 at batch 64 (256) as fast or slower: each
	// block reads its 36 planes' operands again, 40 Tr values a plane
	return s->K % 8 == 0 && s->C % 32 == 0 && ntiles <= 128 &&
	       ntiles * (size_t)(s->C + s->K) <= 2 * (size_t)s->K * s->C;
}

static void backward_filter_one_chunk(OpsScratch *sp, DwJob *j, size_t ntiles)
{
	const int C = j->s->C, K = j->s->K, T = ops_threads();
	j->tb = 0;
	j->T = (int)ntiles;
	j->Tr = (j->T + 2 * VL - 1) / (2 * VL) * (2 * VL);
	const size_t n = (size_t)36 * (C + K) * j->Tr;   // values of V and D
	const size_t fl = j->bf16 ? n / 2 : n;           // as floats
	j->V = ops_scratch(sp, 0, 2 * fl);
	j->D = j->bf16 ? (float *)((uint16_t *)j->V + (size_t)36 * C * j->Tr)
	               : j->V + (size_t)36 * C * j->Tr;
	j->pack = (uint16_t *)(j->V + fl);
	size_t ng = (size_t)j->Tr / VL;
	parallel_for(ng, T < (int)ng ? T : (int)ng, transform_slice, j);
	parallel_for(36, T, pack_slice, j);
	size_t nb = (size_t)(K / 8) * (C / 32);
	ops_parallel_dynamic(nb, T, block_slice, j);
}

void conv2d_backward_filter_winograd(OpsScratch *sp, const ConvShape *s,
                                     const float *x, const float *dy, float *dw)
{
	const int C = s->C, K = s->K;
	DwJob j = { .s = s, .x = x, .dy = dy, .dw = dw, .bf16 = ops_bf16() };
	// bf16: rows of whole 32-value vectors for the dot kernel
	const int rt = j.bf16 ? 2 * VL : VL;
	j.TH = (s->P + 3) / 4;
	j.TW = (s->Q + 3) / 4;
	const size_t ntiles = (size_t)s->N * j.TH * j.TW;
	if (wino_dw_stream_applies(s)) {
		backward_filter_streamed(sp, &j, ntiles);
		return;
	}
	if (one_chunk_applies(s, ntiles)) {
		backward_filter_one_chunk(sp, &j, ntiles);
		return;
	}
	// Tiles per chunk: the products want a long inner dimension, V and D
	// (36 (C + K) floats a tile) about 4 M floats.
	const char *e = getenv("CNNPIPE_WINO_DW_TILES");
	long chunk = e && atol(e) > 0 ? atol(e) : ((long)4 << 20) / (36L * (C + K));
	if (chunk < 128)
		chunk = 128;
	if (chunk > 1024)
		chunk = 1024;
	chunk = (chunk + rt - 1) / rt * rt;
	if ((size_t)chunk > ntiles)
		chunk = ((long)ntiles + rt - 1) / rt * rt;
	const size_t KC = (size_t)K * C;
	j.dU = ops_scratch(sp, OPS_SLOT_WEIGHTS, 36 * KC);
	memset(j.dU, 0, sizeof(float) * 36 * KC);
	j.V = ops_scratch(sp, 0, (size_t)36 * (C + K) * chunk);
	int T = ops_threads();
	if (j.bf16 && K % 8 == 0 && C % 32 == 0)
		j.pack = (uint16_t *)ops_scratch(sp, OPS_SLOT_BF16,
		                                 (size_t)T * (C + K) * chunk / 2);
	ops_blas_threads(1);
	for (size_t tb = 0; tb < ntiles; tb += (size_t)chunk) {
		j.tb = tb;
		j.T = ntiles - tb < (size_t)chunk ? (int)(ntiles - tb) : (int)chunk;
		j.Tr = (j.T + rt - 1) / rt * rt;
		j.D = j.bf16 ? (float *)((uint16_t *)j.V + (size_t)36 * C * j.Tr)
		             : j.V + (size_t)36 * C * j.Tr;
		size_t ng = (size_t)j.Tr / VL;
		parallel_for(ng, T < (int)ng ? T : (int)ng, transform_slice, &j);
		parallel_for(36, T, product_slice, &j);
	}
	parallel_for((size_t)K, ops_threads_for((size_t)K, 300.0 * C), filter_slice, &j);
}
