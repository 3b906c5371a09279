// The forward pass (exec.h): plans the buffers (plan.c), then runs every
// node through the backend table.
#include <stdlib.h>
#include <string.h>
#include "batch_slice.h"
#include "exec.h"
#include "exec_internal.h"
#include "libcommon/util/err.h"
#include "plan.h"

// Grows the per-node buffers a forward of N samples needs (argmax, batch
// statistics, dropout masks), on the device.
static void aux_fit(const Backend *be, const Node *d, NodeRun *r, int N,
                    int train, int bn_batch)
{
	if (r->aux_n >= (size_t)N && r->aux_n)
		return;
	size_t n = plan_numel(d, N);
	switch (d->op) {
	case OP_BN:
		if (!train)
			return;
		be->free(r->save_mean);
		be->free(r->save_invstd);
		// a mean and invstd per ghost batch (batch_slice.h)
		r->save_mean = be->alloc((size_t)d->C * ghost_bn_count(N, bn_batch) *
		                         sizeof(float));
		r->save_invstd = be->alloc((size_t)d->C * ghost_bn_count(N, bn_batch) *
		                           sizeof(float));
		break;
	case OP_MAXPOOL:
		be->free(r->argmax);
		r->argmax = be->alloc(n * sizeof(int32_t));
		break;
	case OP_CONCATPOOL:
		be->free(r->argmax);
		r->argmax = be->alloc((size_t)N * (size_t)(d->C / 2) * sizeof(int32_t));
		break;
	case OP_DROPOUT:
		if (!train)
			return;
		be->free(r->mask);
		r->mask = be->alloc(n ? n : 1);
		break;
	default:
		return;
	}
	r->aux_n = (size_t)N;
}

// The cache of conv node i, or NULL where the weights learn (Exec.learning)
static ConvCache *conv_cache_of(const Exec *e, int i)
{
	if (e->learning && plan_trainable(e->m, &e->m->nodes[i]))
		return NULL;
	return e->run[i].cache;
}

// Shape of node i's input: node in's output, or the range's input.
static void input_shape(const Model *m, int in, int first, int *C, int *H,
                        int *W)
{
	const Node *s = in >= first ? &m->nodes[in]
	              : first > 0 ? &m->nodes[first - 1] : NULL;
	*C = s ? s->C : m->in_c;
	*H = s ? s->H : m->in_size;
	*W = s ? s->W : m->in_size;
}

// The folded weights of conv c with batch norm b, made once until the
// weights change (exec_params_changed).
static const float *folded(Exec *e, int ci, const Node *c, const Node *b)
{
	NodeRun *r = &e->run[ci];
	size_t wn = (size_t)tensor_numel(&e->m->params.t[c->w]);
	if (!r->fold)
		r->fold = e->be->alloc((wn + (size_t)c->C) * sizeof(float));
	if (!r->fold_ok) {
		e->be->conv_fold_batchnorm(c->C, wn / (size_t)c->C,
		        exec_param(e, c->w), exec_param(e, c->b),
		        exec_param(e, b->w), exec_param(e, b->b),
		        exec_param(e, b->rm), exec_param(e, b->rv), b->eps,
		        r->fold, r->fold + wn);
		e->be->conv_cache_invalidate(r->cache);
		r->fold_ok = 1;
	}
	return r->fold;
}

// The weights, bias and activation of conv ci's chain (batch norm folded in).
static void chain_params(Exec *e, int ci, const Chain *ch, const float **w,
                         const float **bias, int *act, float *slope)
{
	const Model *m = e->m;
	const Node *c = &m->nodes[ci];
	*w = exec_param(e, c->w);
	*bias = exec_param(e, c->b);
	if (ch->bn >= 0) {
		size_t wn = (size_t)tensor_numel(&m->params.t[c->w]);
		*w = folded(e, ci, c, &m->nodes[ch->bn]);
		*bias = *w + wn;
	}
	*act = CONV_ACT_NONE;
	*slope = 0;
	if (ch->act >= 0) {
		const Node *a = &m->nodes[ch->act];
		*act = a->op == OP_RELU ? CONV_ACT_RELU : CONV_ACT_LEAKY;
		*slope = a->slope;
	}
}

