// CPU operations of the network engine, f32, NCHW (PyTorch's layout).
//
// Every operation has a plain-loop reference (suffix _ref) that is the
// specification, and the fast path without suffix (OpenBLAS sgemm, SIMD,
// threads) that tests compare with it.  Conventions:
//   - forward writes its output (=);
//   - backward writes the input gradient dx (=) and ACCUMULATES parameter
//     gradients (dw, db, dgamma, dbeta: +=), as PyTorch's .grad does;
//   - any gradient pointer may be NULL when it is not wanted.
#ifndef CNNPIPE_OPS_H
#define CNNPIPE_OPS_H
#include <stddef.h>
#include <stdint.h>
#include "kernels/shapes.h"
#include "libcommon/util/rng.h"

// Threads used by the fast paths (OpenBLAS and our own loops); default 1.
void ops_set_threads(int n);
int ops_threads(void);

// ---- convolution (shapes: kernels/shapes.h) -------------------------------
void conv2d_forward(const ConvShape *s, const float *x, const float *w,
                    const float *b, float *y);
void conv2d_backward(const ConvShape *s, const float *x, const float *w,
                     const float *dy, float *dx, float *dw, float *db);
// The algorithm for 3x3 stride-1 layers, forward and backward: 1 (default)
// = Winograd F(4x4, 3x3), about 2x faster forward, 3x (dx), 1.5-2x (dw)
// backward, error a few 1e-6 of max|y|; 0 = direct products everywhere
// (forward: im2col + our packed kernel; backward: per image im2col +
// sgemm, PyTorch's summation order, closest to its numerics).
void ops_set_winograd(int on);
int ops_winograd(void);
// The Winograd layers' products in bfloat16 with f32 sums (bf16.c), forward
// and both gradients: 0 (default) = f32 throughout; 1 = the transformed
// filters, inputs and output gradients rounded to bf16 (8 significand
// bits) before the products, about 2x their speed with AVX-512 BF16, error
// about 1e-2 of max|y| (train --precision bf16).  Other layers stay f32.
void ops_set_bf16(int on);
int ops_bf16(void);
// Weight-derived data of one convolution layer (Winograd-transformed
// filters), kept between forward calls by whoever owns the weights: a
// network holds one per conv layer.  The cache is keyed on the weight
// pointer and shape only, NOT on the values: after changing the weights in
// place (an optimiser step, loading new weights) call conv_cache_invalidate,
// or the next forward computes with the old weights.  One cache serves one
// thread at a time.  Size: a Winograd layer (3x3, stride 1, C >= 8) keeps
// 36/9 = 4x its weights (ResNet34's body: about 310 MB in all), other
// layers 1x; conv2d_forward without a cache transforms the filters on every
// call instead, into reused scratch memory (ResNet34 at batch 64: about
// 5-8 % more CPU time).
typedef struct ConvCache ConvCache;
ConvCache *conv_cache_new(void);
void conv_cache_free(ConvCache *c);            // NULL is fine
void conv_cache_invalidate(ConvCache *c);      // NULL is fine
// conv2d_forward using (and filling) cache c; c == NULL computes everything
// afresh, exactly as conv2d_forward.  Same results either way.
void conv2d_forward_cached(ConvCache *c, const ConvShape *s, const float *x,
                           const float *w, const float *b, float *y);
// The convolution with its epilogue fused, saving passes over y:
//   y = act(conv(x, w) + b + res)
// res: (N, K, P, Q) or NULL, must not overlap y; act: CONV_ACT_NONE,
// CONV_ACT_RELU (max(v, 0)) or CONV_ACT_LEAKY (v > 0 ? v : slope*v,
// 0 <= slope <= 1; darknet's leaky is 0.1).  A ResNet block in eval mode:
// batch norm folded into w and b, then the residual and the ReLU here.
// Eval-mode batch norm after a convolution folded into it:
//   wf[k] = w[k] * g[k],  bf[k] = (b[k] - mean[k]) * g[k] + beta[k]
// (b[k] = 0 when b is NULL), g[k] = gamma[k] / sqrt(var[k] + eps),
// so conv(x, wf, bf) = batchnorm_forward_eval(conv(x, w, b)) up to rounding.
// w, wf: (K, CRS) (may be the same array); b: (K) or NULL; gamma, beta,
// mean, var, bf: (K).
void conv_fold_batchnorm(int K, size_t CRS, const float *w, const float *b,
                         const float *gamma, const float *beta,
                         const float *mean, const float *var, float eps,
                         float *wf, float *bf);
