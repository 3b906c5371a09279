// Shared helpers of the CPU ops (not a contract header).
#ifndef CNNPIPE_OPS_INTERNAL_H
#define CNNPIPE_OPS_INTERNAL_H
#include <stddef.h>
#include "ops.h"

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

// Winograd F(4x4, 3x3) forward (conv_winograd.c): applies to 3x3, stride 1,
// pad <= 2, outputs of at least 4x4.
int conv2d_winograd_applies(const ConvShape *s);
void conv2d_forward_winograd(const ConvShape *s, const float *x, const float *w,
                             const float *b, float *y);
#endif
