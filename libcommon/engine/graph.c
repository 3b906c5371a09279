// The model graph: building it node by node, numbering its learnable
// tensors, freezing groups (model.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/shapes.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "model.h"

void model_init(Model *m)
{
	memset(m, 0, sizeof *m);
	record_init(&m->params);
	m->mean[0] = m->mean[1] = m->mean[2] = 0;
	m->std[0] = m->std[1] = m->std[2] = 1;
}

void model_free(Model *m)
{
	free(m->nodes);
	free(m->classes);
	free(m->darknet_cfg);
	free(m->provenance);
	record_free(&m->params);
	memset(m, 0, sizeof *m);
}

int model_out_c(const Model *m, int i)
{
	return i < 0 ? m->in_c : m->nodes[i].C;
}

int graph_add(Model *m, int op, const char *name, int in)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->nodes = xrealloc(m->nodes, (size_t)m->cap * sizeof *m->nodes);
	}
	Node *d = &m->nodes[m->n];
	memset(d, 0, sizeof *d);
	d->op = op;
	snprintf(d->name, sizeof d->name, "%s", name);
	d->in = in;
	d->in2 = -2;
	d->w = d->b = d->rm = d->rv = d->gw = d->gb = -1;
	if (in >= 0) {
		d->C = m->nodes[in].C;
		d->H = m->nodes[in].H;
		d->W = m->nodes[in].W;
	} else {
		d->C = m->in_c;
		d->H = d->W = m->in_size;
	}
	d->group = m->ngroups > 0 ? m->ngroups - 1 : 0;
	return m->n++;
}

// Only the tensor's entry: the storage of every parameter is allocated at
// once by model_finish, so that a builder can refuse a network too large
// for its weights (or for a model file) before any of it is allocated.
// Sizes saturate at UINT64_MAX rather than wrap.
static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int add_param(Model *m, const char *node, const char *suffix, int ndim,
                     const int64_t *dims)
{
	Record *r = &m->params;
	if (r->buf)
		die("%s: parameters added after model_finish", node);
	Tensor *t = record_slot(r);
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s.%s", node, suffix);
	t->dtype = DT_F32;
	t->ndim = ndim;
	uint64_t n = sizeof(float);
	for (int i = 0; i < ndim; i++) {
		t->dims[i] = dims[i];
		n = dims[i] > 0 && n > UINT64_MAX / (uint64_t)dims[i] ? UINT64_MAX
		                                                      : n * (uint64_t)dims[i];
	}
	uint64_t off = sat_add(r->used, 63) & ~(uint64_t)63;
	t->nbytes = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
	t->offset = off > SIZE_MAX ? SIZE_MAX : (size_t)off;
	uint64_t end = sat_add(off, n);
	r->used = end > SIZE_MAX ? SIZE_MAX : (size_t)end;
	return r->n - 1;
}

size_t model_param_bytes(const Model *m)
{
	uint64_t n = 0;
	for (int i = 0; i < m->params.n; i++) {
		const Tensor *t = &m->params.t[i];
		uint64_t b = t->dtype == DT_F32 ? t->nbytes
		                                : (uint64_t)tensor_numel(t) * sizeof(float);
		n = sat_add(sat_add(n, 63) & ~(uint64_t)63, b);
	}
	return n > SIZE_MAX ? SIZE_MAX : (size_t)n;
}

int64_t model_max_activation(const Model *m, int *node)
{
	int64_t best = (int64_t)m->in_c * m->in_size * m->in_size;
	if (node)
		*node = -1;
	for (int i = 0; i < m->n; i++) {
		const Node *d = &m->nodes[i];
		int64_t v = (int64_t)d->C * d->H * d->W;
		if (v > best) {
			best = v;
			if (node)
				*node = i;
		}
	}
	return best;
}

int graph_conv(Model *m, const char *name, int in, int K, int k, int stride,
             int pad, int bias)
{
	int i = graph_add(m, OP_CONV, name, in);
	Node *d = &m->nodes[i];
	int C = d->C;
	d->k = k;
	d->stride = stride;
	d->pad = pad;
	ConvShape s = conv_shape(1, C, d->H, d->W, K, k, k, stride, pad);
	if (s.P <= 0 || s.Q <= 0)
		die("%s: input %dx%d too small for the %dx%d convolution", name,
		    d->H, d->W, k, k);
	d->C = K;
	d->H = s.P;
	d->W = s.Q;
	int64_t wd[4] = { K, C, k, k };
	d->w = add_param(m, name, "weight", 4, wd);
	if (bias) {
		int64_t bd[1] = { K };
		d->b = add_param(m, name, "bias", 1, bd);
	}
	return i;
}

static int bn_common(Model *m, const char *name, int in, float eps)
{
	int i = graph_add(m, OP_BN, name, in);
	Node *d = &m->nodes[i];
	d->eps = eps;
	int64_t cd[1] = { d->C };
	d->w = add_param(m, name, "weight", 1, cd);
	d->b = add_param(m, name, "bias", 1, cd);
	d->rm = add_param(m, name, "running_mean", 1, cd);
	d->rv = add_param(m, name, "running_var", 1, cd);
	return i;
}

int graph_bn(Model *m, const char *name, int in, float eps)
{
	return bn_common(m, name, in, eps);
}

int graph_bn1d(Model *m, const char *name, int in, float eps)
{
	return bn_common(m, name, in, eps);   // HW = 1 on (N, C)
}

int graph_relu(Model *m, const char *name, int in)
{
	return graph_add(m, OP_RELU, name, in);
}

int graph_leaky(Model *m, const char *name, int in, float slope)
{
	int i = graph_add(m, OP_LEAKY, name, in);
	m->nodes[i].slope = slope;
	return i;
}

