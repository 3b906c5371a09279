// The model: what a network IS — its architecture, classes, input
// normalisation, darknet cfg, provenance, graph and parameters.  What it
// takes to RUN it (activation arenas, caches, gradients, the device) is the
// execution state, exec.h; one model can have several.
//
// The graph is a list of nodes run in order, each reading the output of
// earlier nodes.  Parameters and buffers (batch-norm running statistics)
// live in ONE Record (`params`: one allocation, a table of named views), so
// a model file is one record written whole.  Names are the pretrained
// source's (torchvision state_dict keys, or darknet "layers.<i>...."), the
// fast.ai head's are "head.*"; see cnnpipe-model(5).
#ifndef CNNPIPE_MODEL_H
#define CNNPIPE_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "libcommon/util/tensor.h"

enum NodeOp {
	OP_CONV = 1, OP_BN, OP_RELU, OP_LEAKY, OP_MAXPOOL, OP_AVGPOOL, OP_ADD,
	OP_CONCATPOOL, OP_GAP, OP_FLATTEN, OP_DROPOUT, OP_LINEAR, OP_LOGSOFTMAX,
	OP_SHORTCUT,   // darknet's add of maps of different sizes (kernels/shapes.h)
};

typedef struct {
	int op;
	char name[64];        // for messages: "layer1.0.conv1"
	int in, in2;          // input nodes; -1 = the range's input (exec_forward); in2 -2: none
	int C, H, W;          // output shape per sample (vectors: H = W = 1)
	int group;            // layer group (differential learning rates, freezing)
	// conv: w (K,C,R,R), b or -1.  bn: w = gamma, b = beta, rm, rv.
	// linear: w (O,I), b.  Indices into params; -1 when absent.
	int w, b, rm, rv;
	int gw, gb;           // indices of their gradients (exec.h); -1 when absent
	int k, stride, pad;   // conv/pool window; pool pad at top/left
	float eps, slope, p;  // bn eps; leaky slope; dropout p
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
	int ngrads;           // learnable tensors (numbered by model_finish)

	Record params;
} Model;

// ---- building (graph.c) ------------------------------------------------------
void model_init(Model *m);
void model_free(Model *m);
// Adds a node; returns its index.  Parameters are added by the helpers.
int graph_add(Model *m, int op, const char *name, int in);
// Helpers used by the backbone builders; return the new node's index.
int graph_conv(Model *m, const char *name, int in, int K, int k, int stride,
               int pad, int bias);
int graph_bn(Model *m, const char *name, int in, float eps);
int graph_bn1d(Model *m, const char *name, int in, float eps);
int graph_relu(Model *m, const char *name, int in);
int graph_leaky(Model *m, const char *name, int in, float slope);
int graph_maxpool(Model *m, const char *name, int in, int k, int stride,
                  int pad, int P, int Q);   // P, Q <= 0: PyTorch's floor rule
int graph_gap(Model *m, const char *name, int in);
int graph_add2(Model *m, const char *name, int a, int b);
// darknet's shortcut: x plus the earlier map a subsampled onto x's grid and
// first channels; the output has x's shape.
int graph_shortcut(Model *m, const char *name, int x, int a);
int graph_concatpool(Model *m, const char *name, int in);
int graph_flatten(Model *m, const char *name, int in);
int graph_dropout(Model *m, const char *name, int in, float p);
int graph_linear(Model *m, const char *name, int in, int O);
int graph_logsoftmax(Model *m, const char *name, int in);
// Call once all nodes are added: numbers the learnable tensors (gw, gb)
// and allocates the parameters (the helpers only list them), initialised
// as PyTorch's fresh modules (batch norm weight and running_var 1, the rest
// 0).  Before it no parameter has storage.
void model_finish(Model *m);
// The same, but the parameters stay listed, without storage, for
// model_adopt_params to give them a record's: a network is checked against
// its weights before anything of its size is allocated.
void model_finish_listed(Model *m);

// Caps of every model (cnnpipe-model(5)), checked by model_build before
// any parameter is allocated and by model_check: the input side at most
// MODEL_MAX_INPUT pixels, no node's output more than MODEL_MAX_ACTIVATION
// values for one image (1 GiB as f32), the parameters at most
// RECORD_MAX_BYTES (a model file holds them in one record).
#define MODEL_MAX_INPUT 4096
#define MODEL_MAX_ACTIVATION ((int64_t)1 << 28)
#define MODEL_MAX_CLASSES 100000
// Bytes the parameters take, allocated or only listed so far (f32, each
// 64-byte aligned).
size_t model_param_bytes(const Model *m);
// The most values one image gives at any node (the input included), and
// that node (-1: the input).
int64_t model_max_activation(const Model *m, int *node);

// ---- queries -----------------------------------------------------------------
// Host pointer of params->t[idx] (NULL for idx < 0).
float *model_param(const Model *m, int idx);
// Channel count of node i's output (i = -1: the input).
int model_out_c(const Model *m, int i);
// Freezes groups [0, k) (k = ngroups - 1: only the head trains; 0: unfreeze).
void model_freeze_to(Model *m, int k);
// Group of the learnable tensor params.t[idx] (-1 for buffers).
int model_param_group(const Model *m, int idx);

// ---- weights (load.c) ----------------------------------------------------------
// Copies the tensors of src into the parameters of the same name.  The
// expected set is every parameter (skip_head = 0) or every one whose name
// does not start with "head." (skip_head = 1: pretrained weights under a new
// fast.ai head).  strict: each expected tensor must be present with the same
// shape, and every tensor of src must be used (PyTorch's
// *.num_batches_tracked counters are accepted and ignored).  Integer and f64
// sources are converted to f32.  Returns 0, or -1 with the first mismatch in
// err: "<srcname>: missing tensor X" / "X has shape (..), expected (..)" /
// "unexpected tensor X".
int model_load_tensors(Model *m, const Record *src, int skip_head, int strict,
                       const char *srcname, char *err, size_t errlen);
// The same check as model_load_tensors(m, src, 0, 1, ...), but instead of
// copying, the model takes src's memory as its parameters (src is left
// empty): the weights exist once (m's parameters may be only listed,
// model_finish_listed).  Tensors are reordered to the model's
// order, converted to f32 in place, and unused *.num_batches_tracked
// counters dropped.  On failure src is untouched.
int model_adopt_params(Model *m, Record *src, const char *srcname, char *err,
                       size_t errlen);

#endif