// w, wf: (K, CRS) (may be the same array); b: (K) or NULL; the rest: (K)
void conv_fold_batchnorm_ref(int K, size_t CRS, const float *w, const float *b,
                             const float *gamma, const float *beta,
                             const float *mean, const float *var, float eps,
                             float *wf, float *bf);
void conv2d_forward_fused(ConvCache *c, const ConvShape *s, const float *x,
                          const float *w, const float *b, const float *res,
                          int act, float slope, float *y);
// conv2d_forward_fused without res, then a 2x2 stride-2 max pool (darknet's
// and VGG's): y (N, K, P/2, Q/2), P and Q even (dies otherwise).  The same
// values as conv2d_forward_fused then maxpool2d_forward, bit for bit.
void conv2d_forward_fused_maxpool2(ConvCache *c, const ConvShape *s, const float *x,
                                   const float *w, const float *b, int act,
                                   float slope, float *y);
// conv2d_forward_fused without res (a 3x3 stride-1 layer, any other runs
// unfused), then a 1x1 convolution of its output with K2 outputs, weights
// w2 (K2, K), bias b2 (or NULL), activation act2 (its cache c2): y (N, K2,
// P, Q).  The same values as the two conv2d_forward_fused, bit for bit.
void conv2d_forward_fused_pointwise(ConvCache *c, const ConvShape *s, const float *x,
                                    const float *w, const float *b, int act,
                                    float slope, ConvCache *c2, int K2,
                                    const float *w2, const float *b2, int act2,
                                    float slope2, float *y);
// (The cached and fused forwards' reference: conv2d_forward_ref, then the
// epilogue's formula above.)
void conv2d_forward_ref(const ConvShape *s, const float *x, const float *w,
                        const float *b, float *y);
void conv2d_backward_ref(const ConvShape *s, const float *x, const float *w,
                         const float *dy, float *dx, float *dw, float *db);

// ---- batch norm (2d: HW = H*W; 1d on (N, C): HW = 1) ---------------------
// x, y: (N, C, HW); gamma, beta, running_mean, running_var: (C)
// gamma, beta may be NULL (1 and 0: affine=False); y may be x.
// Training: normalise with the batch mean and biased variance; update
//   running = (1 - momentum)*running + momentum*batch, with the UNBIASED
//   batch variance for running_var (PyTorch; momentum 0.1 there; with
//   N*HW = 1, which PyTorch refuses, the biased one, 0).  N*HW = 0 does
//   nothing.  running_*, save_* may be NULL.
//   save_mean, save_invstd: (C) kept for backward; invstd = 1/sqrt(var+eps).
void batchnorm_forward_train(int N, int C, int HW, const float *x,
                             const float *gamma, const float *beta,
                             float *running_mean, float *running_var,
                             float momentum, float eps,
                             float *save_mean, float *save_invstd, float *y);
// The same, then the activation act (CONV_ACT_RELU: relu_forward's
// values, CONV_ACT_LEAKY: leaky_relu_forward's with slope, CONV_ACT_NONE)
// in the same pass: a batch norm and the ReLU or leaky after it, in
// training.
void batchnorm_forward_train_act(int N, int C, int HW, const float *x,
                                 const float *gamma, const float *beta,
                                 float *running_mean, float *running_var,
                                 float momentum, float eps, float *save_mean,
                                 float *save_invstd, int act, float slope, float *y);
// x, y: (N, C, HW); gamma, beta, running_*, save_*: (C)
void batchnorm_forward_train_ref(int N, int C, int HW, const float *x,
                                 const float *gamma, const float *beta,
                                 float *running_mean, float *running_var,
                                 float momentum, float eps,
                                 float *save_mean, float *save_invstd, float *y);
// Eval: y = (x - mean) / sqrt(var + eps) * gamma + beta.
void batchnorm_forward_eval(int N, int C, int HW, const float *x,
                            const float *gamma, const float *beta,
                            const float *mean, const float *var, float eps,
                            float *y);
// x, y: (N, C, HW); gamma, beta, mean, var: (C)
void batchnorm_forward_eval_ref(int N, int C, int HW, const float *x,
                                const float *gamma, const float *beta,
                                const float *mean, const float *var, float eps,
                                float *y);
// Backward of training mode (batch statistics depend on x), with the
// forward's save_mean and save_invstd; xhat = (x - mean)*invstd, M = N*HW:
//   dx = gamma*invstd * (dy - sum(dy)/M - xhat*sum(dy*xhat)/M),
//   dgamma += sum dy*xhat, dbeta += sum dy (sums over N and HW).
void batchnorm_backward_train(int N, int C, int HW, const float *x,
                              const float *gamma, const float *save_mean,
                              const float *save_invstd, const float *dy,
                              float *dx, float *dgamma, float *dbeta);