static void chain_run(Exec *e, int N, int first, const float *x, int ci,
                      const Chain *ch, const Chain *all)
{
	const Model *m = e->m;
	const Node *c = &m->nodes[ci];
	if (ch->prev >= 0)
		return;   // run with its 3x3 chain
	const float *w, *bias;
	int act;
	float slope;
	chain_params(e, ci, ch, &w, &bias, &act, &slope);
	const float *res = ch->add < 0 ? NULL
	                 : ch->res < first ? x : e->run[ch->res].y;
	const float *xi = c->in >= first ? e->run[c->in].y : x;
	int iC, iH, iW;
	input_shape(m, c->in, first, &iC, &iH, &iW);
	ConvShape cs = conv_shape(N, iC, iH, iW, c->C, c->k, c->k, c->stride, c->pad);
	if (ch->next >= 0) {
		const Chain *c2 = &all[ch->next - first];
		const float *w2, *b2;
		int act2;
		float slope2;
		chain_params(e, ch->next, c2, &w2, &b2, &act2, &slope2);
		e->be->conv2d_forward_fused_pointwise(conv_cache_of(e, ci), &cs, xi, w, bias,
		        act, slope, conv_cache_of(e, ch->next), m->nodes[ch->next].C, w2, b2,
		        act2, slope2, e->run[c2->tail].y);
		return;
	}
	if (ch->pool >= 0)
		e->be->conv2d_forward_fused_maxpool2(conv_cache_of(e, ci), &cs, xi, w, bias,
		                                     act, slope, e->run[ch->tail].y);
	else
		e->be->conv2d_forward_fused(conv_cache_of(e, ci), &cs, xi, w, bias, res, act,
		                            slope, e->run[ch->tail].y);
}

static void node_forward(Exec *e, int N, int first, const float *x, int i,
                         int train, int keep)
{
	const Model *m = e->m;
	const Backend *be = e->be;
	const Node *d = &m->nodes[i];
	NodeRun *r = &e->run[i];
	const float *xi = d->in < first ? x : e->run[d->in].y;
	int iC, iH, iW;
	input_shape(m, d->in, first, &iC, &iH, &iW);
	size_t n = plan_numel(d, N);
	float *y = r->y;
	switch (d->op) {
	case OP_CONV: {
		ConvShape cs = conv_shape(N, iC, iH, iW, d->C, d->k, d->k,
		                          d->stride, d->pad);
		be->conv2d_forward(conv_cache_of(e, i), &cs, xi, exec_param(e, d->w),
		                   exec_param(e, d->b), y);
		break;
	}
	case OP_BN:
		if (r->bn_train && ghost_bn_count(N, e->bn_batch) > 1)   // data-parallel
			ghost_bn_forward(be, N, e->bn_batch, d->C, d->H * d->W, xi,
			        exec_param(e, d->w), exec_param(e, d->b),
			        exec_param(e, d->rm), exec_param(e, d->rv),
			        0.1f, d->eps, r->save_mean, r->save_invstd, y);
		else if (r->bn_train)
			be->batchnorm_forward_train(N, d->C, d->H * d->W, xi,
			        exec_param(e, d->w), exec_param(e, d->b),
			        exec_param(e, d->rm), exec_param(e, d->rv),
			        0.1f, d->eps, r->save_mean, r->save_invstd, y);
		else
			be->batchnorm_forward_eval(N, d->C, d->H * d->W, xi,
			        exec_param(e, d->w), exec_param(e, d->b),
			        exec_param(e, d->rm), exec_param(e, d->rv),
			        d->eps, y);
		break;
	case OP_RELU:
		be->relu_forward(n, xi, y);
		break;
	case OP_LEAKY:
		be->leaky_relu_forward(n, d->slope, xi, y);
		break;
	case OP_MAXPOOL:
	case OP_AVGPOOL: {
		PoolShape ps = { N, iC, iH, iW, d->k, d->stride, d->pad, d->H, d->W };
		if (d->op == OP_MAXPOOL)
			be->maxpool2d_forward(&ps, xi, y, keep ? r->argmax : NULL);
		else
			be->avgpool2d_forward(&ps, xi, y);
		break;
	}
	case OP_ADD:
		be->add_forward(n, xi, d->in2 < first ? x : e->run[d->in2].y, y);
		break;
	case OP_SHORTCUT: {
		const Node *a = &m->nodes[d->in2];
		ShortcutShape ss = { N, d->C, d->H, d->W, a->C, a->H, a->W };
		be->shortcut_forward(&ss, xi, d->in2 < first ? x : e->run[d->in2].y, y);
		break;
	}
	case OP_CONCATPOOL:
		be->concat_pool_forward(N, iC, iH * iW, xi, y, keep ? r->argmax : NULL);
		break;
	case OP_GAP:
		be->global_avgpool_forward(N, iC, iH * iW, xi, y);
		break;
	case OP_FLATTEN:
		break;   // an alias of its input
	case OP_DROPOUT:
		if (train && e->drop_rows)   // data-parallel: a slice's rows
			slice_dropout_forward(be, n, N, d->p, &e->rng, e->drop_row0,
			                      e->drop_rows, xi, y, r->mask);
		else if (train)
			be->dropout_forward(n, d->p, &e->rng, xi, y, r->mask);
		break;   // eval: an alias of its input
	case OP_LINEAR:
		// predictions: an image's outputs the same in any batch (shards);
		// training: sgemm's order, PyTorch's
		(e->learning ? be->linear_forward : be->linear_forward_fixed)(N, iC * iH * iW,
		        d->C, xi, exec_param(e, d->w), exec_param(e, d->b), y);
		break;
	case OP_LOGSOFTMAX:
		be->log_softmax_forward(N, d->C, xi, y);
		break;
	default:
		die("exec_forward: node %s: unknown op %d", d->name, d->op);
	}
}

