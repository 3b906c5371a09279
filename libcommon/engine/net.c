// The model graph: building, forward, backward, buffer planning, freezing.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "net.h"
#include "kernels/cpu/ops.h"

#define ALIGNF 16   // floats per 64 bytes: every buffer starts 64-byte aligned

void net_init(Net *net)
{
	memset(net, 0, sizeof *net);
	record_init(&net->params);
	record_init(&net->grads);
	net->mean[0] = net->mean[1] = net->mean[2] = 0;
	net->std[0] = net->std[1] = net->std[2] = 1;
	rng_seed(&net->rng, 0, 0);
}

void net_free(Net *net)
{
	for (int i = 0; i < net->n; i++) {
		Node *d = &net->nodes[i];
		free(d->save_mean);
		free(d->save_invstd);
		free(d->argmax);
		free(d->mask);
	}
	free(net->nodes);
	free(net->classes);
	free(net->darknet_cfg);
	free(net->provenance);
	free(net->arena);
	free(net->garena);
	free(net->gtmp);
	free(net->dx_in);
	free(net->fold);
	record_free(&net->params);
	record_free(&net->grads);
	memset(net, 0, sizeof *net);
}

int net_out_c(const Net *net, int i)
{
	return i < 0 ? net->in_c : net->nodes[i].C;
}

int net_add(Net *net, int op, const char *name, int in)
{
	if (net->n == net->cap) {
		net->cap = net->cap ? 2 * net->cap : 64;
		net->nodes = xrealloc(net->nodes, (size_t)net->cap * sizeof *net->nodes);
	}
	Node *d = &net->nodes[net->n];
	memset(d, 0, sizeof *d);
	d->op = op;
	snprintf(d->name, sizeof d->name, "%s", name);
	d->in = in;
	d->in2 = -2;
	d->w = d->b = d->rm = d->rv = d->gw = d->gb = -1;
	if (in >= 0) {
		d->C = net->nodes[in].C;
		d->H = net->nodes[in].H;
		d->W = net->nodes[in].W;
	} else {
		d->C = net->in_c;
		d->H = d->W = net->in_size;
	}
	d->group = net->ngroups > 0 ? net->ngroups - 1 : 0;
	return net->n++;
}

static int add_param(Net *net, const char *node, const char *suffix, int ndim,
                     const int64_t *dims, float fill)
{
	char name[TENSOR_NAME_MAX + 1];
	snprintf(name, sizeof name, "%s.%s", node, suffix);
	float *p = record_add(&net->params, name, DT_F32, ndim, dims, NULL);
	int64_t n = 1;
	for (int i = 0; i < ndim; i++)
		n *= dims[i];
	for (int64_t i = 0; i < n; i++)
		p[i] = fill;
	return net->params.n - 1;
}

int net_conv(Net *net, const char *name, int in, int K, int k, int stride,
             int pad, int bias)
{
	int i = net_add(net, OP_CONV, name, in);
	Node *d = &net->nodes[i];
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
	d->w = add_param(net, name, "weight", 4, wd, 0);
	if (bias) {
		int64_t bd[1] = { K };
		d->b = add_param(net, name, "bias", 1, bd, 0);
	}
	return i;
}

static int bn_common(Net *net, const char *name, int in, float eps)
{
	int i = net_add(net, OP_BN, name, in);
	Node *d = &net->nodes[i];
	d->eps = eps;
	int64_t cd[1] = { d->C };
	d->w = add_param(net, name, "weight", 1, cd, 1);
	d->b = add_param(net, name, "bias", 1, cd, 0);
	d->rm = add_param(net, name, "running_mean", 1, cd, 0);
	d->rv = add_param(net, name, "running_var", 1, cd, 1);
	return i;
}

int net_bn(Net *net, const char *name, int in, float eps)
{
	return bn_common(net, name, in, eps);
}

int net_bn1d(Net *net, const char *name, int in, float eps)
{
	return bn_common(net, name, in, eps);   // HW = 1 on (N, C)
}

int net_relu(Net *net, const char *name, int in)
{
	return net_add(net, OP_RELU, name, in);
}

int net_leaky(Net *net, const char *name, int in, float slope)
{
	int i = net_add(net, OP_LEAKY, name, in);
	net->nodes[i].slope = slope;
	return i;
}

