// The execution state (exec.h): set up, caches, gradients, parameters on
// the device.
#include <stdlib.h>
#include <string.h>
#include "exec.h"
#include "exec_internal.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"

void exec_init(Exec *e, Model *m, const Backend *be)
{
	memset(e, 0, sizeof *e);
	e->m = m;
	e->be = be;
	e->run = xcalloc((size_t)(m->n ? m->n : 1), sizeof *e->run);
	record_init(&e->grads);
	rng_seed(&e->rng, 0, 0);
	for (int i = 0; i < m->n; i++)
		if (m->nodes[i].op == OP_CONV)
			e->run[i].cache = be->conv_cache_new();
	if (!be->host_memory) {
		e->pdev = be->alloc(m->params.used);
		be->to_device(e->pdev, m->params.buf, m->params.used);
	}
	exec_profile_init(e);
}

static void run_free_aux(const Backend *be, NodeRun *r)
{
	be->free(r->save_mean);
	be->free(r->save_invstd);
	be->free(r->argmax);
	be->free(r->mask);
	r->save_mean = r->save_invstd = NULL;
	r->argmax = NULL;
	r->mask = NULL;
	r->aux_n = 0;
}

void exec_free(Exec *e)
{
	const Backend *be = e->be;
	if (e->m)
		exec_profile_print(e);
	free(e->prof);
	for (int i = 0; e->m && i < e->m->n; i++) {
		run_free_aux(be, &e->run[i]);
		be->conv_cache_free(e->run[i].cache);
		be->free(e->run[i].fold);
	}
	free(e->run);
	be->free(e->pdev);
	be->free(e->gdev);
	be->free(e->arena);
	be->free(e->garena);
	be->free(e->gtmp);
	be->free(e->dx_in);
	free(e->gparam);
	record_free(&e->grads);
	memset(e, 0, sizeof *e);
}

float *exec_param(const Exec *e, int idx)
{
	if (idx < 0)
		return NULL;
	const Tensor *t = &e->m->params.t[idx];
	return e->pdev ? (float *)((char *)e->pdev + t->offset) : (float *)t->data;
}

float *exec_grad(const Exec *e, int gi)
{
	if (gi < 0 || gi >= e->grads.n)
		return NULL;
	const Tensor *t = &e->grads.t[gi];
	return e->gdev ? (float *)((char *)e->gdev + t->offset) : (float *)t->data;
}

// The gradient record is allocated on first use (exec_zero_grad /
// exec_backward), so inference never pays for it.
static void ensure_grads(Exec *e)
{
	const Model *m = e->m;
	if (e->grads.n || !m->ngrads)
		return;
	e->gparam = xmalloc_array((size_t)m->ngrads, sizeof(int));
	for (int i = 0; i < m->n; i++) {
		const Node *d = &m->nodes[i];
		int pi[2] = { d->w, d->b };
		for (int j = 0; j < 2; j++) {
			if (pi[j] < 0)
				continue;
			const Tensor *t = &m->params.t[pi[j]];
			e->gparam[e->grads.n] = pi[j];
			record_add(&e->grads, t->name, DT_F32, t->ndim, t->dims, NULL);
		}
	}
	if (!e->be->host_memory) {
		e->gdev = e->be->alloc(e->grads.used);
		e->be->zero(e->gdev, e->grads.used);
	}
}

void exec_zero_grad(Exec *e)
{
	ensure_grads(e);
	// Only the unfrozen groups' gradients: backward never writes the
	// others, which stay zero from their allocation (and a frozen body's
	// are most of the model: zeroing them would dominate a head's step).
	const Model *m = e->m;
	for (int i = 0; i < m->n; i++) {
		const Node *d = &m->nodes[i];
		if (d->group < m->frozen)
			continue;
		int gi[2] = { d->gw, d->gb };
		for (int j = 0; j < 2; j++)
			if (gi[j] >= 0)
				e->be->zero(exec_grad(e, gi[j]), e->grads.t[gi[j]].nbytes);
	}
}

void exec_ensure_grads(Exec *e)
{
	ensure_grads(e);
}

void exec_params_changed(Exec *e)
{
	for (int i = 0; i < e->m->n; i++) {
		e->run[i].fold_ok = 0;
		e->be->conv_cache_invalidate(e->run[i].cache);
	}
}

void exec_params_to_device(Exec *e)
{
	if (e->pdev)
		e->be->to_device(e->pdev, e->m->params.buf, e->m->params.used);
	exec_params_changed(e);
}

void exec_params_to_host(Exec *e)
{
	if (e->pdev)
		e->be->to_host(e->m->params.buf, e->pdev, e->m->params.used);
}

const Record *exec_grads(Exec *e)
{
	ensure_grads(e);
	if (e->gdev)
		e->be->to_host(e->grads.buf, e->gdev, e->grads.used);
	return &e->grads;
}