// Train-mode batch norm i and the ReLU or leaky a that alone reads it, in
// place (ForwardPlan.bn_act), as one pass: a's output is the buffer both
// share, as when they run one after the other.
static void bn_act_forward(Exec *e, int N, int first, const float *x, int i,
                           const Node *a)
{
	const Node *d = &e->m->nodes[i];
	NodeRun *r = &e->run[i];
	const float *xi = d->in < first ? x : e->run[d->in].y;
	e->be->batchnorm_forward_train_act(N, d->C, d->H * d->W, xi,
	        exec_param(e, d->w), exec_param(e, d->b), exec_param(e, d->rm),
	        exec_param(e, d->rv), 0.1f, d->eps, r->save_mean, r->save_invstd,
	        a->op == OP_RELU ? CONV_ACT_RELU : CONV_ACT_LEAKY, a->slope, r->y);
}

// Node k of plan p, a batch norm, applies its ReLU or leaky (p->bn_act[k])
// in its own pass: in train mode, over the whole batch, where the backend can.
static int bn_act_fused(const Exec *e, const ForwardPlan *p, int k, int N)
{
	return p->bn_act[k] >= 0 && e->run[p->first + k].bn_train &&
	       ghost_bn_count(N, e->bn_batch) <= 1 && e->be->batchnorm_forward_train_act;
}

// Train-mode batch norm i, its activation a and the 2x2 max pool q after it
// (ForwardPlan.bn_pool) as one pass, into q's output and argmax; the batch
// norm's and the activation's shared buffer is left unwritten (the fused
// backward reads the pool's output instead).
static void bn_act_pool_forward(Exec *e, int N, int first, const float *x, int i,
                                const Node *a, int q)
{
	const Node *d = &e->m->nodes[i], *pn = &e->m->nodes[q];
	NodeRun *r = &e->run[i];
	const float *xi = d->in < first ? x : e->run[d->in].y;
	PoolShape ps = { N, d->C, d->H, d->W, 2, 2, 0, pn->H, pn->W };
	aux_fit(e->be, pn, &e->run[q], N, 1, e->bn_batch);   // before q's turn
	e->be->batchnorm_act_maxpool2_forward_train(&ps, xi, exec_param(e, d->w),
	        exec_param(e, d->b), exec_param(e, d->rm), exec_param(e, d->rv), 0.1f,
	        d->eps, r->save_mean, r->save_invstd,
	        a->op == OP_RELU ? CONV_ACT_RELU : CONV_ACT_LEAKY, a->slope,
	        e->run[q].y, e->run[q].argmax);
	r->pool_fused = 1;
}

