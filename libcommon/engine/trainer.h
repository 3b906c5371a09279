// One training step and one evaluation of a batch, the way fast.ai's
// Stepper does them (old/fastai/model.py: forward, NLL loss, backward, SGD
// step), on what train_data.h delivers:
//   TRAIN_HEAD    activations in: the head alone runs (precompute=True);
//   TRAIN_FROZEN  images in, body frozen: the body runs in eval mode as one
//                 fused inference, then the head learns on its features;
//   TRAIN_ALL     images in, some body group unfrozen: the whole network
//                 runs in train mode (frozen groups' batch norms stay in eval
//                 mode and get no gradient).
#ifndef CNNPIPE_TRAINER_H
#define CNNPIPE_TRAINER_H
#include <stdint.h>
#include "exec.h"
#include "optim.h"

enum { TRAIN_HEAD = 1, TRAIN_FROZEN, TRAIN_ALL };

typedef struct {
	Model *m;
	Exec e;
	Sgd opt;
	int mode, bs, F, K;
	size_t in_per;         // input floats per sample
	float *xdev;           // the batch on the device (host_memory: NULL)
	float *feat;           // TRAIN_FROZEN: the body's features (device)
	int32_t *tdev;         // targets on the device
	float *dlogp;          // (bs, K) device
	float *logp;           // (bs, K) host
	// ---- data-parallel (data_parallel.h) ----
	// Called by trainer_step between the backward and the optimiser's step
	// with the batch's size and mean loss: sums the ranks' gradients.
	void (*reduce)(void *ctx, int N, double loss);
	void *reduce_ctx;
} Trainer;

// mode from the data kind and the model's frozen groups.  Dropout draws
// come from seed.
void trainer_init(Trainer *t, Model *m, const Backend *be, int mode, int bs,
                  float momentum, float wd, uint64_t seed);
void trainer_free(Trainer *t);
// x: (N, F) activations or (N, 3, S, S) images, host; y: (N).  lr: one per
// layer group.  Returns the batch's mean loss (NaN/inf are returned, the
// caller stops).
double trainer_step(Trainer *t, int N, const float *x, const int32_t *y,
                    const double *lr);
// Forward and loss only (no step), train mode as trainer_step: the LR
// finder's and the tests' view.  Eval: sums the loss over the batch and
// counts the correct argmax predictions (eval mode throughout).
void trainer_eval(Trainer *t, int N, const float *x, const int32_t *y,
                  double *loss_sum, int64_t *correct);

#endif