// x, dy, dx: (N, C, HW); gamma, save_*, dgamma, dbeta: (C)
void batchnorm_backward_train_ref(int N, int C, int HW, const float *x,
                                  const float *gamma, const float *save_mean,
                                  const float *save_invstd, const float *dy,
                                  float *dx, float *dgamma, float *dbeta);
// The backward of an activation after a training-mode batch norm fused
// into the batch norm's: dy' = act > 0 ? dy : slope*dy (slope 0: ReLU,
// dy' = 0; act: the activation's output, or its input (the batch norm's
// output): for slope >= 0 both have the same signs), then
// batchnorm_backward_train on dy', in one pass fewer.
// act, dy, dx: (N, C, HW); dx may be dy.
void batchnorm_backward_train_act(int N, int C, int HW, const float *x,
                                  const float *gamma, const float *save_mean,
                                  const float *save_invstd, const float *act,
                                  float slope, const float *dy, float *dx,
                                  float *dgamma, float *dbeta);
void batchnorm_backward_train_act_ref(int N, int C, int HW, const float *x,
                                      const float *gamma,
                                      const float *save_mean,
                                      const float *save_invstd,
                                      const float *act, float slope,
                                      const float *dy, float *dx,
                                      float *dgamma, float *dbeta);
// Backward of eval mode (fixed statistics): dx = gamma*invstd * dy, the
// parameter gradients as in training.
void batchnorm_backward_eval(int N, int C, int HW, const float *x,
                             const float *gamma, const float *mean,
                             const float *var, float eps, const float *dy,
                             float *dx, float *dgamma, float *dbeta);
// x, dy, dx: (N, C, HW); gamma, mean, var, dgamma, dbeta: (C)
void batchnorm_backward_eval_ref(int N, int C, int HW, const float *x,
                                 const float *gamma, const float *mean,
                                 const float *var, float eps, const float *dy,
                                 float *dx, float *dgamma, float *dbeta);

// ---- activations (elementwise over n values; in-place allowed) ----------
// The fast paths equal the references bit for bit.
// x, y: (n); y = x > 0 ? x : 0 (NaN gives 0, unlike torch.relu)
void relu_forward(size_t n, const float *x, float *y);
void relu_forward_ref(size_t n, const float *x, float *y);
// y: the forward output (y > 0 <=> x > 0); y, dy, dx: (n);
// dx = y > 0 ? dy : 0
void relu_backward(size_t n, const float *y, const float *dy, float *dx);
void relu_backward_ref(size_t n, const float *y, const float *dy, float *dx);
// x, y: (n); y = x > 0 ? x : x*slope
void leaky_relu_forward(size_t n, float slope, const float *x, float *y);
void leaky_relu_forward_ref(size_t n, float slope, const float *x, float *y);
// x, dy, dx: (n); dx = x > 0 ? dy : dy*slope
void leaky_relu_backward(size_t n, float slope, const float *x,
                         const float *dy, float *dx);
void leaky_relu_backward_ref(size_t n, float slope, const float *x,
                             const float *dy, float *dx);

// ---- pooling -------------------------------------------------------------
// Pool shapes: kernels/shapes.h (PoolShape).
// argmax: (N, C, P, Q) index into the H*W plane of the max; may be NULL when
// no backward follows.  The first maximum in the window (row by row) wins;
// a NaN beats every number, the first NaN wins (PyTorch).  A window wholly
// outside x gives 0 and argmax -1, which backward skips.  The fast path
// equals the reference bit for bit, with argmax or without.
// x: (N, C, H, W), y: (N, C, P, Q)
void maxpool2d_forward(const PoolShape *s, const float *x, float *y,
                       int32_t *argmax);
void maxpool2d_forward_ref(const PoolShape *s, const float *x, float *y,
                           int32_t *argmax);
// dy: (N, C, P, Q), dx: (N, C, H, W): dx (=) gets each dy at its argmax
void maxpool2d_backward(const PoolShape *s, const int32_t *argmax,
                        const float *dy, float *dx);
void maxpool2d_backward_ref(const PoolShape *s, const int32_t *argmax,
                            const float *dy, float *dx);
