// Backbones and heads.
//
// torchvision ResNets (torchvision/models/resnet.py, v1.5: the stride of a
// bottleneck is on its 3x3 conv), node and tensor names as in its
// state_dict.  The cut (fast.ai 0.7 conv_learner.py: model_meta
// resnet34: [8, 6]) drops avgpool and fc: the body is the first 8 children
// (conv1, bn1, relu, maxpool, layer1..4), and the layer groups split it at
// child 6: G0 = conv1 .. layer2, G1 = layer3, layer4, G2 = the head.
//
// Darknet cfgs: convolutional (+ batch norm, leaky 0.1 / linear / relu),
// maxpool, avgpool (global), shortcut.  The ImageNet classifier tail (a 1x1
// convolutional, with an avgpool before or after it, then softmax/cost) is
// recognised and cut; the body is split into two groups at the middle
// convolution.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "backbone.h"
#include "formats/import.h"
#include "kernels/cpu/ops.h"
#include "libcommon/util/rng.h"

static const float IMAGENET_MEAN[3] = { 0.485f, 0.456f, 0.406f };
static const float IMAGENET_STD[3] = { 0.229f, 0.224f, 0.225f };
#define TV_BN_EPS 1e-5f   // torch.nn.BatchNorm2d default

// conv (no bias) + batch norm, torchvision's convention
static int conv_bn(Net *net, const char *conv, const char *bn, int in, int K,
                   int k, int stride, int pad)
{
	int c = net_conv(net, conv, in, K, k, stride, pad, 0);
	return net_bn(net, bn, c, TV_BN_EPS);
}

static int basic_block(Net *net, const char *p, int in, int planes, int stride)
{
	char a[64], b[64];
	int inC = net_out_c(net, in);
	snprintf(a, sizeof a, "%s.conv1", p);
	snprintf(b, sizeof b, "%s.bn1", p);
	int x = conv_bn(net, a, b, in, planes, 3, stride, 1);
	snprintf(a, sizeof a, "%s.relu1", p);
	x = net_relu(net, a, x);
	snprintf(a, sizeof a, "%s.conv2", p);
	snprintf(b, sizeof b, "%s.bn2", p);
	x = conv_bn(net, a, b, x, planes, 3, 1, 1);
	int id = in;
	if (stride != 1 || inC != planes) {
		snprintf(a, sizeof a, "%s.downsample.0", p);
		snprintf(b, sizeof b, "%s.downsample.1", p);
		id = conv_bn(net, a, b, in, planes, 1, stride, 0);
	}
	snprintf(a, sizeof a, "%s.add", p);
	x = net_add2(net, a, x, id);
	snprintf(a, sizeof a, "%s.relu", p);
	return net_relu(net, a, x);
}

static int bottleneck(Net *net, const char *p, int in, int planes, int stride)
{
	char a[64], b[64];
	int inC = net_out_c(net, in);
	snprintf(a, sizeof a, "%s.conv1", p);
	snprintf(b, sizeof b, "%s.bn1", p);
	int x = conv_bn(net, a, b, in, planes, 1, 1, 0);
	snprintf(a, sizeof a, "%s.relu1", p);
	x = net_relu(net, a, x);
	snprintf(a, sizeof a, "%s.conv2", p);
	snprintf(b, sizeof b, "%s.bn2", p);
	x = conv_bn(net, a, b, x, planes, 3, stride, 1);
	snprintf(a, sizeof a, "%s.relu2", p);
	x = net_relu(net, a, x);
	snprintf(a, sizeof a, "%s.conv3", p);
	snprintf(b, sizeof b, "%s.bn3", p);
	x = conv_bn(net, a, b, x, planes * 4, 1, 1, 0);
	int id = in;
	if (stride != 1 || inC != planes * 4) {
		snprintf(a, sizeof a, "%s.downsample.0", p);
		snprintf(b, sizeof b, "%s.downsample.1", p);
		id = conv_bn(net, a, b, in, planes * 4, 1, stride, 0);
	}
	snprintf(a, sizeof a, "%s.add", p);
	x = net_add2(net, a, x, id);
	snprintf(a, sizeof a, "%s.relu", p);
	return net_relu(net, a, x);
}

