// Backbones (torchvision ResNets, darknet cfgs) and heads (fast.ai's,
// or the backbone's own ImageNet classifier), built into a Net.
#ifndef CNNPIPE_BACKBONE_H
#define CNNPIPE_BACKBONE_H
#include <stddef.h>
#include <stdint.h>
#include "net.h"

// Builds the whole graph for `arch` (resnet18|resnet34|resnet50|darknet):
// body, then the head (HEAD_FASTAI with num_classes outputs, or
// HEAD_IMAGENET: the pretrained classifier).  darknet needs cfg_text (a
// darknet .cfg, copied into net->darknet_cfg); in_size <= 0 means the
// default (224 for ResNets, the cfg's [net] width for darknet).  Parameters
// are initialised as PyTorch does for a fresh module (BN: 1, 0, 0, 1; the
// rest 0) except the fast.ai head's Linear weights, which get fast.ai's
// Kaiming-normal init seeded by `seed`.  Returns 0, or -1 with err.
int net_build(Net *net, const char *arch, int head, int num_classes,
              int in_size, const char *cfg_text, size_t cfg_len,
              uint64_t seed, char *err, size_t errlen);

// Darknet batch norm divides by sqrt(var) + 1e-6 (darknet's
// normalize_cpu); ours by sqrt(var' + eps).  Converts the running
// variances of every darknet BN node in place so both agree (see
// backbone.c).
void net_darknet_fix_bn(Net *net);

// Kaiming-normal (fan_in, gain sqrt(2)) init of the fast.ai head's Linear
// weights, biases 0 (fastai/conv_learner.py: apply_init(fc_model,
// kaiming_normal); fastai/model.py: cond_init skips batch norms).
void net_init_head(Net *net, uint64_t seed);

#endif