// A training batch norm, then act (CONV_ACT_*, as batchnorm_forward_train_act)
// and a 2x2 stride-2 unpadded max pool (s: k 2, stride 2, pad 0): the
// values, argmax and statistics of batchnorm_forward_train_act then
// maxpool2d_forward, bit for bit, without the activation's full-size maps.
// x: (N, C, H, W); y, argmax: (N, C, P, Q); gamma .. save_invstd: (C)
void batchnorm_act_maxpool2_forward_train(const PoolShape *s, const float *x,
        const float *gamma, const float *beta, float *running_mean,
        float *running_var, float momentum, float eps, float *save_mean,
        float *save_invstd, int act, float slope, float *y, int32_t *argmax);
void batchnorm_act_maxpool2_forward_train_ref(const PoolShape *s, const float *x,
        const float *gamma, const float *beta, float *running_mean,
        float *running_var, float momentum, float eps, float *save_mean,
        float *save_invstd, int act, float slope, float *y, int32_t *argmax);
// Its backward: maxpool2d_backward then batchnorm_backward_train_act with
// the activation's output at each argmax taken from y, the pooled output
// (slope 0 for a ReLU).  dy: (N, C, P, Q), dx: (N, C, H, W) (=), not dy.
// The sums run over the argmax cells alone, so they may round differently
// from the unfused ones (both in double).
void batchnorm_act_maxpool2_backward_train(const PoolShape *s, const float *x,
        const float *gamma, const float *save_mean, const float *save_invstd,
        const float *y, const int32_t *argmax, float slope, const float *dy,
        float *dx, float *dgamma, float *dbeta);
void batchnorm_act_maxpool2_backward_train_ref(const PoolShape *s, const float *x,
        const float *gamma, const float *save_mean, const float *save_invstd,
        const float *y, const int32_t *argmax, float slope, const float *dy,
        float *dx, float *dgamma, float *dbeta);
// x: (N, C, H, W), y: (N, C, P, Q); y = sum of the window's cells in x over
// PyTorch's divisor (count_include_pad=True: the window's cells inside the
// padded input, clipped at H + pad, W + pad); 0 where that is 0.
void avgpool2d_forward(const PoolShape *s, const float *x, float *y);
void avgpool2d_forward_ref(const PoolShape *s, const float *x, float *y);
// dy: (N, C, P, Q), dx: (N, C, H, W) (=)
void avgpool2d_backward(const PoolShape *s, const float *dy, float *dx);
void avgpool2d_backward_ref(const PoolShape *s, const float *dy, float *dx);

// fast.ai AdaptiveConcatPool2d with output 1x1: x: (N, C, HW) -> y: (N, 2C)
// with y[n, 0:C] = max over HW (maxpool's rule for ties and NaN),
// y[n, C:2C] = mean over HW.  argmax: (N, C) or NULL.  HW >= 1.
void concat_pool_forward(int N, int C, int HW, const float *x, float *y,
                         int32_t *argmax);
void concat_pool_forward_ref(int N, int C, int HW, const float *x, float *y,
                             int32_t *argmax);
// dy: (N, 2C), argmax: (N, C) -> dx: (N, C, HW) (=)
void concat_pool_backward(int N, int C, int HW, const int32_t *argmax,
                          const float *dy, float *dx);
void concat_pool_backward_ref(int N, int C, int HW, const int32_t *argmax,
                              const float *dy, float *dx);
// Global average pool: x: (N, C, HW) -> y: (N, C)
void global_avgpool_forward(int N, int C, int HW, const float *x, float *y);
void global_avgpool_forward_ref(int N, int C, int HW, const float *x, float *y);
// dy: (N, C) -> dx: (N, C, HW) = dy/HW (=)
void global_avgpool_backward(int N, int C, int HW, const float *dy, float *dx);
void global_avgpool_backward_ref(int N, int C, int HW, const float *dy, float *dx);

// ---- residual add --------------------------------------------------------
// y = a + b, n values (y may alias a or b); a, b, y: (n)
void add_forward(size_t n, const float *a, const float *b, float *y);
void add_forward_ref(size_t n, const float *a, const float *b, float *y);

// ---- darknet shortcut of maps of different sizes -------------------------
// darknet's shortcut layer (src/blas.c shortcut_cpu, weights 1 and 1): the
// output starts as x, the block's output, and the earlier map a is added to
// its first min(C, Ca) channels on a grid: with stride = max(Wa/W, 1) and
// sample = max(W/Wa, 1), for j < min(H, Ha), i < min(W, Wa):
//   y[n, c, j*sample, i*sample] += a[n, c, j*stride, i*stride]
// x, y: (N, C, H, W); a: (N, Ca, Ha, Wa).  Equal shapes: y = x + a.
// y may be x.  (H/Ha must match W/Wa: the rows are not bounds-checked.)
void shortcut_forward(const ShortcutShape *s, const float *x, const float *a,
                      float *y);
