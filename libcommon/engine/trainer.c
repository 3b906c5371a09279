// Training steps and evaluation (trainer.h).
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "trainer.h"

void trainer_init(Trainer *t, Model *m, const Backend *be, int mode, int bs,
                  float momentum, float wd, uint64_t seed)
{
	memset(t, 0, sizeof *t);
	t->m = m;
	t->mode = mode;
	t->bs = bs;
	t->F = m->nodes[m->feat].C;
	t->K = m->nodes[m->n - 1].C;
	t->in_per = mode == TRAIN_HEAD ? (size_t)t->F
	          : (size_t)m->in_c * m->in_size * m->in_size;
	exec_init(&t->e, m, be);
	t->e.learning = 1;
	// the dropout draws of a run: seeded, stream 2 (the shuffle is stream 1)
	rng_seed(&t->e.rng, seed, 2);
	sgd_init(&t->opt, &t->e, momentum, wd);
	if (!be->host_memory)
		t->xdev = be->alloc((size_t)bs * t->in_per * sizeof(float));
	if (mode == TRAIN_FROZEN)
		t->feat = be->alloc((size_t)bs * t->F * sizeof(float));
	t->tdev = be->alloc((size_t)bs * sizeof(int32_t));
	t->dlogp = be->alloc((size_t)bs * t->K * sizeof(float));
	t->logp = xmalloc_array((size_t)bs * t->K, sizeof(float));
}

void trainer_free(Trainer *t)
{
	const Backend *be = t->e.be;
	be->free(t->xdev);
	be->free(t->feat);
	be->free(t->tdev);
	be->free(t->dlogp);
	free(t->logp);
	sgd_free(&t->opt);
	exec_free(&t->e);
	memset(t, 0, sizeof *t);
}

// The network's log-probabilities for the batch (device), in train or
// eval mode.
static const float *forward(Trainer *t, int N, const float *x, int train)
{
	const Backend *be = t->e.be;
	const Model *m = t->m;
	const float *xd = x;
	if (t->xdev) {
		be->to_device(t->xdev, x, (size_t)N * t->in_per * sizeof(float));
		xd = t->xdev;
	}
	switch (t->mode) {
	case TRAIN_HEAD:
		return exec_forward(&t->e, N, xd, m->feat + 1, m->n - 1, train, train);
	case TRAIN_FROZEN:
		return exec_forward_frozen_body(&t->e, N, xd, t->feat, train);
	default:
		return exec_forward(&t->e, N, xd, 0, m->n - 1, train, train);
	}
}

double trainer_step(Trainer *t, int N, const float *x, const int32_t *y,
                    const double *lr)
{
	const Backend *be = t->e.be;
	if (N < 1 || N > t->bs)
		die("trainer_step: batch of %d (at most %d)", N, t->bs);
	const float *logp = forward(t, N, x, 1);
	be->to_device(t->tdev, y, (size_t)N * sizeof(int32_t));
	double loss = be->nll_loss_forward(N, t->K, logp, t->tdev);
	be->nll_loss_backward(N, t->K, t->tdev, 1.0f, t->dlogp);
	exec_zero_grad(&t->e);
	exec_backward(&t->e, t->dlogp, 0);
	if (t->reduce)   // data-parallel: the ranks' gradients summed
		t->reduce(t->reduce_ctx, N, loss);
	sgd_step(&t->opt, lr);
	return loss;
}

void trainer_eval(Trainer *t, int N, const float *x, const int32_t *y,
                  double *loss_sum, int64_t *correct)
{
	const Backend *be = t->e.be;
	const float *logp = forward(t, N, x, 0);
	be->to_host(t->logp, logp, (size_t)N * t->K * sizeof(float));
	for (int i = 0; i < N; i++) {
		const float *p = t->logp + (size_t)i * t->K;
		int best = 0;
		for (int k = 1; k < t->K; k++)
			if (p[k] > p[best])
				best = k;
		*correct += best == y[i];
		*loss_sum -= p[y[i]];
	}
}
