// Data-parallel training (data_parallel.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "batch_slice.h"
#include "data_parallel.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/util/rng_skip.h"
#include "libcommon/util/signals.h"
#include "libcommon/util/timer.h"

void dp_open(DataParallel *dp, int bs, int bn_batch)
{
	memset(dp, 0, sizeof *dp);
	char err[1024];
	dp->world = comm_world(err, sizeof err);
	if (!dp->world)
		die("%s", err);
	dp->rank = comm_rank(dp->world);
	dp->size = comm_size(dp->world);
	if (bn_batch > bs)
		die_usage("--bn-batch %d: more than the batch (-b %d)", bn_batch, bs);
	if (dp->size > 1 && !bn_batch)
		bn_batch = (bs + dp->size - 1) / dp->size;
	dp->bn_batch = bn_batch >= bs ? 0 : bn_batch;   // one ghost: PyTorch's
	int K = ghost_bn_count(bs, dp->bn_batch);
	if (dp->rank == 0 && K < dp->size)
		warn("--bn-batch %d: %d ghost batches a batch for %d ranks: %d of them idle",
		     bn_batch, K, dp->size, dp->size - K);
	// one GPU a rank: its local rank among the visible ones, unless the
	// launcher chose (Slurm's --gpus-per-task sets CUDA_VISIBLE_DEVICES)
	const char *dev = getenv("CNNPIPE_DEVICE");
	if (dp->size > 1 && dev && !strcmp(dev, "cuda") && !getenv("CUDA_VISIBLE_DEVICES")) {
		char g[16];
		snprintf(g, sizeof g, "%d", comm_local_rank(dp->world));
		setenv("CUDA_VISIBLE_DEVICES", g, 1);
	}
}

static void reduce(void *ctx, int n, double loss);

void dp_attach(DataParallel *dp, Trainer *t)
{
	dp->t = t;
	t->e.bn_batch = dp->bn_batch;
	if (dp->size == 1)
		return;
	Exec *e = &t->e;
	const Model *m = t->m;
	exec_zero_grad(e);   // allocates them
	// The gradients that move are those of groups [frozen, ngroups): a
	// tail of the record when the groups come in node order, as they do;
	// else the whole record.
	const Record *g = &e->grads;
	size_t lo = g->used;
	for (int i = 0; i < m->n; i++) {
		const Node *d = &m->nodes[i];
		int gi[2] = { d->gw, d->gb };
		for (int j = 0; j < 2; j++)
			if (gi[j] >= 0 && d->group >= m->frozen && g->t[gi[j]].offset < lo)
				lo = g->t[gi[j]].offset;
	}
	for (int i = 0; i < m->n; i++) {
		const Node *d = &m->nodes[i];
		int gi[2] = { d->gw, d->gb };
		for (int j = 0; j < 2; j++)
			if (gi[j] >= 0 && d->group < m->frozen && g->t[gi[j]].offset >= lo)
				lo = 0;
	}
	dp->goff = lo;
	dp->glen = (g->used - lo) / sizeof(float);
	// the batch norms in train mode (exec_forward's rule)
	dp->bn = xmalloc_array((size_t)m->n, sizeof(int));
	dp->nsmall = 2;
	for (int i = 0; i < m->n; i++)
		if (m->nodes[i].op == OP_BN && m->nodes[i].group >= m->frozen) {
			dp->bn[dp->nbn++] = i;
			dp->nsmall += 2 * (size_t)m->nodes[i].C;
		}
	dp->small = xmalloc_array(dp->nsmall, sizeof(double));
	if (!e->be->host_memory) {
		char err[1024];
		const char *via = getenv("CNNPIPE_COMM");
		if (comm_device_available() && !(via && !strcmp(via, "mpi"))) {
			dp->dev = comm_device(dp->world, err, sizeof err);
			if (!dp->dev)
				die("rank %d: the GPUs' gradient sum: %s (CNNPIPE_COMM=mpi sums "
				    "them through the host)", dp->rank, err);
		} else {
			dp->host = xmalloc_array(dp->glen ? dp->glen : 1, sizeof(float));
		}
	}
	t->reduce = reduce;
	t->reduce_ctx = dp;
}

