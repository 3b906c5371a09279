// What the engine asks of a device: memory, copies, and every operation of
// the graph, forward and backward, plus the optimiser's update.  The engine
// (libcommon/engine) calls ops only through this table; the CPU backend
// (kernels/cpu, C + OpenBLAS + SIMD) is one implementation of it, a CUDA
// backend (kernels/cuda: cuDNN, cuBLAS) another, so a second device adds files
// and copies no graph code.
//
// Every pointer of float data below is DEVICE memory of that backend (the
// CPU's is host memory: host_memory = 1).  Conventions are kernels/cpu/ops.h's:
// forward writes its output (=); backward writes the input gradient (=) and
// ACCUMULATES parameter gradients (+=); a gradient pointer may be NULL when
// it is not wanted.  Shapes: kernels/shapes.h.
#ifndef CNNPIPE_BACKEND_H
#define CNNPIPE_BACKEND_H
#include <stddef.h>
#include <stdint.h>
#include "kernels/shapes.h"
#include "libcommon/util/rng.h"

// Weight-derived data of one convolution (e.g. Winograd-transformed
// filters), kept between calls; keyed on the weight pointer and shape only,
// so after changing weights in place, invalidate it.  One per conv layer.
typedef struct ConvCache ConvCache;

typedef struct Backend {
	const char *name;        // "cpu", "cuda"
	int host_memory;         // 1: device memory is host memory (no copies)

	// ---- memory ----
	void *(*alloc)(size_t bytes);     // 64-byte aligned; dies when out of memory
	void (*free)(void *p);            // NULL is fine
	void (*to_device)(void *dst, const void *host, size_t bytes);
	void (*to_host)(void *host, const void *src, size_t bytes);
	void (*copy)(void *dst, const void *src, size_t bytes);   // device to device
	void (*zero)(void *p, size_t bytes);
	void (*set_threads)(int n);       // host threads the backend may use
	// bfloat16 products with f32 sums for the convolutions it can (the
	// CPU's: the Winograd layers, ops.h ops_set_bf16); NULL: none
	void (*set_bf16)(int on);

	// ---- convolution ----
	ConvCache *(*conv_cache_new)(void);
	void (*conv_cache_free)(ConvCache *c);
	void (*conv_cache_invalidate)(ConvCache *c);
	// y = conv(x, w) + b; c may be NULL (everything computed afresh)
	void (*conv2d_forward)(ConvCache *c, const ConvShape *s, const float *x,
	                       const float *w, const float *b, float *y);
	// y = act(conv(x, w) + b + res): res (N,K,P,Q) or NULL, act CONV_ACT_*
	void (*conv2d_forward_fused)(ConvCache *c, const ConvShape *s,
	                             const float *x, const float *w,
	                             const float *b, const float *res, int act,
	                             float slope, float *y);
	// the same without res, then a 2x2 stride-2 max pool: y (N,K,P/2,Q/2),
	// P and Q even.  NULL where a backend has none (the pool then runs
	// as its own node).
	void (*conv2d_forward_fused_maxpool2)(ConvCache *c, const ConvShape *s,
	                                      const float *x, const float *w,
	                                      const float *b, int act, float slope,
	                                      float *y);
	// conv2d_forward_fused without res, then the 1x1 convolution (K2
	// outputs, w2 (K2, K), b2, act2; its cache c2) that alone reads its
	// output: y (N, K2, P, Q).  NULL where a backend has none.
	void (*conv2d_forward_fused_pointwise)(ConvCache *c, const ConvShape *s,
	                                       const float *x, const float *w,
	                                       const float *b, int act, float slope,
	                                       ConvCache *c2, int K2, const float *w2,
	                                       const float *b2, int act2, float slope2,
	                                       float *y);
	void (*conv2d_backward)(const ConvShape *s, const float *x, const float *w,
	                        const float *dy, float *dx, float *dw, float *db);
	// eval batch norm folded into a conv: wf = w*g, bf = (b - mean)*g + beta
	void (*conv_fold_batchnorm)(int K, size_t CRS, const float *w,
	                            const float *b, const float *gamma,
	                            const float *beta, const float *mean,
	                            const float *var, float eps, float *wf,
	                            float *bf);

	// ---- batch norm: x, y (N, C, HW); 1d on (N, C) is HW = 1 ----
	void (*batchnorm_forward_train)(int N, int C, int HW, const float *x,
	                                const float *gamma, const float *beta,
	                                float *running_mean, float *running_var,
	                                float momentum, float eps,
	                                float *save_mean, float *save_invstd,
	                                float *y);
	// the same, then act (CONV_ACT_*: ReLU or leaky with slope) in the same
	// pass.  NULL where a backend has none (the activation runs on its own)
	void (*batchnorm_forward_train_act)(int N, int C, int HW, const float *x,
	                                    const float *gamma, const float *beta,
	                                    float *running_mean, float *running_var,
	                                    float momentum, float eps,
	                                    float *save_mean, float *save_invstd,
	                                    int act, float slope, float *y);
	void (*batchnorm_forward_eval)(int N, int C, int HW, const float *x,
	                               const float *gamma, const float *beta,
	                               const float *mean, const float *var,
	                               float eps, float *y);
	void (*batchnorm_backward_train)(int N, int C, int HW, const float *x,
	                                 const float *gamma, const float *save_mean,
	                                 const float *save_invstd, const float *dy,
	                                 float *dx, float *dgamma, float *dbeta);
	// the activation after it fused in: dy' = act > 0 ? dy : slope*dy
	// (slope 0: 0), then batchnorm_backward_train; dx may be dy
	void (*batchnorm_backward_train_act)(int N, int C, int HW, const float *x,
	                                     const float *gamma,
	                                     const float *save_mean,
	                                     const float *save_invstd,
	                                     const float *act, float slope,
	                                     const float *dy, float *dx,
	                                     float *dgamma, float *dbeta);
	void (*batchnorm_backward_eval)(int N, int C, int HW, const float *x,
	                                const float *gamma, const float *mean,
	                                const float *var, float eps,
	                                const float *dy, float *dx, float *dgamma,
	                                float *dbeta);

	// ---- elementwise (n values, in place allowed) ----
	void (*relu_forward)(size_t n, const float *x, float *y);
	void (*relu_backward)(size_t n, const float *y, const float *dy, float *dx);
	void (*leaky_relu_forward)(size_t n, float slope, const float *x, float *y);
	// x: the input, or for slope >= 0 the output (the same signs)
	void (*leaky_relu_backward)(size_t n, float slope, const float *x,
	                            const float *dy, float *dx);
	void (*add_forward)(size_t n, const float *a, const float *b, float *y);
	void (*shortcut_forward)(const ShortcutShape *s, const float *x,
	                         const float *a, float *y);
	void (*shortcut_backward)(const ShortcutShape *s, const float *dy,
	                          float *dx, float *da);
	// mask: device bytes; the draws come from rng (seeded, reproducible)
	void (*dropout_forward)(size_t n, float p, Rng *rng, const float *x,
	                        float *y, uint8_t *mask);
	void (*dropout_backward)(size_t n, float p, const uint8_t *mask,
	                         const float *dy, float *dx);

	// ---- pooling ----
	void (*maxpool2d_forward)(const PoolShape *s, const float *x, float *y,
	                          int32_t *argmax);
	void (*maxpool2d_backward)(const PoolShape *s, const int32_t *argmax,
	                           const float *dy, float *dx);
	// batchnorm_forward_train_act, then a 2x2 stride-2 unpadded max pool
	// into y and argmax, and its backward (cpu/ops.h), in one pass each;
	// NULL where a backend has none (the three run one after the other)
	void (*batchnorm_act_maxpool2_forward_train)(const PoolShape *s,
	        const float *x, const float *gamma, const float *beta,
	        float *running_mean, float *running_var, float momentum,
	        float eps, float *save_mean, float *save_invstd, int act,
	        float slope, float *y, int32_t *argmax);
	void (*batchnorm_act_maxpool2_backward_train)(const PoolShape *s,
	        const float *x, const float *gamma, const float *save_mean,
	        const float *save_invstd, const float *y, const int32_t *argmax,
	        float slope, const float *dy, float *dx, float *dgamma,
	        float *dbeta);
	void (*avgpool2d_forward)(const PoolShape *s, const float *x, float *y);
	void (*avgpool2d_backward)(const PoolShape *s, const float *dy, float *dx);
	void (*concat_pool_forward)(int N, int C, int HW, const float *x,
	                            float *y, int32_t *argmax);
	void (*concat_pool_backward)(int N, int C, int HW, const int32_t *argmax,
	                             const float *dy, float *dx);
	void (*global_avgpool_forward)(int N, int C, int HW, const float *x,
	                               float *y);
	void (*global_avgpool_backward)(int N, int C, int HW, const float *dy,
	                                float *dx);

	// ---- linear, log-softmax, loss ----
	void (*linear_forward)(int N, int I, int O, const float *x, const float *w,
	                       const float *b, float *y);
	// as linear_forward, but each output summed in one order whatever N and
	// the threads, so that an image's outputs do not depend on its batch
	// (inference: shards and batch sizes give the same bytes); training
	// keeps linear_forward, whose sgemm order is PyTorch's
	void (*linear_forward_fixed)(int N, int I, int O, const float *x, const float *w,
	                             const float *b, float *y);
	void (*linear_backward)(int N, int I, int O, const float *x,
	                        const float *w, const float *dy, float *dx,
	                        float *dw, float *db);
	void (*log_softmax_forward)(int N, int K, const float *x, float *y);
	void (*log_softmax_backward)(int N, int K, const float *y,
	                             const float *dy, float *dx);
	// target: device i32 (N); the mean loss comes back to the host
	float (*nll_loss_forward)(int N, int K, const float *logp,
	                          const int32_t *target);
	void (*nll_loss_backward)(int N, int K, const int32_t *target, float dloss,
	                          float *dlogp);

	// ---- optimiser ----
	// SGD with momentum and weight decay, PyTorch's (fast.ai 0.7's optimiser):
	// d = g + wd*p; v = momentum*v + d; p -= lr*v.
	void (*sgd_momentum_update)(size_t n, float lr, float momentum, float wd,
	                            float *p, const float *g, float *v);
} Backend;

// The CPU backend (kernels/cpu/backend.c).
const Backend *backend_cpu(void);
// The CUDA backend (kernels/cuda/backend.cu), set up on first call on the
// process's first GPU; NULL with the reason in err when there is none
// answering, or when this build has no CUDA backend (kernels/cuda/absent.c).
const Backend *backend_cuda(char *err, size_t errlen);

#endif