static int build_resnet(Net *net, const int blocks[4], int bott)
{
	memcpy(net->mean, IMAGENET_MEAN, sizeof net->mean);
	memcpy(net->std, IMAGENET_STD, sizeof net->std);
	net->in_c = 3;
	net->ngroups = 1;
	int x = conv_bn(net, "conv1", "bn1", -1, 64, 7, 2, 3);
	x = net_relu(net, "relu", x);
	x = net_maxpool(net, "maxpool", x, 3, 2, 1, 0, 0);
	for (int l = 0; l < 4; l++) {
		if (l == 2)
			net->ngroups = 2;
		int planes = 64 << l;
		for (int b = 0; b < blocks[l]; b++) {
			char p[32];
			snprintf(p, sizeof p, "layer%d.%d", l + 1, b);
			int stride = (b == 0 && l > 0) ? 2 : 1;
			x = bott ? bottleneck(net, p, x, planes, stride)
			         : basic_block(net, p, x, planes, stride);
		}
	}
	net->body_end = net->n;
	return x;
}

// ---- darknet ------------------------------------------------------------------

// Finds the classifier tail: returns the index of its first layer (the cut)
// and sets *last to the last non-softmax/cost layer, or -1.
static int darknet_tail(const DarknetNet *dn, int *last)
{
	int j = dn->n - 1;
	while (j >= 0 && (dn->layers[j].type == DN_SOFTMAX || dn->layers[j].type == DN_COST))
		j--;
	if (j == dn->n - 1 || j < 1)
		return -1;   // no softmax: not an ImageNet classifier
	*last = j;
	int c = j;
	while (c >= 0 && dn->layers[c].type == DN_AVGPOOL)
		c--;
	if (c < 1 || dn->layers[c].type != DN_CONV || dn->layers[c].size != 1)
		return -1;
	if (dn->layers[c - 1].type == DN_AVGPOOL)
		c--;
	return c;
}

static int darknet_layer(Net *net, const DarknetNet *dn, int i, int *out,
                         char *err, size_t errlen)
{
	const DarknetLayer *L = &dn->layers[i];
	int in = i == 0 ? -1 : out[i - 1];
	char nm[64], nm2[64];
	int x;
	switch (L->type) {
	case DN_CONV:
		snprintf(nm, sizeof nm, "layers.%d.conv", i);
		if (net_out_c(net, in) != L->in_c) {
			snprintf(err, errlen, "layer %d: %d input channels, expected %d",
			         i, net_out_c(net, in), L->in_c);
			return -1;
		}
		x = net_conv(net, nm, in, L->filters, L->size, L->stride, L->pad,
		             !L->batch_normalize);
		if (L->batch_normalize) {
			snprintf(nm, sizeof nm, "layers.%d.bn", i);
			// eps: see net_darknet_fix_bn
			x = net_bn(net, nm, x, 1e-5f);
		}
		snprintf(nm, sizeof nm, "layers.%d.act", i);
		if (L->activation == DN_LEAKY)
			x = net_leaky(net, nm, x, 0.1f);   // darknet activations.h: leaky 0.1
		else if (L->activation == DN_RELU)
			x = net_relu(net, nm, x);
		else if (L->activation != DN_LINEAR) {
			snprintf(err, errlen, "layer %d: unsupported activation", i);
			return -1;
		}
		break;
	case DN_MAXPOOL:
		snprintf(nm, sizeof nm, "layers.%d.maxpool", i);
		// darknet maxpool_layer.c: out = (w + padding - size)/stride + 1
		// with the window offset by -padding/2; importer's pad = padding.
		x = net_maxpool(net, nm, in, L->size, L->stride, L->pad / 2,
		                L->out_h, L->out_w);
		break;
	case DN_AVGPOOL:
		snprintf(nm, sizeof nm, "layers.%d.avgpool", i);
		x = net_gap(net, nm, in);
		break;
	case DN_SHORTCUT:
		if (L->from < 0 || L->from >= i) {
			snprintf(err, errlen, "layer %d: shortcut from %d", i, L->from);
			return -1;
		}
		snprintf(nm, sizeof nm, "layers.%d.shortcut", i);
		{
			// darknet's resnet cfgs add a block's input to a stride-2
			// output with more channels: darknet's own shortcut rule.
			const Node *a = &net->nodes[in], *b = &net->nodes[out[L->from]];
			if (a->C == b->C && a->H == b->H && a->W == b->W)
				x = net_add2(net, nm, in, out[L->from]);
			else
				x = net_shortcut(net, nm, in, out[L->from]);
		}
		snprintf(nm2, sizeof nm2, "layers.%d.act", i);
		if (L->activation == DN_LEAKY)
			x = net_leaky(net, nm2, x, 0.1f);
		else if (L->activation == DN_RELU)
			x = net_relu(net, nm2, x);
		else if (L->activation != DN_LINEAR) {
			snprintf(err, errlen, "layer %d: unsupported activation", i);
			return -1;
		}
		break;
	default:
		snprintf(err, errlen, "layer %d: unsupported layer type %d in the body",
		         i, L->type);
		return -1;
	}
	const Node *d = &net->nodes[x];
	if (d->C != L->out_c || d->H != L->out_h || d->W != L->out_w) {
		snprintf(err, errlen, "layer %d: output %dx%dx%d, the cfg says %dx%dx%d",
		         i, d->C, d->H, d->W, L->out_c, L->out_h, L->out_w);
		return -1;
	}
	out[i] = x;
	return 0;
}