void shortcut_forward_ref(const ShortcutShape *s, const float *x, const float *a,
                          float *y);
// dy, dx: (N, C, H, W); da: (N, Ca, Ha, Wa); dx or da may be NULL.
// dx = dy (=, dx may be dy); da (=): dy gathered back onto the grid, zero
// elsewhere.
void shortcut_backward(const ShortcutShape *s, const float *dy, float *dx,
                       float *da);
void shortcut_backward_ref(const ShortcutShape *s, const float *dy, float *dx,
                           float *da);

// ---- linear --------------------------------------------------------------
// x: (N, I), w: (O, I), b: (O) or NULL, y: (N, O)
void linear_forward(int N, int I, int O, const float *x, const float *w,
                    const float *b, float *y);
// linear_forward with each output summed in one fixed order whatever N and
// the threads: an image's outputs are the same bits in any batch.
void linear_forward_fixed(int N, int I, int O, const float *x, const float *w,
                          const float *b, float *y);
void linear_backward(int N, int I, int O, const float *x, const float *w,
                     const float *dy, float *dx, float *dw, float *db);
void linear_forward_ref(int N, int I, int O, const float *x, const float *w,
                        const float *b, float *y);
void linear_backward_ref(int N, int I, int O, const float *x, const float *w,
                         const float *dy, float *dx, float *dw, float *db);

// ---- dropout (inverted) --------------------------------------------------
// Keeps each value with probability 1-p and scales kept values by 1/(1-p)
// (y = x * s, s = 1/(1-p) rounded to float once); mask: (n) bytes,
// 1 = kept, or NULL.  For 0 < p < 1 one rng_uniform per value, in order,
// kept when it is >= p; p <= 0 copies (all kept), p >= 1 zeroes (none
// kept), neither drawing.  The fast path equals the reference bit for bit
// and leaves rng in the same state.  x, y: (n); y may be x.
void dropout_forward(size_t n, float p, Rng *rng, const float *x, float *y,
                     uint8_t *mask);
void dropout_forward_ref(size_t n, float p, Rng *rng, const float *x, float *y,
                         uint8_t *mask);
// dy, dx, mask: (n); dx = mask ? dy * s : 0 (p <= 0: dx = dy); dx may be dy.
void dropout_backward(size_t n, float p, const uint8_t *mask,
                      const float *dy, float *dx);
void dropout_backward_ref(size_t n, float p, const uint8_t *mask,
                          const float *dy, float *dx);

// ---- log-softmax and NLL loss -------------------------------------------
// x, y: (N, K), y = log_softmax(x) along K
void log_softmax_forward(int N, int K, const float *x, float *y);
void log_softmax_forward_ref(int N, int K, const float *x, float *y);
// y: forward output; dx = dy - exp(y) * sum_k dy
// y, dy, dx: (N, K)
void log_softmax_backward(int N, int K, const float *y, const float *dy,
                          float *dx);
void log_softmax_backward_ref(int N, int K, const float *y, const float *dy,
                              float *dx);
// logp: (N, K), target: (N) -> mean over N of -logp[n, target[n]]
// (NaN for N = 0; a target outside [0, K) is fatal)
float nll_loss_forward(int N, int K, const float *logp, const int32_t *target);
float nll_loss_forward_ref(int N, int K, const float *logp, const int32_t *target);
// dlogp = -1/N at each target, 0 elsewhere (times dloss)
// target: (N), dlogp: (N, K) (=)
void nll_loss_backward(int N, int K, const int32_t *target, float dloss,
                       float *dlogp);
void nll_loss_backward_ref(int N, int K, const int32_t *target, float dloss,
                           float *dlogp);

// ---- optimiser -----------------------------------------------------------
// One SGD step with momentum and weight decay, torch.optim.SGD's (dampening
// 0, no Nesterov), as fast.ai 0.7 trains with it:
//   d = g + wd*p   (skipped when wd == 0, as PyTorch)
//   v = momentum*v + d
//   p = p - lr*v
// p, g, v: (n), three distinct arrays.  v, the momentum buffer, starts at
// zero (the first step then sets v = d, as PyTorch's first step does).  The
// fast path (16 at a time, threads for large n) does the reference's float
// operations in its order, each rounded, no fused multiply-add: the two
// agree bit for bit.
void sgd_momentum_update(size_t n, float lr, float momentum, float wd,
                         float *p, const float *g, float *v);
void sgd_momentum_update_ref(size_t n, float lr, float momentum, float wd,
                             float *p, const float *g, float *v);

#endif
