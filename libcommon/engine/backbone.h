// Backbones (torchvision ResNets, darknet cfgs) and heads (fast.ai's, or
// the backbone's own ImageNet classifier), built into a Model.
#ifndef CNNPIPE_BACKBONE_H
#define CNNPIPE_BACKBONE_H
#include <stddef.h>
#include <stdint.h>
#include "formats/import.h"
#include "model.h"

// What to build.  Zero-initialise, then set what applies.
typedef struct {
	const char *arch;        // resnet18 | resnet34 | resnet50 | darknet
	int head;                // HEAD_FASTAI (num_classes outputs) | HEAD_IMAGENET
	int num_classes;         // HEAD_FASTAI: 2 to 100000
	int in_size;             // <= 0: the default (224 for ResNets, the cfg's
	                         // [net] width for darknet)
	// darknet: the cfg text (kept in the model, and so in its file), and,
	// when the caller has parsed it already, the parsed cfg (else it is
	// parsed here).
	const char *cfg_text;
	size_t cfg_len;
	const DarknetNet *darknet;
	// The fast.ai head's Linear weights get fast.ai's Kaiming-normal init
	// seeded by `seed` when init_head is set; otherwise they stay zero (for
	// a model whose weights are loaded next).
	int init_head;
	uint64_t seed;
	// The weights follow (model_adopt_params): the parameters are only
	// listed, not allocated (model_finish_listed); init_head is ignored.
	int weights_follow;
	// When not 0: the most bytes of parameters (as model_param_bytes counts
	// them) the network may have, e.g. what the weights meant to fill it
	// hold (max_param_what says what, for the message: "the record").
	size_t max_param_bytes;
	const char *max_param_what;
} ModelSpec;

// Builds the whole graph: body, then the head.  Parameters are initialised
// as PyTorch does for a fresh module (BN: 1, 0, 0, 1; the rest 0) except
// as init_head says.  Before any parameter is allocated the network is
// checked against the model caps (model.h) and spec->max_param_bytes.
// Returns 0, or -1 with err.
int model_build(Model *m, const ModelSpec *spec, char *err, size_t errlen);

// Appends fast.ai's head after node x (concat pool, flatten, BatchNorm1d,
// Dropout(p1), Linear 512, ReLU, BatchNorm1d, Dropout(p2), Linear K,
// LogSoftmax; ps = [0.25, 0.5] in ConvnetBuilder) and sets m->feat; returns
// the last node.
int model_add_fastai_head(Model *m, int x, int K, float p1, float p2);

// Darknet batch norm divides by sqrt(var) + 1e-6 (darknet's
// normalize_cpu); ours by sqrt(var' + eps).  Converts the running
// variances of every darknet BN node in place so both agree (see
// backbone.c).
void model_darknet_fix_bn(Model *m);

// Kaiming-normal (fan_in, gain sqrt(2)) init of the fast.ai head's Linear
// weights, biases 0 (fastai/conv_learner.py: apply_init(fc_model,
// kaiming_normal); fastai/model.py: cond_init skips batch norms).
void model_init_head(Model *m, uint64_t seed);

#endif
