// The backward pass (exec.h): plans the gradient buffers (plan.c), then runs
// every node's backward through the backend table, in reverse.
#include <stdlib.h>
#include <string.h>
#include "batch_slice.h"
#include "exec.h"
#include "exec_internal.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "plan.h"

static size_t input_numel(const Model *m, int first, int N)
{
	int in = m->nodes[first].in;
	if (in >= 0)
		return plan_numel(&m->nodes[in], N);
	return (size_t)N * m->in_c * m->in_size * m->in_size;
}

float *exec_backward(Exec *e, const float *dyl, int want_dx)
{
	if (!e->run_keep)
		die("exec_backward: the last forward did not keep its activations");
	const Model *m = e->m;
	const Backend *be = e->be;
	int first = e->run_first, last = e->run_last, N = e->run_N;
	int cnt = last - first + 1;
	exec_ensure_grads(e);
	// A batch norm that ran with its activation and pool as one pass
	// (forward.c, bn_act_pool_forward) runs their backward as one too, at
	// its own step: the pool's gradient must live until then, and the
	// activation and the pool do nothing at theirs.
	int *hold = xmalloc_array((size_t)cnt, sizeof(int));
	for (int k = 0; k < cnt; k++)
		hold[k] = -1;
	for (int i = first; i + 2 <= last; i++)
		if (e->run[i].pool_fused) {
			hold[i + 2 - first] = i;
			// the batch norm's and the activation's own gradients
			hold[i - first] = hold[i + 1 - first] = PLAN_NO_GRAD;
		}
	BackwardPlan p;
	plan_backward(m, N, first, last, want_dx, hold, &p);
	const int *req = p.req;
	if (p.total > e->garena_len) {
		be->free(e->garena);
		e->garena = be->alloc((p.total ? p.total : 1) * sizeof(float));
		e->garena_len = p.total;
	}
	if (p.maxn > e->gtmp_len) {
		be->free(e->gtmp);
		e->gtmp = be->alloc(p.maxn * sizeof(float));
		e->gtmp_len = p.maxn;
	}
	int *ginit = xcalloc((size_t)cnt, sizeof(int));
	// Fusion into a training batch norm's backward of what its only reader,
	// the node right after it, would do: a ReLU's or leaky ReLU's mask
	// (batchnorm_backward_train_act), or a residual add's copy of its
	// gradient (the batch norm reads the add's instead).  The reader's
	// gradient buffer is then read at the very next step, before any slot
	// is reused but for the batch norm's own dx, which may alias it
	// exactly (the kernel reads each dy before writing that dx).
	int *nrd = xcalloc((size_t)cnt, sizeof(int));       // readers in range
	const float **fdy = xcalloc((size_t)cnt, sizeof *fdy);
	const float **fact = xcalloc((size_t)cnt, sizeof *fact);
	float *fslope = xcalloc((size_t)cnt, sizeof(float));
	for (int i = first; i <= last; i++) {
		const Node *d = &m->nodes[i];
		if (d->in >= first)
			nrd[d->in - first]++;
		if (d->in2 >= first && d->in2 != d->in)
			nrd[d->in2 - first]++;
	}
	for (int i = first; i <= last; i++) {
		int k = i - first;
		e->run[i].dy = req[k] && hold[k] != PLAN_NO_GRAD ? e->garena + p.off[k] : NULL;
	}

	const Node *nl = &m->nodes[last];
	size_t in_n = input_numel(m, first, N);
	float *dxin = NULL;
	if (want_dx) {
		if (in_n > e->dx_in_len || !e->dx_in) {
			be->free(e->dx_in);
			e->dx_in = be->alloc((in_n ? in_n : 1) * sizeof(float));
			e->dx_in_len = in_n;
		}
		be->zero(e->dx_in, in_n * sizeof(float));
		dxin = e->dx_in;
	}
	if (req[cnt - 1])
		be->copy(e->run[last].dy, dyl, plan_numel(nl, N) * sizeof(float));

	for (int i = last; i >= first; i--) {
		const Node *d = &m->nodes[i];
		NodeRun *r = &e->run[i];
		int k = i - first;
		if (!req[k] || (i - 1 >= first && e->run[i - 1].pool_fused) ||
		    (i - 2 >= first && e->run[i - 2].pool_fused))
			continue;   // (the activation and the pool of a fused batch norm)
		double t0 = exec_profile_start(e);
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
				target = e->run[in].dy;
				init = &ginit[in - first];
			}
			if (*init) {
				dst[j] = e->gtmp;
				acc[j] = target;
			} else {
				dst[j] = target;
				*init = 1;
			}
		}
		const float *xin = d->in >= first ? e->run[d->in].y : e->run_x;
		// the fusions above: the batch norm right before, read only here
		for (int j = 0; j < 2; j++) {
			int in = ins[j];
			int act = d->op == OP_RELU || d->op == OP_LEAKY;
			if (j == 1 && d->op != OP_ADD)
				break;
			// (not over ghost batches: ghost_bn_backward takes dy as it is)
			if (!(act || d->op == OP_ADD) || in != i - 1 || in < first ||
			    m->nodes[in].op != OP_BN || !e->run[in].bn_train ||
			    ghost_bn_count(N, e->bn_batch) > 1 ||
			    nrd[in - first] != 1 || !dst[j] || acc[j])
				continue;
			fdy[in - first] = r->dy;
			fact[in - first] = !act ? NULL : d->op == OP_RELU || leaky_from_y(d) ? r->y : xin;
			fslope[in - first] = d->op == OP_LEAKY ? d->slope : 0.0f;
			dst[j] = NULL;
		}
		const Node *s = d->in >= first ? &m->nodes[d->in] : NULL;
		int iC = s ? s->C : (first == 0 ? m->in_c : m->nodes[first - 1].C);
		int iH = s ? s->H : (first == 0 ? m->in_size : m->nodes[first - 1].H);
		int iW = s ? s->W : (first == 0 ? m->in_size : m->nodes[first - 1].W);
		size_t n = plan_numel(d, N);
		int tr = plan_trainable(m, d);
		float *gw = tr ? exec_grad(e, d->gw) : NULL;
		float *gb = tr ? exec_grad(e, d->gb) : NULL;
		switch (d->op) {
		case OP_CONV: {
			ConvShape cs = conv_shape(N, iC, iH, iW, d->C, d->k, d->k,
			                          d->stride, d->pad);
			be->conv2d_backward(&cs, xin, exec_param(e, d->w), r->dy, dst[0],
			                    gw, gb);
			break;
		}
		case OP_BN:
			if (r->pool_fused) {
				const Node *a = &m->nodes[i + 1], *q = &m->nodes[i + 2];
				PoolShape ps = { N, d->C, d->H, d->W, 2, 2, 0, q->H, q->W };
				be->batchnorm_act_maxpool2_backward_train(&ps, xin,
				        exec_param(e, d->w), r->save_mean, r->save_invstd,
				        e->run[i + 2].y, e->run[i + 2].argmax,
				        a->op == OP_LEAKY ? a->slope : 0.0f, e->run[i + 2].dy,
				        dst[0], gw, gb);
			} else if (r->bn_train && ghost_bn_count(N, e->bn_batch) > 1)   // data-parallel
				ghost_bn_backward(be, N, e->bn_batch, d->C, d->H * d->W, xin,
				        exec_param(e, d->w), r->save_mean, r->save_invstd,
				        r->dy, dst[0], gw, gb);
			else if (fact[k])
				be->batchnorm_backward_train_act(N, d->C, d->H * d->W, xin,
				        exec_param(e, d->w), r->save_mean, r->save_invstd,
				        fact[k], fslope[k], fdy[k], dst[0], gw, gb);
			else if (fdy[k])
				be->batchnorm_backward_train(N, d->C, d->H * d->W, xin,
				        exec_param(e, d->w), r->save_mean, r->save_invstd,
				        fdy[k], dst[0], gw, gb);
			else if (r->bn_train)
				be->batchnorm_backward_train(N, d->C, d->H * d->W, xin,
				        exec_param(e, d->w), r->save_mean, r->save_invstd,
				        r->dy, dst[0], gw, gb);
			else
				be->batchnorm_backward_eval(N, d->C, d->H * d->W, xin,
				        exec_param(e, d->w), exec_param(e, d->rm),
				        exec_param(e, d->rv), d->eps, r->dy, dst[0], gw, gb);
			break;
		case OP_RELU:
			if (dst[0])
				be->relu_backward(n, r->y, r->dy, dst[0]);
			break;
		case OP_LEAKY:
			if (dst[0])
				be->leaky_relu_backward(n, d->slope, leaky_from_y(d) ? r->y : xin,
				                        r->dy, dst[0]);
			break;
		case OP_MAXPOOL:
		case OP_AVGPOOL: {
			PoolShape ps = { N, iC, iH, iW, d->k, d->stride, d->pad, d->H, d->W };
			if (!dst[0])
				break;
			if (d->op == OP_MAXPOOL)
				be->maxpool2d_backward(&ps, r->argmax, r->dy, dst[0]);
			else
				be->avgpool2d_backward(&ps, r->dy, dst[0]);
			break;
		}
		case OP_ADD:
			for (int j = 0; j < 2; j++)
				if (dst[j])
					be->copy(dst[j], r->dy, n * sizeof(float));
			break;
		case OP_SHORTCUT: {
			const Node *a = &m->nodes[d->in2];
			ShortcutShape ss = { N, d->C, d->H, d->W, a->C, a->H, a->W };
			// Both gradients may be due for the one scratch: add x's
			// (dy itself) straight into its target instead.
			if (dst[0] && acc[0]) {
				be->add_forward(n, acc[0], r->dy, acc[0]);
				dst[0] = acc[0] = NULL;
			}
			be->shortcut_backward(&ss, r->dy, dst[0], dst[1]);
			break;
		}
		case OP_CONCATPOOL:
			if (dst[0])
				be->concat_pool_backward(N, iC, iH * iW, r->argmax, r->dy, dst[0]);
			break;
		case OP_GAP:
			if (dst[0])
				be->global_avgpool_backward(N, iC, iH * iW, r->dy, dst[0]);
			break;
		case OP_FLATTEN:
			if (dst[0])
				be->copy(dst[0], r->dy, n * sizeof(float));
			break;
		case OP_DROPOUT:
			if (!dst[0])
				break;
			if (e->run_train)
				be->dropout_backward(n, d->p, r->mask, r->dy, dst[0]);
			else
				be->copy(dst[0], r->dy, n * sizeof(float));
			break;
		case OP_LINEAR:
			be->linear_backward(N, iC * iH * iW, d->C, xin, exec_param(e, d->w),
			                    r->dy, dst[0], gw, gb);
			break;
		case OP_LOGSOFTMAX:
			if (dst[0])
				be->log_softmax_backward(N, d->C, r->y, r->dy, dst[0]);
			break;
		}
		for (int j = 0; j < 2; j++) {
			if (!acc[j])
				continue;
			// ADD with both inputs the same node would need two scratches;
			// builders never make one.
			size_t mm = j == 0 && d->in >= first ? plan_numel(&m->nodes[d->in], N)
			          : j == 1 ? plan_numel(&m->nodes[d->in2], N) : in_n;
			be->add_forward(mm, acc[j], dst[j], acc[j]);
		}
		exec_profile_add(e, i, 1, t0);
	}
	plan_backward_free(&p);
	free(hold);
	free(ginit);
	free(nrd);
	free(fdy);
	free(fact);
	free(fslope);
	return want_dx ? dxin : NULL;
}