static int build_darknet(Net *net, int head, const char *cfg, size_t len,
                         int *last_node, char *err, size_t errlen)
{
	DarknetNet dn;
	char e2[512];
	if (darknet_parse_cfg_mem(cfg, len, "cfg", &dn, e2, sizeof e2) < 0) {
		snprintf(err, errlen, "%s", e2);
		return -1;
	}
	int rc = -1, last;
	int cut = darknet_tail(&dn, &last);
	if (cut < 0) {
		snprintf(err, errlen, "cfg: no ImageNet classifier tail (a 1x1 "
		         "convolutional with an avgpool, then softmax) at its end");
		goto out;
	}
	if (dn.channels != 3 || dn.width != dn.height) {
		snprintf(err, errlen, "cfg: input %dx%dx%d: need a square RGB input",
		         dn.width, dn.height, dn.channels);
		goto out;
	}
	net->in_c = 3;
	net->in_size = dn.width;
	int *out = xcalloc((size_t)dn.n, sizeof(int));
	int nconv = 0, seen = 0;
	for (int i = 0; i < cut; i++)
		nconv += dn.layers[i].type == DN_CONV;
	net->ngroups = 1;
	for (int i = 0; i < cut; i++) {
		if (dn.layers[i].type == DN_CONV && seen++ == nconv / 2)
			net->ngroups = 2;
		if (darknet_layer(net, &dn, i, out, err, errlen) < 0) {
			free(out);
			goto out;
		}
	}
	net->body_end = net->n;
	net->ngroups = 3;
	if (head == HEAD_IMAGENET) {
		for (int i = cut; i <= last; i++)
			if (darknet_layer(net, &dn, i, out, err, errlen) < 0) {
				free(out);
				goto out;
			}
		*last_node = out[last];
	} else {
		*last_node = out[cut - 1];
	}
	free(out);
	rc = 0;
out:
	darknet_free(&dn);
	return rc;
}

// Darknet's batch norm, normalize_cpu in blas.c: (x - mean) / (sqrt(var) +
// .000001f).  Ours (PyTorch's): (x - mean) / sqrt(var' + eps), eps 1e-5,
// kept because training mode needs it against zero batch variances.  With
// var' = (sqrt(var) + 1e-6)^2 - eps both agree exactly in eval mode; for
// var < about 1e-5 that would go negative, so it is clamped at 0 (those
// channels then differ by the factor sqrt(eps)/(sqrt(var)+1e-6)).
void net_darknet_fix_bn(Net *net)
{
	for (int i = 0; i < net->n; i++) {
		Node *d = &net->nodes[i];
		if (d->op != OP_BN)
			continue;
		float *rv = net_param(net, d->rv);
		for (int c = 0; c < d->C; c++) {
			double s = sqrt(rv[c] > 0 ? (double)rv[c] : 0.0) + 1e-6;
			double v = s * s - d->eps;
			rv[c] = v > 0 ? (float)v : 0.0f;
		}
	}
}

// ---- heads ----------------------------------------------------------------------

