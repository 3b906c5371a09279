// Shared helpers of the CPU ops (not a contract header).
#ifndef CNNPIPE_OPS_INTERNAL_H
#define CNNPIPE_OPS_INTERNAL_H
#include <stddef.h>
#include "ops.h"
#include "libcommon/util/threads.h"

// OpenBLAS's thread count is one global; set it only when it changes.
// Callers that run sgemm inside our own parallel_for set it to 1 first so
// that the two kinds of threads do not multiply.
void ops_blas_threads(int n);

// Elementwise loops below this size run on one thread: starting threads
// costs more than the memory-bound work they would share.
#define OPS_PAR_MIN ((size_t)1 << 18)

// The thread count to use for n independent items of roughly `work` flops
// each: 1 when the whole job is too small to share.
int ops_threads_for(size_t n, double work);

// Parallel loop handing items out one at a time from a shared counter, so
// that a thread the (shared) machine slows down takes fewer of them:
// fn(ctx, i, i + 1, thread) for every i in [0, n) on up to nthreads threads.
void ops_parallel_dynamic(size_t n, int nthreads, ParallelFn fn, void *ctx);

// Scratch memory reused between calls (page faults of fresh large buffers
// cost more than a small layer's work): one growing 64-byte aligned buffer
// per thread slot.  ops_scratch_acquire takes the shared pool, or, when
// another caller holds it (ops called from several threads at once), a
// private one; release frees a private pool and returns the shared one.
typedef struct OpsScratch OpsScratch;
OpsScratch *ops_scratch_acquire(void);
void ops_scratch_release(OpsScratch *p);
float *ops_scratch(OpsScratch *p, int slot, size_t floats);
// The slot conv2d_forward keeps uncached prepared weights in (thread
// slots are 0 .. threads-1 <= 255).
#define OPS_SLOT_WEIGHTS 256
// A second one, for the backward's work space beside prepared weights.
#define OPS_SLOT_WORK 257

// m[i][j] (row stride ldm) = bias[i] + sum over c < C of u[c][i] * v[c][j]
// for i < 8, j < 32: u packed (C, 8), v (C, 32) with row stride ldv;
// m written (=); bias NULL = 0.
#define OPS_GEMM_MR 8
#define OPS_GEMM_NR 32
void ops_gemm_8x32(int C, const float *u, const float *v, size_t ldv, float *m,
                   size_t ldm, const float *bias);

// The fused epilogue of conv2d_forward_fused: v + res, then the activation
// (slope 0 = ReLU, 1 = none: max(v, slope*v)).  pool = 2: a 2x2 stride-2
// max pool follows (conv2d_forward_fused_maxpool2; res is NULL, P and Q
// even), so y is (N, K, P/2, Q/2) and the algorithms that pool while the
// outputs are in registers or cache (Winograd, direct) do.
// pw: a 1x1 convolution follows (conv2d_forward_fused_pointwise; Winograd
// only, res NULL, pool 0): the outputs go through it, and y is unused.
typedef struct ConvPointwise ConvPointwise;
typedef struct { const float *res; float slope; int on, pool; const ConvPointwise *pw; } ConvEpi;
// The 1x1 convolution after a Winograd layer: wp its weights packed by
// conv_pack_weights for K2 outputs of the layer's K channels, b its bias
// (or NULL), then max(v, slope*v) when on; y (N, K2, P, Q) its output.
struct ConvPointwise {
	const float *wp, *b;
	int K2, on;
	float slope;
	float *y;
};
// Applies it to output pixels [j0, j1) (global index (n*P + p)*Q + q) of
// all K channels of y (conv_epilogue.c, shared by conv2d.c and
// conv_direct.c so that neither calls the other's file back).
void conv_epilogue_range(const ConvEpi *e, const ConvShape *s, float *y,
                         size_t j0, size_t j1);
// The activation of e (res unused), then the 2x2 stride-2 max pool of K
// planes of rows x Q outputs (rows, Q even): src (K, rows, Q) with channel
// stride src_cs, dst (K, rows/2, Q/2) with channel stride dst_cs.  The same
// values as maxpool2d_forward after conv_epilogue_range, bit for bit.
void conv_epilogue_pool2(const ConvEpi *e, int K, int rows, int Q,
                         const float *src, size_t src_cs, float *dst,
                         size_t dst_cs);
