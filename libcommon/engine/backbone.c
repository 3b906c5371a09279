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
// recognised and cut; the body is split into two groups where its maps
// pass stride 8 (as the ResNets' groups are).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "backbone.h"
#include "formats/import.h"
#include "libcommon/util/rng.h"

static const float IMAGENET_MEAN[3] = { 0.485f, 0.456f, 0.406f };
static const float IMAGENET_STD[3] = { 0.229f, 0.224f, 0.225f };
#define TV_BN_EPS 1e-5f   // torch.nn.BatchNorm2d default

// conv (no bias) + batch norm, torchvision's convention
static int conv_bn(Model *m, const char *conv, const char *bn, int in, int K,
                   int k, int stride, int pad)
{
	int c = graph_conv(m, conv, in, K, k, stride, pad, 0);
	return graph_bn(m, bn, c, TV_BN_EPS);
}

static int basic_block(Model *m, const char *p, int in, int planes, int stride)
{
	char a[64], b[64];
	int inC = model_out_c(m, in);
	snprintf(a, sizeof a, "%s.conv1", p);
	snprintf(b, sizeof b, "%s.bn1", p);
	int x = conv_bn(m, a, b, in, planes, 3, stride, 1);
	snprintf(a, sizeof a, "%s.relu1", p);
	x = graph_relu(m, a, x);
	snprintf(a, sizeof a, "%s.conv2", p);
	snprintf(b, sizeof b, "%s.bn2", p);
	x = conv_bn(m, a, b, x, planes, 3, 1, 1);
	int id = in;
	if (stride != 1 || inC != planes) {
		snprintf(a, sizeof a, "%s.downsample.0", p);
		snprintf(b, sizeof b, "%s.downsample.1", p);
		id = conv_bn(m, a, b, in, planes, 1, stride, 0);
	}
	snprintf(a, sizeof a, "%s.add", p);
	x = graph_add2(m, a, x, id);
	snprintf(a, sizeof a, "%s.relu", p);
	return graph_relu(m, a, x);
}

static int bottleneck(Model *m, const char *p, int in, int planes, int stride)
{
	char a[64], b[64];
	int inC = model_out_c(m, in);
	snprintf(a, sizeof a, "%s.conv1", p);
	snprintf(b, sizeof b, "%s.bn1", p);
	int x = conv_bn(m, a, b, in, planes, 1, 1, 0);
	snprintf(a, sizeof a, "%s.relu1", p);
	x = graph_relu(m, a, x);
	snprintf(a, sizeof a, "%s.conv2", p);
	snprintf(b, sizeof b, "%s.bn2", p);
	x = conv_bn(m, a, b, x, planes, 3, stride, 1);
	snprintf(a, sizeof a, "%s.relu2", p);
	x = graph_relu(m, a, x);
	snprintf(a, sizeof a, "%s.conv3", p);
	snprintf(b, sizeof b, "%s.bn3", p);
	x = conv_bn(m, a, b, x, planes * 4, 1, 1, 0);
	int id = in;
	if (stride != 1 || inC != planes * 4) {
		snprintf(a, sizeof a, "%s.downsample.0", p);
		snprintf(b, sizeof b, "%s.downsample.1", p);
		id = conv_bn(m, a, b, in, planes * 4, 1, stride, 0);
	}
	snprintf(a, sizeof a, "%s.add", p);
	x = graph_add2(m, a, x, id);
	snprintf(a, sizeof a, "%s.relu", p);
	return graph_relu(m, a, x);
}