// fast.ai 0.7 conv_learner.py ConvnetBuilder: xtra_fc = [512],
// ps = [0.25, 0.5]; create_fc_layer = bn_drop_lin: BatchNorm1d, Dropout,
// Linear (+ ReLU between), then LogSoftmax; AdaptiveConcatPool2d + Flatten
// first (layers.py: max then avg).
static int fastai_head(Net *net, int x, int K)
{
	x = net_concatpool(net, "head.pool", x);
	net->feat = x;
	x = net_flatten(net, "head.flatten", x);
	x = net_bn1d(net, "head.bn1", x, 1e-5f);
	x = net_dropout(net, "head.drop1", x, 0.25f);
	x = net_linear(net, "head.fc1", x, 512);
	x = net_relu(net, "head.relu", x);
	x = net_bn1d(net, "head.bn2", x, 1e-5f);
	x = net_dropout(net, "head.drop2", x, 0.5f);
	x = net_linear(net, "head.fc2", x, K);
	return net_logsoftmax(net, "head.logsoftmax", x);
}

void net_init_head(Net *net, uint64_t seed)
{
	Rng r;
	rng_seed(&r, seed, 1);
	for (int i = 0; i < net->n; i++) {
		const Node *d = &net->nodes[i];
		if (d->op != OP_LINEAR || strncmp(d->name, "head.", 5))
			continue;
		const Tensor *w = &net->params.t[d->w];
		// torch.nn.init.kaiming_normal_ defaults: a = 0, mode fan_in,
		// leaky_relu gain sqrt(2): std = sqrt(2 / fan_in).
		double sd = sqrt(2.0 / (double)w->dims[1]);
		float *p = w->data;
		for (int64_t k = 0; k < tensor_numel(w); k++)
			p[k] = (float)(rng_normal(&r) * sd);
		memset(net_param(net, d->b), 0, net->params.t[d->b].nbytes);
	}
}

int net_build(Net *net, const char *arch, int head, int num_classes,
              int in_size, const char *cfg_text, size_t cfg_len,
              uint64_t seed, char *err, size_t errlen)
{
	static const int r18[4] = { 2, 2, 2, 2 }, r34[4] = { 3, 4, 6, 3 };
	net_init(net);
	snprintf(net->arch, sizeof net->arch, "%s", arch);
	net->head = head;
	if (head == HEAD_FASTAI && (num_classes < 2 || num_classes > 100000)) {
		snprintf(err, errlen, "%d classes: need 2 to 100000", num_classes);
		return -1;
	}
	int x;
	if (!strcmp(arch, "resnet18") || !strcmp(arch, "resnet34") ||
	    !strcmp(arch, "resnet50")) {
		net->in_size = in_size > 0 ? in_size : 224;
		if (net->in_size < 32 || net->in_size > 4096) {
			snprintf(err, errlen, "input size %d: need 32 to 4096", net->in_size);
			return -1;
		}
		int bott = arch[6] == '5';
		x = build_resnet(net, arch[7] == '8' ? r18 : r34, bott);
		net->ngroups = 3;
		if (head == HEAD_IMAGENET) {
			x = net_gap(net, "avgpool", x);
			x = net_flatten(net, "flatten", x);
			x = net_linear(net, "fc", x, 1000);
			num_classes = 1000;
		}
	} else if (!strcmp(arch, "darknet")) {
		if (!cfg_text) {
			snprintf(err, errlen, "darknet needs a cfg");
			return -1;
		}
		if (build_darknet(net, head, cfg_text, cfg_len, &x, err, errlen) < 0)
			return -1;
		if (in_size > 0 && in_size != net->in_size) {
			snprintf(err, errlen, "input size %d: the cfg says %d", in_size,
			         net->in_size);
			return -1;
		}
		net->darknet_cfg = xmalloc(cfg_len + 1);
		memcpy(net->darknet_cfg, cfg_text, cfg_len);
		net->darknet_cfg[cfg_len] = 0;
		if (head == HEAD_IMAGENET) {
			x = net_flatten(net, "flatten", x);
			num_classes = net->nodes[x].C;
		}
	} else {
		snprintf(err, errlen, "unknown architecture '%s' (resnet18, resnet34, "
		         "resnet50, darknet)", arch);
		return -1;
	}
	if (head == HEAD_FASTAI) {
		fastai_head(net, x, num_classes);
		net_init_head(net, seed);
	} else {
		net_logsoftmax(net, "logsoftmax", x);
	}
	net->num_classes = num_classes;
	net_finish(net);
	return 0;
}