// The epilogue's activation of one value: max(v, slope*v) as v > slope*v ?
// v : slope*v, the rule every fused path applies so that their values agree
static inline float epi_act(float v, float slope)
{
	float sv = v * slope;
	return v > sv ? v : sv;
}
// The bias of output channels k0 .. k0+nk-1 (nk <= 8) as ops_gemm_8x32
// takes it, zeros past nk, in out8; NULL when there is none
static inline const float *ops_bias8(const float *b, int k0, int nk, float *out8)
{
	for (int i = 0; i < 8; i++)
		out8[i] = b && i < nk ? b[k0 + i] : 0.0f;
	return b ? out8 : NULL;
}
// dst[i] += each of `slots` partial sums parts[t*n + i], in slot order (the
// per-thread partials of a gradient: the same bits for the same threads)
static inline void ops_add_partials(float *dst, const float *parts, int slots, size_t n)
{
	for (int t = 0; t < slots; t++)
		for (size_t i = 0; i < n; i++)
			dst[i] += parts[(size_t)t * n + i];
}
// maxpool2d_forward's rule for a window's cells taken in order: v replaces
// the running m when it is larger, or a NaN where m is not (the first NaN
// wins, as PyTorch)
static inline float pool_pick(float m, float v)
{
	return v > m || (v != v && m == m) ? v : m;
}

// Helpers of conv2d.c's column blocks, shared with the backward
// (conv_backward.c).  Output pixel j = (n*P + p)*Q + q over the batch.
// Valid output columns [*lo, *hi) of kernel column t: 0 <= q*st-pad+t < W.
void conv_valid_range(int W, int Q, int stride, int pad, int t, int *lo, int *hi);
// col: (C*R*S, ld) <- the input patches of output pixels [j0, j1), in its
// first j1 - j0 columns
void conv_im2col_range(const ConvShape *s, const float *x, size_t j0, size_t j1,
                       float *col, size_t ld);
// 1x1, stride 1, no padding: x[n] is its own column matrix
int conv_is_pointwise(const ConvShape *s);
// Weights (K, C*R*S) packed for ops_gemm_8x32: wp[k/8][e][k%8], rows k >= K
// zero; conv_packed_weights_floats(s) floats.
size_t conv_packed_weights_floats(const ConvShape *s);
void conv_pack_weights(const ConvShape *s, const float *w, float *wp);
// The forward by packed im2col blocks and ops_gemm_8x32 (any shape);
// each output is bias + its sum in one fixed order, wherever it lies in
// the batch.
void conv2d_forward_packed(OpsScratch *sp, const ConvShape *s, const float *x,
                           const float *wp, const float *b, const ConvEpi *epi,
                           float *y);

// Winograd F(4x4, 3x3) forward (conv_winograd.c): applies to 3x3, stride 1,
// pad <= 2, outputs of at least 4x4.
int conv2d_winograd_applies(const ConvShape *s);
// Transformed filters for a K x C layer: wino_filter_floats(K, C) floats,
// filled by wino_filter_transform; conv2d_forward_winograd takes them.
size_t wino_filter_floats(int K, int C);
// F(4x4, 3x3)'s filter transform G (6x3): U = G g G^T
extern const float wino_G[6][3];
void wino_filter_transform(int K, int C, const float *w, float *U);
void conv2d_forward_winograd(OpsScratch *sp, const ConvShape *s, const float *x,
                             const float *U, const float *b, const ConvEpi *epi,
                             float *y);
// The transformed filters of the data gradient of a K x C layer with
// filters w (K, C, 3, 3): dx = conv(dy, w rotated by 180 degrees with the
// channel axes swapped), a C x K convolution; U: wino_filter_floats(C, K).
void wino_filter_transform_flipped(int K, int C, const float *w, float *U);
// The layouts of the input transform's V (conv_winograd.c input_group)
typedef enum {
	V_BLOCKED,        // f32, the product kernel's (Tr/32, C, 32) per plane
	V_PLAIN,          // f32, (C, Tr) per plane: rows of tiles, stored
	                  // non-temporally (VST_STREAM): the caller fences
	                  // (ops_stream_fence) before V is shared
	V_BLOCKED_BF16,   // bf16 pairs of channels, (Tr/32, C2, 32, 2) per plane
	V_PLAIN_BF16,     // bf16, (C, Tr) per plane
	V_PLAIN_CACHED,   // V_PLAIN with ordinary stores (a small buffer, read at once)
} WinoVLayout;
// The input transform of tiles tb + g0 .. tb + g1 - 1 of a chunk of T
// tiles (g0, g1 multiples of 16; tiles past T give zeros; tile t is image
// t / (TH*TW), row block, column block of s's 4x4 output tiles) into
// V[xi][c][t - tb]: 36 planes of (C, Tr) values, rows of Tr tiles, V
// 64-byte aligned, in layout V_PLAIN, V_PLAIN_BF16 or V_PLAIN_CACHED.
void wino_input_transform_plain(const ConvShape *s, const float *x, size_t tb,
                                int T, int g0, int g1, float *V, int Tr,
                                WinoVLayout layout);
