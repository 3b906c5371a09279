// Buffer planning and fusion: where every activation and gradient of one
// forward or backward lives, which nodes write over their input, and which
// convolutions run fused with the nodes after them.  Pure bookkeeping over
// the graph: no device, no data (forward.c and backward.c execute plans).
#ifndef CNNPIPE_PLAN_H
#define CNNPIPE_PLAN_H
#include <stddef.h>
#include "model.h"

// Inference: a convolution and the nodes that alone read its result, in
// this order and each optional: an eval-mode batch norm (folded into the
// weights), a residual add, a ReLU or leaky ReLU, and (fuse_pool, no add)
// a 2x2 stride-2 max pool of even-sized maps.  They run as one fused
// convolution at the chain's last node (tail), which alone gets an output
// buffer: one pass over the activations instead of up to five.
// fuse_pw: a 3x3 stride-1 chain (no add, no pool) whose tail alone feeds a
// 1x1 stride-1 chain (no add, no pool) runs with it at the 3x3 chain's
// tail (next: the 1x1 conv; in the 1x1 chain, prev: the 3x3 conv), into
// the 1x1 chain's tail buffer: the 3x3 layer's maps are never stored.
typedef struct {
	int bn, add, res, act, pool, tail;   // node indices; -1 absent (res: -2)
	int next, prev;                      // -1: none
} Chain;

enum { PLAN_EXTERNAL = -1, PLAN_NONE = -2 };

// A leaky ReLU with slope >= 0 keeps every value's sign, so its backward
// reads its output instead of its input, and in training it may write over
// its input (PyTorch's LeakyReLU(inplace=True)).
static inline int leaky_from_y(const Node *d)
{
	return d->op == OP_LEAKY && d->slope >= 0.0f;
}

typedef struct {
	int first, last, cnt;          // nodes [first, last]; k = i - first below
	int *slot;                     // PLAN_EXTERNAL: the output is the range's input x;
	                               // PLAN_NONE: no output (inside a chain); else a slot
	size_t *off;                   // offset (floats) of node k's output in the arena
	int *inplace;                  // node k writes over its input's buffer
	int *bn_act;                   // keep: node k a batch norm whose only reader
	                               // is the ReLU or leaky right after it, in
	                               // place: that node (the two may run as one
	                               // pass, batchnorm_forward_train_act), else -1
	int *bn_pool;                  // keep: node k a batch norm with bn_act, whose
	                               // activation's only reader is the 2x2
	                               // stride-2 unpadded max pool right after
	                               // it: that pool (the three may run as one
	                               // pass each way, batchnorm_act_maxpool2_*),
	                               // else -1
	int *cof;                      // the chain's conv for each chain member, else -1
	Chain *ch;                     // ch[k]: the chain whose conv is node k
	size_t total;                  // arena floats
} ForwardPlan;

// keep: every activation stays alive for a backward (train implies it).
// fuse_pool, fuse_pw: the backend pools in its fused convolution, runs a
// pair (Backend's conv2d_forward_fused_maxpool2, _pointwise).
void plan_forward(const Model *m, int N, int first, int last, int train,
                  int keep, int fuse_pool, int fuse_pw, ForwardPlan *p);
void plan_forward_free(ForwardPlan *p);

typedef struct {
	int first, last, cnt;
	int *req;                      // node k's output needs a gradient
	size_t *off;                   // offset (floats) of node k's gradient
	size_t total;                  // gradient arena floats
	size_t maxn;                   // the largest gradient (the scratch's size)
} BackwardPlan;

// After a forward of [first, last] that kept its activations.
// hold (NULL: none): hold[k] < first + k keeps node k's gradient alive
// down to that node's step (a fused backward reads it there);
// PLAN_NO_GRAD: node k's backward runs (req) but nothing writes or reads
// its gradient, which gets no buffer (off[k] unused); else -1.
enum { PLAN_NO_GRAD = -2 };
void plan_backward(const Model *m, int N, int first, int last, int want_dx,
                   const int *hold, BackwardPlan *p);
void plan_backward_free(BackwardPlan *p);

// Does node d take part in learning (has parameters, not frozen)?
int plan_trainable(const Model *m, const Node *d);
// Values of node d's output for N samples.
size_t plan_numel(const Node *d, int N);

#endif