void dp_close(DataParallel *dp)
{
	if (dp->t) {
		dp->t->reduce = NULL;
		dp->t->e.bn_batch = 0;
	}
	comm_close(dp->dev);
	comm_close(dp->world);
	free(dp->host);
	free(dp->bn);
	free(dp->small);
	memset(dp, 0, sizeof *dp);
}

void dp_slice(const DataParallel *dp, int N, int *lo, int *n)
{
	int K = ghost_bn_count(N, dp->bn_batch);
	int B = K == 1 ? N : dp->bn_batch;
	int64_t c0 = (int64_t)K * dp->rank / dp->size;
	int64_t c1 = (int64_t)K * (dp->rank + 1) / dp->size;
	int64_t a = c0 * B < N ? c0 * B : N, b = c1 * B < N ? c1 * B : N;
	*lo = (int)a;
	*n = (int)(b - a);
}

static void fail(DataParallel *dp, const char *what, const char *err)
{
	die("rank %d of %d: %s: %s", dp->rank, dp->size, what, err);
}

// Between the backward and the step (Trainer.reduce): the gradients, then
// the loss, the stop requests and the running statistics in one sum.
static void reduce(void *ctx, int n, double loss)
{
	DataParallel *dp = ctx;
	Exec *e = &dp->t->e;
	const Backend *be = e->be;
	char err[1024];
	double t0 = now_seconds();
	float share = (float)((double)n / dp->N);
	if (be->host_memory) {
		float *g = (float *)(e->grads.buf + dp->goff);
		if (comm_allreduce_sum(dp->world, g, dp->glen, share, err, sizeof err) < 0)
			fail(dp, "the gradients' sum", err);
	} else {
		float *g = (float *)((char *)e->gdev + dp->goff);
		if (dp->dev) {
			if (comm_allreduce_sum(dp->dev, g, dp->glen, share, err, sizeof err) < 0)
				fail(dp, "the gradients' sum", err);
		} else {
			be->to_host(dp->host, g, dp->glen * sizeof(float));
			if (comm_allreduce_sum(dp->world, dp->host, dp->glen, share, err,
			                       sizeof err) < 0)
				fail(dp, "the gradients' sum", err);
			be->to_device(g, dp->host, dp->glen * sizeof(float));
		}
	}
	dp->comm_s += now_seconds() - t0;

	const Model *m = dp->t->m;
	double w = dp->ghosts ? (double)dp->my_ghosts / dp->ghosts : 0;
	double *s = dp->small;
	s[0] = loss * n;
	s[1] = stop_requested() != 0;
	size_t k = 2;
	float *tmp = NULL;
	for (int b = 0; b < dp->nbn; b++) {
		const Node *d = &m->nodes[dp->bn[b]];
		const float *st[2] = { exec_param(e, d->rm), exec_param(e, d->rv) };
		for (int j = 0; j < 2; j++) {
			const float *h = st[j];
			if (!be->host_memory) {
				tmp = realloc(tmp, (size_t)d->C * sizeof(float));
				if (!tmp)
					die("out of memory");
				be->to_host(tmp, st[j], (size_t)d->C * sizeof(float));
				h = tmp;
			}
			for (int c = 0; c < d->C; c++)
				s[k++] = n ? w * h[c] : 0.0;
		}
	}
	if (comm_allreduce_sum_f64(dp->world, s, dp->nsmall, err, sizeof err) < 0)
		fail(dp, "the loss and batch-norm statistics' sum", err);
	dp->loss = s[0] / dp->N;
	dp->stop = s[1] > 0;
	k = 2;
	for (int b = 0; b < dp->nbn; b++) {
		const Node *d = &m->nodes[dp->bn[b]];
		float *st[2] = { exec_param(e, d->rm), exec_param(e, d->rv) };
		for (int j = 0; j < 2; j++) {
			float *h = be->host_memory ? st[j] : tmp;
			for (int c = 0; c < d->C; c++)
				h[c] = (float)s[k++];
			if (!be->host_memory)
				be->to_device(st[j], tmp, (size_t)d->C * sizeof(float));
		}
	}
	free(tmp);
}