#ifdef __AVX512F__
#include <immintrin.h>
// Transposes the 8 x 8 block r[kk][c] in place: r[c][kk].
static inline void ops_tr8x8(__m256 r[8])
{
	__m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
	__m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
	__m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
	__m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
	__m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
	__m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
	__m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
	__m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
	r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
	r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
	r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
	r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
	r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
	r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
	r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
	r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
#endif

// ---- bfloat16 (bf16.c) ----
// rows x n bf16 (rows of n, n/2 pairs) -> blocks of blk rows, each
// (n/2, blk, 2): dst[b][p][r] = the pair p of row b*blk + r, as the 8 x 32
// kernel reads its operands (rows, blk multiples of 8, n of 16)
void ops_pack_pairs(const uint16_t *src, int rows, int n, int blk, uint16_t *dst);
// The same of 32-bit words: rows x W -> dst[b][p][r] (W a multiple of 8)
void ops_pack_words(const uint32_t *src, int rows, size_t W, int blk, uint32_t *dst);
// f32 -> bf16 as vcvtneps2bf16 (nearest even, denormals to zero), back
uint16_t ops_bf16_round(float f);
float ops_bf16_float(uint16_t h);
void ops_f32_to_bf16(const float *x, size_t n, uint16_t *y);
// out[2l] = lo[l], out[2l + 1] = hi[l] as bf16, l < 16
void wino_pair_bf16(const float *lo, const float *hi, uint16_t *out);
// Transformed filters U (wino_filter_floats layout (36, K8/8, C, 8)) as
// bf16 pairs along C: Ub (36, K8/8, C2, 8, 2), C2 = ceil(C/2), zeros past C
size_t wino_filter_bf16_halfs(int K, int C);
void wino_filter_to_bf16(int K, int C, const float *U, uint16_t *Ub);
// m[i][j] (row stride ldm) = sum over c2 < C2, h < 2 of u[c2][i][h] *
// v[c2][j][h], i < 8, j < 32: u (C2, 8, 2), v rows of (32, 2) at stride ldv
// (acc: m += instead)
void ops_gemm_8x32_bf16(int C2, const uint16_t *u, const uint16_t *v, size_t ldv,
                        float *m, size_t ldm, int acc);
void ops_gemm_8x32_bf16_ref(int C2, const uint16_t *u, const uint16_t *v,
                            size_t ldv, float *m, size_t ldm, int acc);
// c[r][q] += sum over t < n of a[r][t] * b[q][t], r, q < 4 (rows of bf16)
void ops_dot4x4_bf16(int n, const uint16_t *a, size_t lda, const uint16_t *b,
                     size_t ldb, float *c, size_t ldc);
void ops_dot4x4_bf16_ref(int n, const uint16_t *a, size_t lda, const uint16_t *b,
                         size_t ldb, float *c, size_t ldc);
// C (M, N) += A (M, n) . B (N, n)^T, bf16 rows, n a multiple of 32 for speed
void ops_gemm_nt_bf16(int M, int N, int n, const uint16_t *A, size_t lda,
                      const uint16_t *B, size_t ldb, float *C, size_t ldc);
// The scratch slot of the forward's bf16 filters
#define OPS_SLOT_BF16 258
// Orders the calling thread's non-temporal stores before what follows
// (a thread that streamed a buffer calls it before the buffer is shared).
void ops_stream_fence(void);
// The Winograd transforms' non-temporal store of one 16-float vector v at
// p, 64-byte aligned (vst, the file's plain store, without AVX-512): for
// the filter gradient's V and D, read back much later by the products.  A
// transform writes 36 rows of every channel, each a whole line; ordinary
// stores first read each line in, and these many streams ran at a third
// of the memory's speed (ResNet34's layer3 at batch 16: 5.3 ms for the
// transforms, 1.5 ms with these).  A macro, as vst: no vector crosses a
// call.
#ifdef __AVX512F__
#define VST_STREAM(p, v) _mm512_stream_ps((p), (__m512)(v))
#else
#define VST_STREAM(p, v) vst(p, v)
#endif
// The filter gradient of a 3x3 stride-1 layer in the Winograd domain
// (conv_winograd_dw.c): dw (K, C, 3, 3) += the gradient, for shapes where
// conv_backward_filter_winograd_applies (conv_backward.c).
int conv_backward_filter_winograd_applies(const ConvShape *s);
// Its streamed form (16 or 32 input channels, a partial dU that stays in
// the cache; conv_winograd_dw.c): no transforms through memory
int wino_dw_stream_applies(const ConvShape *s);
void conv2d_backward_filter_winograd(OpsScratch *sp, const ConvShape *s,
                                     const float *x, const float *dy, float *dw);
// The filter gradient of a 3x3 stride-1 convolution of 3 input channels
// (conv_dw_c3.c; AVX-512 builds only), dw += its sums.
int conv_backward_filter_c3_applies(const ConvShape *s);
void conv2d_backward_filter_c3(OpsScratch *sp, const ConvShape *s, const float *x,
                               const float *dy, float *dw);
// Direct convolution for few input channels (conv_direct.c): weights packed
// by conv_direct_pack into conv_direct_weights_floats(s) floats.
int conv2d_direct_applies(const ConvShape *s);
size_t conv_direct_weights_floats(const ConvShape *s);
void conv_direct_pack(const ConvShape *s, const float *w, float *wd);
void conv2d_forward_direct(OpsScratch *sp, const ConvShape *s, const float *x,
                           const float *wd, const float *b, const ConvEpi *epi,
                           float *y);
// ---- batch norm and pooling pieces (batchnorm.c, pool.c), for the fused
// batch norm + activation + pool (bn_act_pool.c) ----
// Channel c of batchnorm_forward_train: its statistics (running and saved
// ones updated as there) and the scale and shift it applies: y = x*scale
// + shift.  x: (N, C, HW).
void bn_train_channel(int N, int C, int HW, const float *x, int c,
                      const float *gamma, const float *beta, float *running_mean,
                      float *running_var, float momentum, float eps,
                      float *save_mean, float *save_invstd, float *scale,
                      float *shift);
// The rest of bn_train_channel, from the channel's sums about k (M
// values): sum (x - k) = s1, sum (x - k)^2 = s2.
void bn_finish_channel(int c, double M, double k, double s1, double s2,
                       const float *gamma, const float *beta, float *running_mean,
                       float *running_var, float momentum, float eps,
                       float *save_mean, float *save_invstd, float *scale,
                       float *shift);
// Batch norm of (N, C) rows, HW = 1 (batchnorm1d.c): batchnorm.c's fast
// paths with the channels across the lanes, the same sums in the same
// order.  Backward: var is save_invstd when train, else the running
// variance (eps added); act may be NULL.
void bn1d_forward(int N, int C, int train, const float *x, const float *gamma,
                  const float *beta, float *running_mean, float *running_var,
                  float momentum, float eps, float *save_mean, float *save_invstd,
                  const float *mean, const float *var, int act, float slope,
                  float *y);
void bn1d_backward(int N, int C, int train, const float *x, const float *gamma,
                   const float *mean, const float *var, float eps,
                   const float *act, float slope, const float *dy, float *dx,
                   float *dgamma, float *dbeta);
// y = x*scale + shift over n values (a product, then a sum: no fused
// multiply-add), then act (CONV_ACT_*): relu_forward's or
// leaky_relu_forward's formula, or none.  y may be x.  stream: a 64-byte
// aligned y is stored past the caches (the caller fences: ops_stream_fence).
void bn_apply_row(const float *x, float *y, int n, float scale, float shift,
                  int act, float slope, int stream);
// A batch norm's output or gradient of more than 8 MiB is in no cache when
// the next layer reads it: stored past the caches, its lines are not first
// read in (bn_apply_row's stream).
static inline int bn_streams(int N, int C, int HW)
{
	return (size_t)N * C * HW > ((size_t)2 << 20);
}
// One plane of maxpool2d_forward (s's N and C ignored): the same values
// and argmax.  xp: (H, W), yp, ap: (P, Q); ap may be NULL.
void maxpool2d_forward_plane(const PoolShape *s, const float *xp, float *yp,
                             int32_t *ap);

#endif