static int build_resnet(Model *m, const int blocks[4], int bott)
{
	memcpy(m->mean, IMAGENET_MEAN, sizeof m->mean);
	memcpy(m->std, IMAGENET_STD, sizeof m->std);
	m->in_c = 3;
	m->ngroups = 1;
	int x = conv_bn(m, "conv1", "bn1", -1, 64, 7, 2, 3);
	x = graph_relu(m, "relu", x);
	x = graph_maxpool(m, "maxpool", x, 3, 2, 1, 0, 0);
	for (int l = 0; l < 4; l++) {
		if (l == 2)
			m->ngroups = 2;
		int planes = 64 << l;
		for (int b = 0; b < blocks[l]; b++) {
			char p[32];
			snprintf(p, sizeof p, "layer%d.%d", l + 1, b);
			int stride = (b == 0 && l > 0) ? 2 : 1;
			x = bott ? bottleneck(m, p, x, planes, stride)
			         : basic_block(m, p, x, planes, stride);
		}
	}
	m->body_end = m->n;
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

static int darknet_layer(Model *m, const DarknetNet *dn, int i, int *out,
                         char *err, size_t errlen)
{
	const DarknetLayer *L = &dn->layers[i];
	int in = i == 0 ? -1 : out[i - 1];
	char nm[64], nm2[64];
	int x;
	switch (L->type) {
	case DN_CONV:
		snprintf(nm, sizeof nm, "layers.%d.conv", i);
		if (model_out_c(m, in) != L->in_c) {
			snprintf(err, errlen, "layer %d: %d input channels, expected %d",
			         i, model_out_c(m, in), L->in_c);
			return -1;
		}
		x = graph_conv(m, nm, in, L->filters, L->size, L->stride, L->pad,
		             !L->batch_normalize);
		if (L->batch_normalize) {
			snprintf(nm, sizeof nm, "layers.%d.bn", i);
			// eps: see model_darknet_fix_bn
			x = graph_bn(m, nm, x, 1e-5f);
		}
		snprintf(nm, sizeof nm, "layers.%d.act", i);
		if (L->activation == DN_LEAKY)
			x = graph_leaky(m, nm, x, 0.1f);   // darknet activations.h: leaky 0.1
		else if (L->activation == DN_RELU)
			x = graph_relu(m, nm, x);
		else if (L->activation != DN_LINEAR) {
			snprintf(err, errlen, "layer %d: unsupported activation", i);
			return -1;
		}
		break;
	case DN_MAXPOOL:
		snprintf(nm, sizeof nm, "layers.%d.maxpool", i);
		// darknet maxpool_layer.c: out = (w + padding - size)/stride + 1
		// with the window offset by -padding/2; importer's pad = padding.
		x = graph_maxpool(m, nm, in, L->size, L->stride, L->pad / 2,
		                L->out_h, L->out_w);
		break;
	case DN_AVGPOOL:
		snprintf(nm, sizeof nm, "layers.%d.avgpool", i);
		x = graph_gap(m, nm, in);
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
			const Node *a = &m->nodes[in], *b = &m->nodes[out[L->from]];
			if (a->C == b->C && a->H == b->H && a->W == b->W)
				x = graph_add2(m, nm, in, out[L->from]);
			else
				x = graph_shortcut(m, nm, in, out[L->from]);
		}
		snprintf(nm2, sizeof nm2, "layers.%d.act", i);
		if (L->activation == DN_LEAKY)
			x = graph_leaky(m, nm2, x, 0.1f);
		else if (L->activation == DN_RELU)
			x = graph_relu(m, nm2, x);
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
	const Node *d = &m->nodes[x];
	if (d->C != L->out_c || d->H != L->out_h || d->W != L->out_w) {
		snprintf(err, errlen, "layer %d: output %dx%dx%d, the cfg says %dx%dx%d",
		         i, d->C, d->H, d->W, L->out_c, L->out_h, L->out_w);
		return -1;
	}
	out[i] = x;
	return 0;
}

static int build_darknet(Model *m, int head, const DarknetNet *dnp,
                         int *last_node, char *err, size_t errlen)
{
	const DarknetNet dn = *dnp;
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
	m->in_c = 3;
	m->in_size = dn.width;
	int *out = xcalloc((size_t)dn.n, sizeof(int));
	// fast.ai's rule for ResNets (G0 = conv1 .. layer2, which ends at
	// stride 8: 28x28 of 224) applied to darknet: G0 ends with the last
	// layer whose output is at stride 8 or less, G1 is the rest of the body.
	m->ngroups = 1;
	for (int i = 0; i < cut; i++) {
		if (m->ngroups == 1 && (int64_t)dn.layers[i].out_h * 8 < dn.height)
			m->ngroups = 2;
		if (darknet_layer(m, &dn, i, out, err, errlen) < 0) {
			free(out);
			goto out;
		}
	}
	m->body_end = m->n;
	m->ngroups = 3;
	if (head == HEAD_IMAGENET) {
		for (int i = cut; i <= last; i++)
			if (darknet_layer(m, &dn, i, out, err, errlen) < 0) {
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
	return rc;
}

// Darknet's batch norm, normalize_cpu in blas.c: (x - mean) / (sqrt(var) +
// .000001f).  Ours (PyTorch's): (x - mean) / sqrt(var' + eps), eps 1e-5,
// kept because training mode needs it against zero batch variances.  With
// var' = (sqrt(var) + 1e-6)^2 - eps both agree exactly in eval mode; for
// var < about 1e-5 that would go negative, so it is clamped at 0 (those
// channels then differ by the factor sqrt(eps)/(sqrt(var)+1e-6)).
void model_darknet_fix_bn(Model *m)
{
	for (int i = 0; i < m->n; i++) {
		Node *d = &m->nodes[i];
		if (d->op != OP_BN)
			continue;
		float *rv = model_param(m, d->rv);
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
int model_add_fastai_head(Model *m, int x, int K, float p1, float p2)
{
	x = graph_concatpool(m, "head.pool", x);
	m->feat = x;
	x = graph_flatten(m, "head.flatten", x);
	x = graph_bn1d(m, "head.bn1", x, 1e-5f);
	x = graph_dropout(m, "head.drop1", x, p1);
	x = graph_linear(m, "head.fc1", x, 512);
	x = graph_relu(m, "head.relu", x);
	x = graph_bn1d(m, "head.bn2", x, 1e-5f);
	x = graph_dropout(m, "head.drop2", x, p2);
	x = graph_linear(m, "head.fc2", x, K);
	return graph_logsoftmax(m, "head.logsoftmax", x);
}

void model_init_head(Model *m, uint64_t seed)
{
	Rng r;
	rng_seed(&r, seed, 1);
	for (int i = 0; i < m->n; i++) {
		const Node *d = &m->nodes[i];
		if (d->op != OP_LINEAR || strncmp(d->name, "head.", 5))
			continue;
		const Tensor *w = &m->params.t[d->w];
		// torch.nn.init.kaiming_normal_ defaults: a = 0, mode fan_in,
		// leaky_relu gain sqrt(2): std = sqrt(2 / fan_in).
		double sd = sqrt(2.0 / (double)w->dims[1]);
		float *p = w->data;
		for (int64_t k = 0; k < tensor_numel(w); k++)
			p[k] = (float)(rng_normal(&r) * sd);
		memset(model_param(m, d->b), 0, m->params.t[d->b].nbytes);
	}
}

_Static_assert(DN_MAX_INPUT == MODEL_MAX_INPUT &&
               DN_MAX_ACTIVATION == MODEL_MAX_ACTIVATION,
               "the darknet parser's caps are the model's");

// The graph is built, its parameters only listed: refuse what is too big
// before allocating them (and before a forward pass allocates activations).
static int check_caps(const Model *m, const ModelSpec *spec, char *err,
                      size_t errlen)
{
	int at;
	int64_t act = model_max_activation(m, &at);
	if (act > MODEL_MAX_ACTIVATION) {
		snprintf(err, errlen, "%s gives %lld values per image, more than "
		         "the cap of %lld", at < 0 ? "the input" : m->nodes[at].name,
		         (long long)act, (long long)MODEL_MAX_ACTIVATION);
		return -1;
	}
	uint64_t need = model_param_bytes(m);
	if (need > RECORD_MAX_BYTES) {
		snprintf(err, errlen, "the network needs %llu bytes of parameters, "
		         "more than a model file holds (%llu)", (unsigned long long)need,
		         (unsigned long long)RECORD_MAX_BYTES);
		return -1;
	}
	if (spec->max_param_bytes && need > spec->max_param_bytes) {
		snprintf(err, errlen, "the network needs %llu bytes of parameters, "
		         "%s holds %llu", (unsigned long long)need,
		         spec->max_param_what ? spec->max_param_what : "the weights",
		         (unsigned long long)spec->max_param_bytes);
		return -1;
	}
	return 0;
}

int model_build(Model *m, const ModelSpec *spec, char *err, size_t errlen)
{
	static const int r18[4] = { 2, 2, 2, 2 }, r34[4] = { 3, 4, 6, 3 };
	const char *arch = spec->arch ? spec->arch : "";
	int head = spec->head, num_classes = spec->num_classes, in_size = spec->in_size;
	model_init(m);
	snprintf(m->arch, sizeof m->arch, "%s", arch);
	m->head = head;
	if (head == HEAD_FASTAI && (num_classes < 2 || num_classes > MODEL_MAX_CLASSES)) {
		snprintf(err, errlen, "%d classes: need 2 to %d", num_classes,
		         MODEL_MAX_CLASSES);
		return -1;
	}
	int x;
	if (!strcmp(arch, "resnet18") || !strcmp(arch, "resnet34") ||
	    !strcmp(arch, "resnet50")) {
		m->in_size = in_size > 0 ? in_size : 224;
		if (m->in_size < 32 || m->in_size > MODEL_MAX_INPUT) {
			snprintf(err, errlen, "input size %d: need 32 to %d", m->in_size,
			         MODEL_MAX_INPUT);
			return -1;
		}
		int bott = arch[6] == '5';
		x = build_resnet(m, arch[7] == '8' ? r18 : r34, bott);
		m->ngroups = 3;
		if (head == HEAD_IMAGENET) {
			x = graph_gap(m, "avgpool", x);
			x = graph_flatten(m, "flatten", x);
			x = graph_linear(m, "fc", x, 1000);
			num_classes = 1000;
		}
	} else if (!strcmp(arch, "darknet")) {
		if (!spec->cfg_text) {
			snprintf(err, errlen, "darknet needs a cfg");
			return -1;
		}
		DarknetNet own;
		const DarknetNet *dn = spec->darknet;
		if (!dn) {
			char e2[512];
			if (darknet_parse_cfg_mem(spec->cfg_text, spec->cfg_len, "cfg",
			                          &own, e2, sizeof e2) < 0) {
				snprintf(err, errlen, "%s", e2);
				return -1;
			}
			dn = &own;
		}
		int rc = build_darknet(m, head, dn, &x, err, errlen);
		if (dn == &own)
			darknet_free(&own);
		if (rc < 0)
			return -1;
		if (m->in_size > MODEL_MAX_INPUT) {
			snprintf(err, errlen, "cfg: input size %d: at most %d", m->in_size,
			         MODEL_MAX_INPUT);
			return -1;
		}
		if (in_size > 0 && in_size != m->in_size) {
			snprintf(err, errlen, "input size %d: the cfg says %d", in_size,
			         m->in_size);
			return -1;
		}
		m->darknet_cfg = xmalloc(spec->cfg_len + 1);
		memcpy(m->darknet_cfg, spec->cfg_text, spec->cfg_len);
		m->darknet_cfg[spec->cfg_len] = 0;
		if (head == HEAD_IMAGENET) {
			x = graph_flatten(m, "flatten", x);
			num_classes = m->nodes[x].C;
		}
	} else {
		snprintf(err, errlen, "unknown architecture '%s' (resnet18, resnet34, "
		         "resnet50, darknet)", arch);
		return -1;
	}
	if (head == HEAD_FASTAI)
		model_add_fastai_head(m, x, num_classes, 0.25f, 0.5f);
	else
		graph_logsoftmax(m, "logsoftmax", x);
	m->num_classes = num_classes;
	if (check_caps(m, spec, err, errlen) < 0)
		return -1;
	if (spec->weights_follow) {
		model_finish_listed(m);
		return 0;
	}
	model_finish(m);
	if (head == HEAD_FASTAI && spec->init_head)
		model_init_head(m, spec->seed);
	return 0;
}
