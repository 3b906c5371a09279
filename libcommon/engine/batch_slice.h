// What a forward and backward over a slice of a batch need so that the
// slice computes what its rows would in the whole batch: the rows of the
// batch's dropout masks, and batch norm over fixed "ghost batches" of B
// consecutive samples instead of over whatever batch a process holds.
// Data-parallel training (data_parallel.h) runs each rank on its slice
// this way; a one-process run with the same ghost batch computes the same.
//
// Ghost batches: the batch of N samples is cut into ceil(N/B) batches of B
// (the last one smaller); each normalises with its own mean and biased
// variance (PyTorch's BatchNorm in training, on B samples) and its
// gradients flow within it.  The running statistics move once per step by
// the mean of the ghost batches' statistics:
//   running = (1 - momentum) * running + momentum * mean_k(stat_k)
// which is what K sequential updates give with momentum a_k = momentum /
// (K - (K - k) * momentum) for k = 1..K (a convex combination whose weights
// come out momentum/K each); K = 1 is PyTorch's update.
#ifndef CNNPIPE_BATCH_SLICE_H
#define CNNPIPE_BATCH_SLICE_H
#include <stddef.h>
#include <stdint.h>
#include "kernels/backend.h"
#include "libcommon/util/rng.h"

// The ghost batches of N samples for ghost size B (B <= 0: one, the whole).
int ghost_bn_count(int N, int B);
// As batchnorm_forward_train on (N, C, HW), by ghost batches of B:
// save_mean and save_invstd hold C values per ghost batch, in order.
void ghost_bn_forward(const Backend *be, int N, int B, int C, int HW,
                      const float *x, const float *gamma, const float *beta,
                      float *running_mean, float *running_var, float momentum,
                      float eps, float *save_mean, float *save_invstd, float *y);
// As batchnorm_backward_train, by the ghost batches of ghost_bn_forward
// (dgamma and dbeta accumulate over them; dx may be NULL).
void ghost_bn_backward(const Backend *be, int N, int B, int C, int HW,
                       const float *x, const float *gamma,
                       const float *save_mean, const float *save_invstd,
                       const float *dy, float *dx, float *dgamma, float *dbeta);

// The dropout of rows [row0, row0 + N) of a batch of rows samples (n
// values, n/N a row): the rng skips the draws of the rows before, draws
// this slice's masks as dropout_forward would (one draw a value when
// 0 < p < 1, none otherwise), then skips the rows after, so that it stands
// where the whole batch's dropout leaves it.
void slice_dropout_forward(const Backend *be, size_t n, int N, float p,
                           Rng *rng, int row0, int rows, const float *x,
                           float *y, uint8_t *mask);

#endif