// Node k of plan p, a batch norm run with its activation in one pass, also
// pools (p->bn_pool[k]) in that pass: where the backend has both halves.
static int bn_pool_fused(const Exec *e, const ForwardPlan *p, int k, int N)
{
	return p->bn_pool[k] >= 0 && bn_act_fused(e, p, k, N) &&
	       e->be->batchnorm_act_maxpool2_forward_train &&
	       e->be->batchnorm_act_maxpool2_backward_train;
}

float *exec_forward(Exec *e, int N, const float *x, int first, int last,
                    int train, int keep)
{
	const Model *m = e->m;
	keep = keep || train;
	ForwardPlan p;
	plan_forward(m, N, first, last, train, keep,
	             e->be->conv2d_forward_fused_maxpool2 != NULL,
	             e->be->conv2d_forward_fused_pointwise != NULL, &p);
	if (p.total > e->arena_len) {
		e->be->free(e->arena);
		e->arena = e->be->alloc(p.total * sizeof(float));
		e->arena_len = p.total;
	}
	for (int i = first; i <= last; i++) {
		int k = i - first;
		NodeRun *r = &e->run[i];
		r->y = p.slot[k] == PLAN_NONE ? NULL
		     : p.slot[k] == PLAN_EXTERNAL ? (float *)x : e->arena + p.off[k];
		r->bn_train = m->nodes[i].op == OP_BN && train &&
		              m->nodes[i].group >= m->frozen;
		r->pool_fused = 0;
	}
	for (int i = first; i <= last; i++) {
		int k = i - first;
		aux_fit(e->be, &m->nodes[i], &e->run[i], N, train || keep, e->bn_batch);
		if (k > 0 && p.bn_act[k - 1] == i && bn_act_fused(e, &p, k - 1, N))
			continue;   // applied by its batch norm's pass
		if (k > 1 && p.bn_pool[k - 2] == i && bn_pool_fused(e, &p, k - 2, N))
			continue;   // pooled in its batch norm's pass
		double t0 = exec_profile_start(e);
		if (bn_pool_fused(e, &p, k, N)) {
			bn_act_pool_forward(e, N, first, x, i, &m->nodes[p.bn_act[k]],
			                    p.bn_pool[k]);
			exec_profile_add(e, i, 0, t0);
			continue;
		}
		if (bn_act_fused(e, &p, k, N)) {
			bn_act_forward(e, N, first, x, i, &m->nodes[p.bn_act[k]]);
			exec_profile_add(e, i, 0, t0);
			continue;
		}
		if (p.cof[k] >= 0) {
			const Chain *c = &p.ch[p.cof[k] - first];
			if (c->tail == i) {
				chain_run(e, N, first, x, p.cof[k], c, p.ch);
				exec_profile_add(e, p.cof[k], 0, t0);
			}
			continue;
		}
		node_forward(e, N, first, x, i, train, keep);
		exec_profile_add(e, i, 0, t0);
	}
	plan_forward_free(&p);
	e->run_first = first;
	e->run_last = last;
	e->run_N = N;
	e->run_x = x;
	e->run_train = train;
	e->run_keep = keep;
	return e->run[last].y;
}

float *exec_forward_frozen_body(Exec *e, int N, const float *x, float *feat,
                                int train)
{
	const Model *m = e->m;
	const float *f = exec_forward(e, N, x, 0, m->feat, 0, 0);
	e->be->copy(feat, f, (size_t)N * (size_t)m->nodes[m->feat].C * sizeof(float));
	return exec_forward(e, N, feat, m->feat + 1, m->n - 1, train, train);
}
