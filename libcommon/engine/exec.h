// The execution state of a model: what it takes to run one on a device —
// the backend, activation and gradient arenas, each convolution's cache and
// batch-norm-folded weights, the gradients, the dropout RNG and the position
// of the last run.  The model (model.h) stays what the network is.
//
// Memory: exec_forward keeps every node's output when a backward will follow
// (train or keep); otherwise outputs share a few buffers, reused once their
// last reader has run, so inference memory is a few activations, not the
// sum of all.  Gradients of activations share buffers the same way.
//
// Work done once: a convolution keeps its backend cache (e.g. Winograd
// filters) and, where an eval batch norm is folded into it, the folded
// weights, until exec_params_changed says the weights moved (the optimiser
// calls it after every step; loading weights too).
#ifndef CNNPIPE_EXEC_H
#define CNNPIPE_EXEC_H
#include <stddef.h>
#include <stdint.h>
#include "kernels/backend.h"
#include "libcommon/util/rng.h"
#include "libcommon/util/tensor.h"
#include "model.h"

typedef struct {
	float *y;             // output (N, C, H, W), device
	float *dy;            // gradient of y during backward
	float *save_mean, *save_invstd;  // bn train (C)
	int32_t *argmax;      // maxpool (N,C,H,W) / concat pool (N,C)
	uint8_t *mask;        // dropout (N*C*H*W)
	int bn_train;         // mode of the last forward
	int pool_fused;       // bn: the last forward ran it with its activation
	                      // and pool (ForwardPlan.bn_pool) as one pass
	size_t aux_n;         // samples the aux buffers above fit
	ConvCache *cache;     // conv: its backend cache
	float *fold;          // conv + eval bn: folded weights, then bias (K)
	int fold_ok;          // fold holds the current weights
} NodeRun;

typedef struct {
	Model *m;
	const Backend *be;
	NodeRun *run;         // one per node
	float *pdev;          // parameters on the device (NULL: host_memory)
	Record grads;         // the learnable tensors' gradients, named as they
	                      // (host view; on a device backend, see gdev)
	float *gdev;          // gradients on the device (NULL: host_memory)
	int *gparam;          // param index of each gradient
	Rng rng;              // dropout
	float *arena;         // activation buffers
	size_t arena_len;
	float *garena;        // gradient buffers
	size_t garena_len;
	float *gtmp;          // scratch for accumulating fan-out gradients
	size_t gtmp_len;
	float *dx_in;         // gradient w.r.t. the range input (if asked)
	size_t dx_in_len;
	int run_first, run_last, run_N, run_train, run_keep;
	const float *run_x;
	// ---- data-parallel (batch_slice.h, data_parallel.h) ----
	int bn_batch;         // train-mode batch norm over ghost batches of
	                      // this many samples (0: the whole batch)
	int drop_row0, drop_rows;  // this forward's samples are rows [drop_row0,
	                      // +N) of a batch of drop_rows (0: the whole batch)
	// Set by whoever trains: convolutions that learn keep no cache.  Their
	// weights move every step, so the cache (Winograd filters: 4x the
	// weights, ResNet34's body about 310 MB) would be remade each step
	// anyway; the backend makes them into reused scratch memory instead.
	// The evaluation passes between epochs pay that transform per batch
	// (a few % of their time).
	int learning;
	double *prof;         // CNNPIPE_PROFILE: seconds per node, forward and
	                      // backward (exec_profile.c); NULL when off
} Exec;

// Starts running m on backend be (m must outlive e; its parameters are
// uploaded on a device backend).  Dropout draws start from seed 0.
void exec_init(Exec *e, Model *m, const Backend *be);
void exec_free(Exec *e);

// Device pointers of parameter idx (params.t index) and gradient gi
// (Node.gw/gb); the gradient is NULL before the first exec_zero_grad.
float *exec_param(const Exec *e, int idx);
float *exec_grad(const Exec *e, int gi);

// Runs nodes [first, last] on N samples; x (device memory) is the output of
// node first-1 (first = 0: the network input (N, in_c, in_size, in_size)).
// train: batch norm with batch statistics and dropout active, except in
// frozen groups (their BN stays in eval mode).  keep: keep every activation
// for exec_backward (implied by train).  Returns node last's output
// (N, C, H, W), device memory valid until the next call.
float *exec_forward(Exec *e, int N, const float *x, int first, int last,
                    int train, int keep);
// A frozen body's run: nodes [0, m->feat] as one inference (fused, shared
// buffers), their output copied into feat (device, (N, C) of node m->feat)
// before the head's run plans its arena, then the head [feat+1, n-1] from
// it, in train mode (keeping its activations for a backward) or eval.
float *exec_forward_frozen_body(Exec *e, int N, const float *x, float *feat,
                                int train);
// After exec_forward(keep): dy = gradient of node last's output.
// Accumulates parameter gradients (+=) of unfrozen nodes; returns the
// gradient w.r.t. x when want_dx, else NULL (valid until the next call).
float *exec_backward(Exec *e, const float *dy, int want_dx);
// Zeroes the gradients of the unfrozen groups (a frozen group's are never
// written and stay zero).
void exec_zero_grad(Exec *e);

// The weights on the device changed (an optimiser step): drops folded
// weights and conv caches.
void exec_params_changed(Exec *e);
// The model's Record changed on the host (weights loaded or edited): on a
// device backend uploads it again; drops folded weights and conv caches.
void exec_params_to_device(Exec *e);
// Device backend: copies the parameters (and batch-norm statistics that
// training moved) back into the model's Record, e.g. before model_save.
void exec_params_to_host(Exec *e);
// The gradients as a host Record (copied from the device when needed).
const Record *exec_grads(Exec *e);

// The device picked by a tool, once: name "cpu", or NULL for the default
// ($CNNPIPE_DEVICE, else cpu).  Dies naming the device when it is unknown
// or not built (device.c).
const Backend *device_pick(const char *name);

#endif