int net_maxpool(Net *net, const char *name, int in, int k, int stride, int pad,
                int P, int Q)
{
	int i = net_add(net, OP_MAXPOOL, name, in);
	Node *d = &net->nodes[i];
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

int net_gap(Net *net, const char *name, int in)
{
	int i = net_add(net, OP_GAP, name, in);
	net->nodes[i].H = net->nodes[i].W = 1;
	return i;
}

int net_add2(Net *net, const char *name, int a, int b)
{
	int i = net_add(net, OP_ADD, name, a);
	Node *d = &net->nodes[i];
	d->in2 = b;
	const Node *nb = &net->nodes[b];
	if (nb->C != d->C || nb->H != d->H || nb->W != d->W)
		die("%s: residual add of (%d,%d,%d) and (%d,%d,%d)", name, d->C,
		    d->H, d->W, nb->C, nb->H, nb->W);
	return i;
}

int net_shortcut(Net *net, const char *name, int x, int a)
{
	int i = net_add(net, OP_SHORTCUT, name, x);
	Node *d = &net->nodes[i];
	d->in2 = a;
	const Node *na = &net->nodes[a];
	// darknet accepts sizes in an integer ratio, the same across and down
	int big = na->W > d->W ? na->W : d->W, small = na->W > d->W ? d->W : na->W;
	int bigh = na->W > d->W ? na->H : d->H, smallh = na->W > d->W ? d->H : na->H;
	if (small < 1 || big % small || smallh < 1 || bigh % smallh ||
	    big / small != bigh / smallh)
		die("%s: shortcut of (%d,%d,%d) and (%d,%d,%d): sizes not in an integer ratio",
		    name, d->C, d->H, d->W, na->C, na->H, na->W);
	return i;
}

int net_concatpool(Net *net, const char *name, int in)
{
	int i = net_add(net, OP_CONCATPOOL, name, in);
	Node *d = &net->nodes[i];
	d->C *= 2;
	d->H = d->W = 1;
	return i;
}

int net_flatten(Net *net, const char *name, int in)
{
	int i = net_add(net, OP_FLATTEN, name, in);
	Node *d = &net->nodes[i];
	d->C = d->C * d->H * d->W;
	d->H = d->W = 1;
	return i;
}

int net_dropout(Net *net, const char *name, int in, float p)
{
	int i = net_add(net, OP_DROPOUT, name, in);
	net->nodes[i].p = p;
	return i;
}

int net_linear(Net *net, const char *name, int in, int O)
{
	int i = net_add(net, OP_LINEAR, name, in);
	Node *d = &net->nodes[i];
	int I = d->C * d->H * d->W;
	d->C = O;
	d->H = d->W = 1;
	int64_t wd[2] = { O, I }, bd[1] = { O };
	d->w = add_param(net, name, "weight", 2, wd, 0);
	d->b = add_param(net, name, "bias", 1, bd, 0);
	return i;
}

int net_logsoftmax(Net *net, const char *name, int in)
{
	return net_add(net, OP_LOGSOFTMAX, name, in);
}

// Gradient indices are fixed here; the gradient record itself is allocated
// on first use (net_zero_grad / net_backward), so inference never pays for it.
void net_finish(Net *net)
{
	record_clear(&net->grads);
	int g = 0;
	for (int i = 0; i < net->n; i++) {
		Node *d = &net->nodes[i];
		d->gw = d->w >= 0 ? g++ : -1;
		d->gb = d->b >= 0 ? g++ : -1;
	}
}

static void ensure_grads(Net *net)
{
	if (net->grads.n)
		return;
	for (int i = 0; i < net->n; i++) {
		Node *d = &net->nodes[i];
		int pi[2] = { d->w, d->b };
		for (int j = 0; j < 2; j++) {
			if (pi[j] < 0)
				continue;
			const Tensor *t = &net->params.t[pi[j]];
			record_add(&net->grads, t->name, DT_F32, t->ndim, t->dims, NULL);
		}
	}
}

float *net_param(const Net *net, int idx)
{
	return idx < 0 ? NULL : (float *)net->params.t[idx].data;
}

float *net_grad(const Net *net, int idx)
{
	return idx < 0 || idx >= net->grads.n ? NULL : (float *)net->grads.t[idx].data;
}

int net_param_group(const Net *net, int idx)
{
	for (int i = 0; i < net->n; i++) {
		const Node *d = &net->nodes[i];
		if (d->w == idx || d->b == idx)
			return d->group;
	}
	return -1;
}

void net_set_threads(int n)
{
	ops_set_threads(n < 1 ? 1 : n);
}

void net_freeze_to(Net *net, int k)
{
	if (k < 0)
		k = 0;
	if (k > net->ngroups)
		k = net->ngroups;
	net->frozen = k;
}

void net_zero_grad(Net *net)
{
	ensure_grads(net);
	for (int i = 0; i < net->grads.n; i++)
		memset(net->grads.t[i].data, 0, net->grads.t[i].nbytes);
}

// ---- buffer planning ---------------------------------------------------------
// Greedy slot reuse: each value (a node output, or a gradient) lives from
// its definition to its last use; a slot whose value is dead is reused for a
// new one, growing it if needed.  The plan is cheap (a few hundred nodes)
// and made for every call, so it always fits N and the range.

typedef struct {
	size_t cap;
	int busy;     // last step that reads the slot's value
	size_t off;
} Slot;

typedef struct {
	Slot *s;
	int n;
} Slots;

// Returns a slot index free at step `t` (busy < t) fitting `need`, else a new one.
static int slot_get(Slots *sl, size_t need, int t)
{
	int best = -1, big = -1;
	for (int i = 0; i < sl->n; i++) {
		if (sl->s[i].busy >= t)
			continue;
		if (sl->s[i].cap >= need &&
		    (best < 0 || sl->s[i].cap < sl->s[best].cap))
			best = i;
		if (big < 0 || sl->s[i].cap > sl->s[big].cap)
			big = i;
	}
	if (best < 0 && big >= 0) {
		sl->s[big].cap = need;
		best = big;
	}
	if (best < 0) {
		sl->s = xrealloc(sl->s, (size_t)(sl->n + 1) * sizeof *sl->s);
		sl->s[sl->n].cap = need;
		best = sl->n++;
	}
	return best;
}

// Lays the slots out one after the other; returns the total (floats).
static size_t slots_layout(Slots *sl)
{
	size_t off = 0;
	for (int i = 0; i < sl->n; i++) {
		sl->s[i].off = off;
		off += (sl->s[i].cap + ALIGNF - 1) / ALIGNF * ALIGNF;
	}
	return off;
}

static size_t node_numel(const Node *d, int N)
{
	return (size_t)N * d->C * d->H * d->W;
}

static void aux_fit(Node *d, int N, int train)
{
	if (d->aux_n >= (size_t)N && d->aux_n)
		return;
	size_t n = node_numel(d, N);
	switch (d->op) {
	case OP_BN:
		if (!train)
			return;
		free(d->save_mean);
		free(d->save_invstd);
		d->save_mean = xmalloc_array((size_t)d->C, sizeof(float));
		d->save_invstd = xmalloc_array((size_t)d->C, sizeof(float));
		break;
	case OP_MAXPOOL:
		free(d->argmax);
		d->argmax = xmalloc_array(n, sizeof(int32_t));
		break;
	case OP_CONCATPOOL:
		free(d->argmax);
		d->argmax = xmalloc_array((size_t)N * (d->C / 2), sizeof(int32_t));
		break;
	case OP_DROPOUT:
		if (!train)
			return;
		free(d->mask);
		d->mask = xmalloc(n ? n : 1);
		break;
	default:
		return;
	}
	d->aux_n = (size_t)N;
}

// Does node d's backward read its own output y?  (Then no later node may
// overwrite it in place.)
static int bwd_needs_y(const Node *d)
{
	return d->op == OP_RELU || d->op == OP_LOGSOFTMAX;
}

// Inference: a convolution and the nodes that alone read its result, in
// this order and each optional: an eval-mode batch norm (folded into the
// weights: w' = w*s, b' = beta + (b - mean)*s, s = gamma/sqrt(var+eps)), a
// residual add, a ReLU or leaky ReLU.  They run as one
// conv2d_forward_fused at the chain's last node (tail), which alone gets an
// output buffer: one pass over the activations instead of up to four.
typedef struct {
	int bn, add, res, act, tail;   // node indices; -1 absent (res: -2)
} Chain;

static void chain_run(Net *net, int N, int first, const float *x,
                      const Node *c, const Chain *ch)
{
	const float *w = net_param(net, c->w), *bias = net_param(net, c->b);
	if (ch->bn >= 0) {
		const Node *b = &net->nodes[ch->bn];
		size_t wn = (size_t)tensor_numel(&net->params.t[c->w]);
		if (wn + (size_t)c->C > net->fold_len) {
			free(net->fold);
			net->fold_len = wn + (size_t)c->C;
			net->fold = xaligned_alloc(64, net->fold_len * sizeof(float));
		}
		conv_fold_batchnorm(c->C, wn / (size_t)c->C, w, bias,
		                    net_param(net, b->w), net_param(net, b->b),
		                    net_param(net, b->rm), net_param(net, b->rv),
		                    b->eps, net->fold, net->fold + wn);
		w = net->fold;
		bias = net->fold + wn;
	}
	const float *res = ch->add < 0 ? NULL
	                 : ch->res < first ? x : net->nodes[ch->res].y;
	int act = CONV_ACT_NONE;
	float slope = 0;
	if (ch->act >= 0) {
		const Node *a = &net->nodes[ch->act];
		act = a->op == OP_RELU ? CONV_ACT_RELU : CONV_ACT_LEAKY;
		slope = a->slope;
	}
	const Node *s = c->in >= first ? &net->nodes[c->in] : NULL;
	const float *xi = s ? s->y : x;
	int iC = s ? s->C : (first == 0 ? net->in_c : net->nodes[first - 1].C);
	int iH = s ? s->H : (first == 0 ? net->in_size : net->nodes[first - 1].H);
	int iW = s ? s->W : (first == 0 ? net->in_size : net->nodes[first - 1].W);
	ConvShape cs = conv_shape(N, iC, iH, iW, c->C, c->k, c->k, c->stride, c->pad);
	conv2d_forward_fused(NULL, &cs, xi, w, bias, res, act, slope,
	                     net->nodes[ch->tail].y);
}

float *net_forward(Net *net, int N, const float *x, int first, int last,
                   int train, int keep)
{
	if (first < 0 || last >= net->n || first > last || N <= 0)
		die("net_forward: bad range [%d, %d] of %d nodes", first, last, net->n);
	keep = keep || train;
	int cnt = last - first + 1;
	int *lu = xcalloc((size_t)cnt, sizeof(int));     // last reader (step)
	int *nc = xcalloc((size_t)cnt, sizeof(int));     // number of readers
	int *slot = xcalloc((size_t)cnt, sizeof(int));   // -1: external x
	int *ext = xcalloc((size_t)cnt, sizeof(int));    // buffer is x itself
	for (int i = first; i <= last; i++) {
		Node *d = &net->nodes[i];
		int ins[2] = { d->in, d->in2 };
		for (int j = 0; j < 2; j++) {
			int in = ins[j];
			if (in == -2)
				continue;
			if (in < first - 1 || in >= i || (first == 0 && in != -1 && in < 0))
				die("net_forward: node %s reads node %d outside [%d, %d]",
				    d->name, in, first, last);
			if (in >= first) {
				lu[in - first] = i;
				nc[in - first]++;
			}
		}
	}
	for (int i = 0; i < cnt; i++)
		if (keep || i == cnt - 1)
			lu[i] = last;
	// Inference: conv [-> bn] [-> add] [-> relu | leaky] chains (chain_run).
	// cof: the chain's conv for each of its nodes, else -1.
	int *cof = xmalloc_array((size_t)cnt, sizeof(int));
	Chain *ch = xcalloc((size_t)cnt, sizeof(Chain));
	int *rd = xmalloc_array((size_t)cnt, sizeof(int));   // the only reader, or -1
	for (int k = 0; k < cnt; k++) {
		cof[k] = -1;
		rd[k] = !keep && k < cnt - 1 && nc[k] == 1 ? lu[k] : -1;
	}
	for (int i = first; i < last && !keep; i++) {
		const Node *d = &net->nodes[i];
		if (d->op != OP_CONV)
			continue;
		Chain c = { -1, -1, -2, -1, i };
		int t = i, r = rd[i - first];
		if (r >= 0 && net->nodes[r].op == OP_BN) {
			c.bn = t = r;
			r = rd[t - first];
		}
		if (r >= 0 && net->nodes[r].op == OP_ADD && cof[r - first] < 0) {
			const Node *a = &net->nodes[r];
			c.res = a->in == t ? a->in2 : a->in;
			c.add = t = r;
			r = rd[t - first];
		}
		if (r >= 0 && (net->nodes[r].op == OP_RELU ||
		               (net->nodes[r].op == OP_LEAKY && net->nodes[r].slope >= 0 &&
		                net->nodes[r].slope <= 1)))
			c.act = t = r;
		if (t == i)
			continue;   // a lone convolution
		c.tail = t;
		ch[i - first] = c;
		int mem[4] = { i, c.bn, c.add, c.act };
		for (int j = 0; j < 4; j++)
			if (mem[j] >= 0)
				cof[mem[j] - first] = i;
		// the conv's input and the residual are read at the tail
		int rdr[2] = { d->in, c.add >= 0 ? c.res : -2 };
		for (int j = 0; j < 2; j++)
			if (rdr[j] >= first && lu[rdr[j] - first] < t)
				lu[rdr[j] - first] = t;
	}
	free(rd);
	Slots sl = { 0 };
	for (int i = first; i <= last; i++) {
		Node *d = &net->nodes[i];
		int k = i - first;
		int in = d->in;
		int in_ext = in < first;
		int ip = 0;
		d->bn_train = d->op == OP_BN && train && d->group >= net->frozen;
		// In place: an elementwise (or reshaping) op may write over its
		// input when nothing else reads that input afterwards.
		int elementwise = d->op == OP_RELU || d->op == OP_FLATTEN ||
		                  (d->op == OP_LEAKY && !keep) ||
		                  (d->op == OP_DROPOUT && !train) ||
		                  (d->op == OP_ADD && !keep);
		if (elementwise) {
			if (d->op == OP_FLATTEN || (d->op == OP_DROPOUT && !train)) {
				ip = 1;   // the same values: alias, whatever reads them
			} else if (!in_ext && !ext[in - first] &&
			           !net->nodes[in].inplace) {
				const Node *s = &net->nodes[in];
				ip = keep ? nc[in - first] == 1 && !bwd_needs_y(s)
				          : lu[in - first] == i;
			}
		}
		if (cof[k] >= 0)
			ip = 0;
		d->inplace = ip;
		if (cof[k] >= 0 && ch[cof[k] - first].tail != i) {
			slot[k] = -2;   // in a chain, before its tail: no output
		} else if (ip) {
			if (in_ext) {
				ext[k] = 1;
				slot[k] = -1;
			} else {
				ext[k] = ext[in - first];
				slot[k] = slot[in - first];
				if (slot[k] >= 0 && sl.s[slot[k]].busy < lu[k])
					sl.s[slot[k]].busy = lu[k];
			}
		} else {
			slot[k] = slot_get(&sl, node_numel(d, N), i);
			sl.s[slot[k]].busy = lu[k];
		}
	}
	size_t total = slots_layout(&sl);
	if (total > net->arena_len) {
		free(net->arena);
		net->arena = xaligned_alloc(64, total * sizeof(float));
		net->arena_len = total;
	}
	for (int i = first; i <= last; i++) {
		int k = i - first;
		net->nodes[i].y = slot[k] == -2 ? NULL : slot[k] < 0 ? (float *)x
		                              : net->arena + sl.s[slot[k]].off;
	}
	free(sl.s);
	free(lu);
	free(nc);
	free(slot);
	free(ext);

	for (int i = first; i <= last; i++) {
		Node *d = &net->nodes[i];
		aux_fit(d, N, train || keep);
		const float *xi = d->in < first ? x : net->nodes[d->in].y;
		const Node *s = d->in < first ? NULL : &net->nodes[d->in];
		int iC = s ? s->C : (first == 0 ? net->in_c : net->nodes[first - 1].C);
		int iH = s ? s->H : (first == 0 ? net->in_size : net->nodes[first - 1].H);
		int iW = s ? s->W : (first == 0 ? net->in_size : net->nodes[first - 1].W);
		size_t n = node_numel(d, N);
		float *y = d->y;
		if (cof[i - first] >= 0) {
			const Chain *c = &ch[cof[i - first] - first];
			if (c->tail == i)
				chain_run(net, N, first, x, &net->nodes[cof[i - first]], c);
			continue;
		}
		switch (d->op) {
		case OP_CONV: {
			ConvShape cs = conv_shape(N, iC, iH, iW, d->C, d->k, d->k,
			                          d->stride, d->pad);
			conv2d_forward(&cs, xi, net_param(net, d->w), net_param(net, d->b), y);
			break;
		}
		case OP_BN:
			if (d->bn_train)
				batchnorm_forward_train(N, d->C, d->H * d->W, xi,
				        net_param(net, d->w), net_param(net, d->b),
				        net_param(net, d->rm), net_param(net, d->rv),
				        0.1f, d->eps, d->save_mean, d->save_invstd, y);
			else
				batchnorm_forward_eval(N, d->C, d->H * d->W, xi,
				        net_param(net, d->w), net_param(net, d->b),
				        net_param(net, d->rm), net_param(net, d->rv),
				        d->eps, y);
			break;
		case OP_RELU:
			relu_forward(n, xi, y);
			break;
		case OP_LEAKY:
			leaky_relu_forward(n, d->slope, xi, y);
			break;
		case OP_MAXPOOL:
		case OP_AVGPOOL: {
			PoolShape ps = { N, iC, iH, iW, d->k, d->stride, d->pad, d->H, d->W };
			if (d->op == OP_MAXPOOL)
				maxpool2d_forward(&ps, xi, y, keep ? d->argmax : NULL);
			else
				avgpool2d_forward(&ps, xi, y);
			break;
		}
		case OP_ADD:
			add_forward(n, xi, d->in2 < first ? x : net->nodes[d->in2].y, y);
			break;
		case OP_SHORTCUT: {
			const Node *a = &net->nodes[d->in2];
			ShortcutShape ss = { N, d->C, d->H, d->W, a->C, a->H, a->W };
			shortcut_forward(&ss, xi, d->in2 < first ? x : a->y, y);
			break;
		}
		case OP_CONCATPOOL:
			concat_pool_forward(N, iC, iH * iW, xi, y, keep ? d->argmax : NULL);
			break;
		case OP_GAP:
			global_avgpool_forward(N, iC, iH * iW, xi, y);
			break;
		case OP_FLATTEN:
			break;   // an alias of its input
		case OP_DROPOUT:
			if (train)
				dropout_forward(n, d->p, &net->rng, xi, y, d->mask);
			break;   // eval: an alias of its input
		case OP_LINEAR:
			linear_forward(N, iC * iH * iW, d->C, xi, net_param(net, d->w),
			               net_param(net, d->b), y);
			break;
		case OP_LOGSOFTMAX:
			log_softmax_forward(N, d->C, xi, y);
			break;
		default:
			die("net_forward: node %s: unknown op %d", d->name, d->op);
		}
	}
	free(cof);
	free(ch);
	net->run_first = first;
	net->run_last = last;
	net->run_N = N;
	net->run_x = x;
	net->run_train = train;
	net->run_keep = keep;
	return net->nodes[last].y;
}

static int trainable(const Net *net, const Node *d)
{
	return (d->gw >= 0 || d->gb >= 0) && d->group >= net->frozen;
}

float *net_backward(Net *net, const float *dyl, int want_dx)
{
	if (!net->run_keep)
		die("net_backward: the last forward did not keep its activations");
	int first = net->run_first, last = net->run_last, N = net->run_N;
	int cnt = last - first + 1;
	ensure_grads(net);
	int *req = xcalloc((size_t)cnt, sizeof(int));
	int *def = xcalloc((size_t)cnt, sizeof(int));   // step defining the gradient
	int *slot = xcalloc((size_t)cnt, sizeof(int));
	for (int i = first; i <= last; i++) {
		const Node *d = &net->nodes[i];
		int r = trainable(net, d);
		int ins[2] = { d->in, d->in2 };
		for (int j = 0; j < 2; j++) {
			if (ins[j] == -2)
				continue;
			if (ins[j] < first)
				r |= want_dx;
			else
				r |= req[ins[j] - first];
		}
		req[i - first] = r;
		def[i - first] = i == last ? last + 1 : -1;
	}
	for (int i = first; i <= last; i++) {
		const Node *d = &net->nodes[i];
		int ins[2] = { d->in, d->in2 };
		for (int j = 0; j < 2; j++)
			if (ins[j] >= first && def[ins[j] - first] < i)
				def[ins[j] - first] = i;
	}
	// A node nothing reads gets no gradient (zero): skip it.
	for (int k = 0; k < cnt; k++)
		if (def[k] < 0)
			req[k] = 0;
	// Plan in reverse time: gradient of node i lives from step def[i]
	// (its last reader's backward) down to step i.  Time t = last + 1 - step.
	Slots sl = { 0 };
	size_t maxn = 0;
	for (int step = last + 1; step >= first; step--) {
		for (int i = first; i <= last; i++) {
			int k = i - first;
			if (!req[k] || def[k] != step)
				continue;
			size_t n = node_numel(&net->nodes[i], N);
			if (n > maxn)
				maxn = n;
			slot[k] = slot_get(&sl, n, last + 1 - step);
			sl.s[slot[k]].busy = last + 1 - i;
		}
	}
	size_t total = slots_layout(&sl);
	if (total > net->garena_len) {
		free(net->garena);
		net->garena = xaligned_alloc(64, (total ? total : 1) * sizeof(float));
		net->garena_len = total;
	}
	if (maxn > net->gtmp_len) {
		free(net->gtmp);
		net->gtmp = xaligned_alloc(64, maxn * sizeof(float));
		net->gtmp_len = maxn;
	}
	int *ginit = xcalloc((size_t)cnt, sizeof(int));
	for (int i = first; i <= last; i++) {
		int k = i - first;
		net->nodes[i].dy = req[k] ? net->garena + sl.s[slot[k]].off : NULL;
	}
	free(sl.s);
	free(slot);

	const Node *nl = &net->nodes[last];
	size_t in_n;
	{
		const Node *f = &net->nodes[first];
		int in = f->in;
		if (in >= 0)
			in_n = node_numel(&net->nodes[in], N);
		else
			in_n = (size_t)N * net->in_c * net->in_size * net->in_size;
	}
	float *dxin = NULL;
	if (want_dx) {
		free(net->dx_in);
		net->dx_in = xaligned_alloc(64, (in_n ? in_n : 1) * sizeof(float));
		memset(net->dx_in, 0, in_n * sizeof(float));
		dxin = net->dx_in;
	}
	if (req[cnt - 1])
		memcpy(nl->dy, dyl, node_numel(nl, N) * sizeof(float));

	for (int i = last; i >= first; i--) {
		Node *d = &net->nodes[i];
		int k = i - first;
		if (!req[k])
			continue;
		// Where the input gradient goes: its node's buffer when first
		// written, else a scratch that is then added in.
		float *dst[2] = { NULL, NULL }, *acc[2] = { NULL, NULL };
		int ins[2] = { d->in, d->in2 };
		for (int j = 0; j < 2; j++) {
			int in = ins[j];
			if (in == -2)
				continue;
			float *target;
			int *init;
			int one = 1;
			if (in < first) {
				if (!want_dx)
					continue;
				target = dxin;
				init = &one;   // dx_in starts at zero: always accumulate
			} else {
				if (!req[in - first])
					continue;
				target = net->nodes[in].dy;
				init = &ginit[in - first];
			}
			if (*init) {
				dst[j] = net->gtmp;
				acc[j] = target;
			} else {
				dst[j] = target;
				*init = 1;
			}
		}
		const float *xin = d->in >= first ? net->nodes[d->in].y : net->run_x;
		const Node *s = d->in >= first ? &net->nodes[d->in] : NULL;
		int iC = s ? s->C : (first == 0 ? net->in_c : net->nodes[first - 1].C);
		int iH = s ? s->H : (first == 0 ? net->in_size : net->nodes[first - 1].H);
		int iW = s ? s->W : (first == 0 ? net->in_size : net->nodes[first - 1].W);
		size_t n = node_numel(d, N);
		int tr = trainable(net, d);
		float *gw = tr ? net_grad(net, d->gw) : NULL;
		float *gb = tr ? net_grad(net, d->gb) : NULL;
		switch (d->op) {
		case OP_CONV: {
			ConvShape cs = conv_shape(N, iC, iH, iW, d->C, d->k, d->k,
			                          d->stride, d->pad);
			conv2d_backward(&cs, xin, net_param(net, d->w), d->dy, dst[0], gw, gb);
			break;
		}
		case OP_BN:
			if (d->bn_train)
				batchnorm_backward_train(N, d->C, d->H * d->W, xin,
				        net_param(net, d->w), d->save_mean, d->save_invstd,
				        d->dy, dst[0], gw, gb);
			else
				batchnorm_backward_eval(N, d->C, d->H * d->W, xin,
				        net_param(net, d->w), net_param(net, d->rm),
				        net_param(net, d->rv), d->eps, d->dy, dst[0], gw, gb);
			break;
		case OP_RELU:
			if (dst[0])
				relu_backward(n, d->y, d->dy, dst[0]);
			break;
		case OP_LEAKY:
			if (dst[0])
				leaky_relu_backward(n, d->slope, xin, d->dy, dst[0]);
			break;
		case OP_MAXPOOL:
		case OP_AVGPOOL: {
			PoolShape ps = { N, iC, iH, iW, d->k, d->stride, d->pad, d->H, d->W };
			if (!dst[0])
				break;
			if (d->op == OP_MAXPOOL)
				maxpool2d_backward(&ps, d->argmax, d->dy, dst[0]);
			else
				avgpool2d_backward(&ps, d->dy, dst[0]);
			break;
		}
		case OP_ADD:
			for (int j = 0; j < 2; j++)
				if (dst[j])
					memcpy(dst[j], d->dy, n * sizeof(float));
			break;
		case OP_SHORTCUT: {
			const Node *a = &net->nodes[d->in2];
			ShortcutShape ss = { N, d->C, d->H, d->W, a->C, a->H, a->W };
			// Both gradients may be due for the one scratch: add x's
			// (dy itself) straight into its target instead.
			if (dst[0] && acc[0]) {
				for (size_t q = 0; q < n; q++)
					acc[0][q] += d->dy[q];
				dst[0] = acc[0] = NULL;
			}
			shortcut_backward(&ss, d->dy, dst[0], dst[1]);
			break;
		}
		case OP_CONCATPOOL:
			if (dst[0])
				concat_pool_backward(N, iC, iH * iW, d->argmax, d->dy, dst[0]);
			break;
		case OP_GAP:
			if (dst[0])
				global_avgpool_backward(N, iC, iH * iW, d->dy, dst[0]);
			break;
		case OP_FLATTEN:
			if (dst[0])
				memcpy(dst[0], d->dy, n * sizeof(float));
			break;
		case OP_DROPOUT:
			if (!dst[0])
				break;
			if (net->run_train)
				dropout_backward(n, d->p, d->mask, d->dy, dst[0]);
			else
				memcpy(dst[0], d->dy, n * sizeof(float));
			break;
		case OP_LINEAR:
			linear_backward(N, iC * iH * iW, d->C, xin, net_param(net, d->w),
			                d->dy, dst[0], gw, gb);
			break;
		case OP_LOGSOFTMAX:
			if (dst[0])
				log_softmax_backward(N, d->C, d->y, d->dy, dst[0]);
			break;
		}
		for (int j = 0; j < 2; j++) {
			if (!acc[j])
				continue;
			// ADD with both inputs the same node would need two scratches;
			// builders never make one.
			size_t m = j == 0 && d->in >= first ? node_numel(&net->nodes[d->in], N)
			         : j == 1 ? node_numel(&net->nodes[d->in2], N) : in_n;
			for (size_t q = 0; q < m; q++)
				acc[j][q] += dst[j][q];
		}
	}
	free(req);
	free(def);
	free(ginit);
	return want_dx ? dxin : NULL;
}

// ---- loading weights ----------------------------------------------------------

static void shape_str(const Tensor *t, char *out, size_t len)
{
	size_t o = 0;
	o += (size_t)snprintf(out + o, len - o, "(");
	for (int i = 0; i < t->ndim && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%lld", i ? ", " : "",
		                      (long long)t->dims[i]);
	if (o < len)
		snprintf(out + o, len - o, ")");
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

static int to_f32(const Tensor *t, float *out)
{
	int64_t n = tensor_numel(t);
	switch (t->dtype) {
	case DT_F32:
		memcpy(out, t->data, (size_t)n * sizeof(float));
		return 0;
	case DT_F64:
		for (int64_t i = 0; i < n; i++)
			out[i] = (float)((const double *)t->data)[i];
		return 0;
	case DT_I64:
		for (int64_t i = 0; i < n; i++)
			out[i] = (float)((const int64_t *)t->data)[i];
		return 0;
	case DT_I32:
		for (int64_t i = 0; i < n; i++)
			out[i] = (float)((const int32_t *)t->data)[i];
		return 0;
	}
	return -1;
}

int net_load_tensors(Net *net, const Record *src, int skip_head, int strict,
                     const char *srcname, char *err, size_t errlen)
{
	char *used = xcalloc((size_t)src->n + 1, 1);
	int rc = -1;
	for (int i = 0; i < net->params.n; i++) {
		Tensor *p = &net->params.t[i];
		if (skip_head && !strncmp(p->name, "head.", 5))
			continue;
		int j;
		for (j = 0; j < src->n; j++)
			if (!strcmp(src->t[j].name, p->name))
				break;
		if (j == src->n) {
			if (!strict)
				continue;
			snprintf(err, errlen, "%s: missing tensor %s", srcname, p->name);
			goto out;
		}
		const Tensor *s = &src->t[j];
		int same = s->ndim == p->ndim;
		for (int d = 0; same && d < p->ndim; d++)
			same = s->dims[d] == p->dims[d];
		if (!same) {
			char a[128], b[128];
			shape_str(s, a, sizeof a);
			shape_str(p, b, sizeof b);
			snprintf(err, errlen, "%s: tensor %s has shape %s, expected %s",
			         srcname, p->name, a, b);
			goto out;
		}
		if (to_f32(s, p->data) < 0) {
			snprintf(err, errlen, "%s: tensor %s has dtype %s, expected f32",
			         srcname, p->name, dtype_name(s->dtype));
			goto out;
		}
		used[j] = 1;
	}
	if (strict)
		for (int j = 0; j < src->n; j++)
			if (!used[j] && !ends_with(src->t[j].name, "num_batches_tracked")) {
				snprintf(err, errlen, "%s: unexpected tensor %s", srcname,
				         src->t[j].name);
				goto out;
			}
	rc = 0;
out:
	free(used);
	return rc;
}