int graph_maxpool(Model *m, const char *name, int in, int k, int stride, int pad,
                int P, int Q)
{
	int i = graph_add(m, OP_MAXPOOL, name, in);
	Node *d = &m->nodes[i];
	d->k = k;
	d->stride = stride;
	d->pad = pad;
	if (P <= 0 || Q <= 0) {
		PoolShape s = pool_shape(1, d->C, d->H, d->W, k, stride, pad);
		P = s.P;
		Q = s.Q;
	}
	if (P <= 0 || Q <= 0)
		die("%s: input %dx%d too small for the %dx%d pool", name, d->H,
		    d->W, k, k);
	d->H = P;
	d->W = Q;
	return i;
}

int graph_gap(Model *m, const char *name, int in)
{
	int i = graph_add(m, OP_GAP, name, in);
	m->nodes[i].H = m->nodes[i].W = 1;
	return i;
}

int graph_add2(Model *m, const char *name, int a, int b)
{
	int i = graph_add(m, OP_ADD, name, a);
	Node *d = &m->nodes[i];
	d->in2 = b;
	const Node *nb = &m->nodes[b];
	if (nb->C != d->C || nb->H != d->H || nb->W != d->W)
		die("%s: residual add of (%d,%d,%d) and (%d,%d,%d)", name, d->C,
		    d->H, d->W, nb->C, nb->H, nb->W);
	return i;
}

int graph_shortcut(Model *m, const char *name, int x, int a)
{
	int i = graph_add(m, OP_SHORTCUT, name, x);
	Node *d = &m->nodes[i];
	d->in2 = a;
	const Node *na = &m->nodes[a];
	// darknet accepts sizes in an integer ratio, the same across and down
	int big = na->W > d->W ? na->W : d->W, small = na->W > d->W ? d->W : na->W;
	int bigh = na->W > d->W ? na->H : d->H, smallh = na->W > d->W ? d->H : na->H;
	if (small < 1 || big % small || smallh < 1 || bigh % smallh ||
	    big / small != bigh / smallh)
		die("%s: shortcut of (%d,%d,%d) and (%d,%d,%d): sizes not in an integer ratio",
		    name, d->C, d->H, d->W, na->C, na->H, na->W);
	return i;
}

int graph_concatpool(Model *m, const char *name, int in)
{
	int i = graph_add(m, OP_CONCATPOOL, name, in);
	Node *d = &m->nodes[i];
	d->C *= 2;
	d->H = d->W = 1;
	return i;
}

int graph_flatten(Model *m, const char *name, int in)
{
	int i = graph_add(m, OP_FLATTEN, name, in);
	Node *d = &m->nodes[i];
	d->C = d->C * d->H * d->W;
	d->H = d->W = 1;
	return i;
}

int graph_dropout(Model *m, const char *name, int in, float p)
{
	int i = graph_add(m, OP_DROPOUT, name, in);
	m->nodes[i].p = p;
	return i;
}

int graph_linear(Model *m, const char *name, int in, int O)
{
	int i = graph_add(m, OP_LINEAR, name, in);
	Node *d = &m->nodes[i];
	int I = d->C * d->H * d->W;
	d->C = O;
	d->H = d->W = 1;
	int64_t wd[2] = { O, I }, bd[1] = { O };
	d->w = add_param(m, name, "weight", 2, wd);
	d->b = add_param(m, name, "bias", 1, bd);
	return i;
}

int graph_logsoftmax(Model *m, const char *name, int in)
{
	return graph_add(m, OP_LOGSOFTMAX, name, in);
}

// Gradient indices are fixed here; the gradients themselves belong to an
// execution state (exec.h), allocated when it first trains.  The
// parameters get their one buffer, initialised as PyTorch initialises a
// fresh module's: batch norm weight and running variance 1, the rest 0.
static void number_grads(Model *m)
{
	int g = 0;
	for (int i = 0; i < m->n; i++) {
		Node *d = &m->nodes[i];
		d->gw = d->w >= 0 ? g++ : -1;
		d->gb = d->b >= 0 ? g++ : -1;
	}
	m->ngrads = g;
}

void model_finish_listed(Model *m)
{
	number_grads(m);
}

void model_finish(Model *m)
{
	Record *r = &m->params;
	if (!r->buf) {
		if ((uint64_t)r->used > RECORD_MAX_BYTES)
			die("%s network: %zu bytes of parameters, more than a model "
			    "file's record holds (%llu)", m->arch, r->used,
			    (unsigned long long)RECORD_MAX_BYTES);
		r->bufcap = r->used ? r->used : 64;
		r->buf = xaligned_alloc(64, r->bufcap);
		memset(r->buf, 0, r->bufcap);
		for (int i = 0; i < r->n; i++)
			r->t[i].data = r->buf + r->t[i].offset;
		for (int i = 0; i < m->n; i++) {
			const Node *d = &m->nodes[i];
			if (d->op != OP_BN)
				continue;
			float *w = r->t[d->w].data, *rv = r->t[d->rv].data;
			for (int c = 0; c < d->C; c++)
				w[c] = rv[c] = 1;
		}
	}
	number_grads(m);
}

float *model_param(const Model *m, int idx)
{
	return idx < 0 ? NULL : (float *)m->params.t[idx].data;
}

int model_param_group(const Model *m, int idx)
{
	for (int i = 0; i < m->n; i++) {
		const Node *d = &m->nodes[i];
		if (d->w == idx || d->b == idx)
			return d->group;
	}
	return -1;
}

void model_freeze_to(Model *m, int k)
{
	if (k < 0)
		k = 0;
	if (k > m->ngroups)
		k = m->ngroups;
	m->frozen = k;
}

