// The model graph: a list of layers (nodes) run in order, each reading the
// output of earlier nodes, with forward and backward in train or eval mode.
//
// Parameters and buffers (batch-norm running statistics) live in ONE Record
// (`params`: one allocation, a table of named views); the gradients of the
// learnable ones in a second Record (`grads`) with the same names.  Names
// are the pretrained source's (torchvision state_dict keys, or darknet
// "layers.<i>...."), the fast.ai head's are "head.*"; see cnnpipe-model(5).
//
// Memory: net_forward keeps every node's output when a backward will follow
// (train or keep_acts); otherwise outputs share a few buffers, reused once
// their last reader has run, so inference memory is a few activations, not
// the sum of all.  Gradients of activations share buffers the same way.
#ifndef CNNPIPE_NET_H
#define CNNPIPE_NET_H
#include <stdint.h>
#include "libcommon/util/tensor.h"
#include "libcommon/util/rng.h"

enum NodeOp {
	OP_CONV = 1, OP_BN, OP_RELU, OP_LEAKY, OP_MAXPOOL, OP_AVGPOOL, OP_ADD,
	OP_CONCATPOOL, OP_GAP, OP_FLATTEN, OP_DROPOUT, OP_LINEAR, OP_LOGSOFTMAX,
	OP_SHORTCUT,   // darknet's add of maps of different sizes (ops.h)
};

typedef struct {
	int op;
	char name[64];        // for messages: "layer1.0.conv1"
	int in, in2;          // input nodes; -1 = the range's input (see net_forward)
	int C, H, W;          // output shape per sample (vectors: H = W = 1)
	int group;            // layer group (differential learning rates, freezing)
	// conv: w (K,C,R,R), b or -1.  bn: w = gamma, b = beta, rm, rv.
	// linear: w (O,I), b.  Indices into net->params; -1 when absent.
	int w, b, rm, rv;
	int gw, gb;           // indices into net->grads; -1 when absent
	int k, stride, pad;   // conv/pool window; pool pad at top/left
	float eps, slope, p;  // bn eps; leaky slope; dropout p
	// runtime (set by net_forward)
	float *y;             // output (N, C, H, W)
	float *dy;            // gradient of y during backward
	float *save_mean, *save_invstd;  // bn train (C)
	int32_t *argmax;      // maxpool (N,C,H,W) / concat pool (N,C)
	uint8_t *mask;        // dropout (N*C*H*W)
	int bn_train;         // mode of the last forward
	int inplace;          // y aliases the input's buffer
	size_t aux_n;         // samples the aux buffers above fit
} Node;

enum { HEAD_NONE = 0, HEAD_FASTAI, HEAD_IMAGENET };

typedef struct {
	char arch[32];        // resnet18 | resnet34 | resnet50 | darknet
	int in_c, in_size;    // input channels, square side
	float mean[3], std[3];
	int head;             // HEAD_*
	int num_classes;
	char *classes;        // comma-separated, or NULL
	char *darknet_cfg;    // cfg text for darknet, else NULL
	char *provenance;

	int n, cap;
	Node *nodes;
	int body_end;         // nodes [0, body_end) are the body (before the cut)
	int feat;             // fastai head: the concat-pool node (its output = activations)
	int ngroups;
	int frozen;           // groups [0, frozen) are frozen (no grads, BN eval)

	Record params, grads;
	Rng rng;              // dropout

	// runtime buffers
	int Nmax;             // batch size the buffers fit
	float *arena;         // activation buffers
	size_t arena_len;
	float *garena;        // gradient buffers
	size_t garena_len;
	float *gtmp;          // scratch for accumulating fan-out gradients
	size_t gtmp_len;
	float *dx_in;         // gradient w.r.t. the range input (if asked)
	float *fold;          // conv weights with a batch norm folded in
	size_t fold_len;
	int run_first, run_last, run_N, run_train, run_keep;
	const float *run_x;
} Net;

// ---- building -------------------------------------------------------------
void net_init(Net *net);
void net_free(Net *net);
// Adds a node; returns its index.  Parameters are added by the helpers.
int net_add(Net *net, int op, const char *name, int in);
// Helpers used by the backbone builders; return the new node's index.
int net_conv(Net *net, const char *name, int in, int K, int k, int stride,
             int pad, int bias);
int net_bn(Net *net, const char *name, int in, float eps);
int net_relu(Net *net, const char *name, int in);
int net_leaky(Net *net, const char *name, int in, float slope);
int net_maxpool(Net *net, const char *name, int in, int k, int stride, int pad,
                int P, int Q);   // P, Q <= 0: PyTorch's floor rule
int net_gap(Net *net, const char *name, int in);
int net_add2(Net *net, const char *name, int a, int b);
// darknet's shortcut: x plus the earlier map a subsampled onto x's grid and
// first channels; the output has x's shape.
int net_shortcut(Net *net, const char *name, int x, int a);
int net_concatpool(Net *net, const char *name, int in);
int net_flatten(Net *net, const char *name, int in);
int net_bn1d(Net *net, const char *name, int in, float eps);
int net_dropout(Net *net, const char *name, int in, float p);
int net_linear(Net *net, const char *name, int in, int O);
int net_logsoftmax(Net *net, const char *name, int in);
// Call once all nodes are added (numbers the gradients; the gradient
// record is allocated at the first net_zero_grad/net_backward).
void net_finish(Net *net);
// Pointers into params/grads (valid after net_finish; params may also be
// replaced by net_load_record).
float *net_param(const Net *net, int idx);
float *net_grad(const Net *net, int idx);
// Channel count / spatial size of node i's output (i = -1: the input).
int net_out_c(const Net *net, int i);

// ---- running ----------------------------------------------------------------
// Threads for the ops (ops_set_threads).
void net_set_threads(int n);
// Runs nodes [first, last] on N samples; x is the output of node first-1
// (first = 0: the network input (N, in_c, in_size, in_size)).  train: batch
// norm with batch statistics and dropout active, except in frozen groups
// (their BN stays in eval mode).  keep: keep every activation for
// net_backward (implied by train).  Returns node last's output (N, C, H, W),
// valid until the next call.
float *net_forward(Net *net, int N, const float *x, int first, int last,
                   int train, int keep);
// After net_forward(keep): dy = gradient of node last's output.  Accumulates
// parameter gradients (+=) of unfrozen nodes; returns the gradient w.r.t. x
// when want_dx, else NULL (valid until the next call).
float *net_backward(Net *net, const float *dy, int want_dx);
void net_zero_grad(Net *net);
// Freezes groups [0, k) (k = ngroups - 1: only the head trains; 0: unfreeze).
void net_freeze_to(Net *net, int k);
// Group of the learnable tensor params->t[idx] (-1 for buffers).
int net_param_group(const Net *net, int idx);

// ---- weights ------------------------------------------------------------------
// Copies the tensors of src into the parameters of the same name.  The
// expected set is every parameter (skip_head = 0) or every one whose name
// does not start with "head." (skip_head = 1: pretrained weights under a new
// fast.ai head).  strict: each expected tensor must be present with the same
// shape, and every tensor of src must be used (PyTorch's
// *.num_batches_tracked counters are accepted and ignored).  Integer and f64
// sources are converted to f32.  Returns 0, or -1 with the first mismatch in
// err: "<srcname>: missing tensor X" / "X has shape (..), expected (..)" /
// "unexpected tensor X".
int net_load_tensors(Net *net, const Record *src, int skip_head, int strict,
                     const char *srcname, char *err, size_t errlen);

#endif