// A rank without rows this step: its dropout stream moves past the whole
// batch's masks, as the others' does.
static void skip_dropout(Trainer *t, int N)
{
	const Model *m = t->m;
	int first = t->mode == TRAIN_ALL ? 0 : m->feat + 1;
	for (int i = first; i < m->n; i++) {
		const Node *d = &m->nodes[i];
		if (d->op == OP_DROPOUT && d->p > 0.0f && d->p < 1.0f)
			rng_skip(&t->e.rng, (uint64_t)N * d->C * d->H * d->W);
	}
}

double dp_step(DataParallel *dp, Trainer *t, int N, const float *x,
               const int32_t *y, const double *lr)
{
	if (dp->size == 1)
		return trainer_step(t, N, x, y, lr);
	int lo, n;
	dp_slice(dp, N, &lo, &n);
	dp->N = N;
	dp->lo = lo;
	dp->n = n;
	dp->ghosts = ghost_bn_count(N, dp->bn_batch);
	dp->my_ghosts = n ? ghost_bn_count(n, dp->bn_batch) : 0;
	t->e.drop_row0 = lo;
	t->e.drop_rows = N;
	if (n) {
		trainer_step(t, n, x + (size_t)lo * t->in_per, y + lo, lr);
	} else {
		exec_zero_grad(&t->e);
		skip_dropout(t, N);
		reduce(dp, 0, 0.0);
		sgd_step(&t->opt, lr);
	}
	t->e.drop_rows = 0;
	return dp->loss;
}

void dp_eval(DataParallel *dp, Trainer *t, int N, const float *x,
             const int32_t *y, double *loss_sum, int64_t *correct)
{
	int lo = (int)((int64_t)N * dp->rank / dp->size);
	int hi = (int)((int64_t)N * (dp->rank + 1) / dp->size);
	if (hi > lo)
		trainer_eval(t, hi - lo, x + (size_t)lo * t->in_per, y + lo, loss_sum,
		             correct);
}

void dp_sum(DataParallel *dp, double *v, size_t n)
{
	char err[1024];
	if (comm_allreduce_sum_f64(dp->world, v, n, err, sizeof err) < 0)
		fail(dp, "a sum", err);
}

void dp_barrier(DataParallel *dp)
{
	char err[1024];
	if (comm_barrier(dp->world, err, sizeof err) < 0)
		fail(dp, "a barrier", err);
}

int dp_stop_requested(const DataParallel *dp)
{
	return dp->size == 1 ? stop_requested() : dp->stop;
}

int dp_writer(const DataParallel *dp)
{
	return dp->rank == 0;
}

void dp_check_same(DataParallel *dp, const char *what)
{
	if (dp->size == 1)
		return;
	exec_params_to_host(&dp->t->e);
	const Record *p = &dp->t->m->params;
	// FNV-1a over the tensors' bytes (not the padding between them)
	uint64_t h = 1469598103934665603ULL, h0;
	for (int t = 0; t < p->n; t++) {
		const unsigned char *b = p->t[t].data;
		for (size_t i = 0; i < p->t[t].nbytes; i++)
			h = (h ^ b[i]) * 1099511628211ULL;
	}
	h0 = h;
	char err[1024];
	if (comm_broadcast(dp->world, &h0, sizeof h0, 0, err, sizeof err) < 0)
		fail(dp, "the weights' check", err);
	double differ = h != h0;
	dp_sum(dp, &differ, 1);
	if (differ > 0)
		die("%s: the weights of %.0f of %d ranks are not rank 0's (rank %d: %s)",
		    what, differ, dp->size, dp->rank, h == h0 ? "the same" : "differ");
}
