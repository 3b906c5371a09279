// The CUDA backend's operations, one file each, with the signatures and
// conventions of the table in kernels/backend.h (forward writes, backward
// writes dx and accumulates parameter gradients, NULL gradients are not
// wanted); every float pointer is device memory, f32, NCHW.  Each has a
// plain-loop CPU reference in kernels/cpu (its *_ref), which
// tests/gpu/test_cuda_ops.c compares it with.
#ifndef CNNPIPE_OPS_CUDA_CUH
#define CNNPIPE_OPS_CUDA_CUH
#include "cuda_common.cuh"

// conv2d.cu: cuDNN, its algorithms picked once per shape
ConvCache *cu_conv_cache_new(void);
void cu_conv_cache_free(ConvCache *c);
void cu_conv_cache_invalidate(ConvCache *c);
void cu_conv2d_forward(ConvCache *c, const ConvShape *s, const float *x,
                       const float *w, const float *b, float *y);
void cu_conv2d_forward_fused(ConvCache *c, const ConvShape *s, const float *x,
                             const float *w, const float *b, const float *res,
                             int act, float slope, float *y);
void cu_conv2d_backward(const ConvShape *s, const float *x, const float *w,
                        const float *dy, float *dx, float *dw, float *db);
void cu_conv_plans_free(void);
// conv_fold.cu
void cu_conv_fold_batchnorm(int K, size_t CRS, const float *w, const float *b,
                            const float *gamma, const float *beta,
                            const float *mean, const float *var, float eps,
                            float *wf, float *bf);

// batchnorm.cu
void cu_batchnorm_forward_train(int N, int C, int HW, const float *x,
                                const float *gamma, const float *beta,
                                float *running_mean, float *running_var,
                                float momentum, float eps, float *save_mean,
                                float *save_invstd, float *y);
void cu_batchnorm_forward_eval(int N, int C, int HW, const float *x,
                               const float *gamma, const float *beta,
                               const float *mean, const float *var, float eps,
                               float *y);
void cu_batchnorm_backward_train(int N, int C, int HW, const float *x,
                                 const float *gamma, const float *save_mean,
                                 const float *save_invstd, const float *dy,
                                 float *dx, float *dgamma, float *dbeta);
void cu_batchnorm_backward_eval(int N, int C, int HW, const float *x,
                                const float *gamma, const float *mean,
                                const float *var, float eps, const float *dy,
                                float *dx, float *dgamma, float *dbeta);

// activation.cu
void cu_relu_forward(size_t n, const float *x, float *y);
void cu_relu_backward(size_t n, const float *y, const float *dy, float *dx);
void cu_leaky_relu_forward(size_t n, float slope, const float *x, float *y);
void cu_leaky_relu_backward(size_t n, float slope, const float *x,
                            const float *dy, float *dx);
// add.cu
void cu_add_forward(size_t n, const float *a, const float *b, float *y);
// shortcut.cu
void cu_shortcut_forward(const ShortcutShape *s, const float *x, const float *a,
                         float *y);
void cu_shortcut_backward(const ShortcutShape *s, const float *dy, float *dx,
                          float *da);
// dropout.cu: the mask drawn on the host from rng, as the CPU draws it
void cu_dropout_forward(size_t n, float p, Rng *rng, const float *x, float *y,
                        uint8_t *mask);
void cu_dropout_backward(size_t n, float p, const uint8_t *mask,
                         const float *dy, float *dx);
void cu_dropout_free(void);

// pool.cu: max and average over windows
void cu_maxpool2d_forward(const PoolShape *s, const float *x, float *y,
                          int32_t *argmax);
void cu_maxpool2d_backward(const PoolShape *s, const int32_t *argmax,
                           const float *dy, float *dx);
void cu_avgpool2d_forward(const PoolShape *s, const float *x, float *y);
void cu_avgpool2d_backward(const PoolShape *s, const float *dy, float *dx);
// concat_pool.cu: fast.ai's concat pool and the global average
void cu_concat_pool_forward(int N, int C, int HW, const float *x, float *y,
                            int32_t *argmax);
void cu_concat_pool_backward(int N, int C, int HW, const int32_t *argmax,
                             const float *dy, float *dx);
void cu_global_avgpool_forward(int N, int C, int HW, const float *x, float *y);
void cu_global_avgpool_backward(int N, int C, int HW, const float *dy,
                                float *dx);

// linear.cu: cuBLAS
void cu_linear_forward(int N, int I, int O, const float *x, const float *w,
                       const float *b, float *y);
void cu_linear_backward(int N, int I, int O, const float *x, const float *w,
                        const float *dy, float *dx, float *dw, float *db);
// softmax_nll.cu
void cu_log_softmax_forward(int N, int K, const float *x, float *y);
void cu_log_softmax_backward(int N, int K, const float *y, const float *dy,
                             float *dx);
float cu_nll_loss_forward(int N, int K, const float *logp,
                          const int32_t *target);
void cu_nll_loss_backward(int N, int K, const int32_t *target, float dloss,
                          float *dlogp);
// sgd.cu
void cu_sgd_momentum_update(size_t n, float lr, float momentum, float wd,
                            float *p, const float *g, float *v);

#endif
