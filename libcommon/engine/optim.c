// SGD with momentum (optim.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "exec_internal.h"
#include "libcommon/util/alloc.h"
#include "optim.h"

void sgd_init(Sgd *o, Exec *e, float momentum, float wd)
{
	memset(o, 0, sizeof *o);
	o->e = e;
	o->momentum = momentum;
	o->wd = wd;
	exec_ensure_grads(e);
	record_init(&o->v);
	const Model *m = e->m;
	o->vof = xmalloc_array((size_t)e->grads.n + 1, sizeof(int));
	for (int i = 0; i < e->grads.n; i++)
		o->vof[i] = -1;
	for (int i = 0; i < m->n; i++) {
		const Node *d = &m->nodes[i];
		int gi[2] = { d->gw, d->gb };
		for (int j = 0; j < 2; j++) {
			if (gi[j] < 0 || d->group < m->frozen)
				continue;
			const Tensor *t = &e->grads.t[gi[j]];
			o->vof[gi[j]] = o->v.n;
			record_add(&o->v, t->name, DT_F32, t->ndim, t->dims, NULL);
		}
	}
	if (!e->be->host_memory) {
		o->vdev = e->be->alloc(o->v.used);
		e->be->zero(o->vdev, o->v.used);
	}
}

void sgd_free(Sgd *o)
{
	if (o->e)
		o->e->be->free(o->vdev);
	record_free(&o->v);
	free(o->vof);
	memset(o, 0, sizeof *o);
}

static float *vbuf(const Sgd *o, int gi)
{
	const Tensor *t = &o->v.t[o->vof[gi]];
	return o->vdev ? (float *)((char *)o->vdev + t->offset) : (float *)t->data;
}

void sgd_step(Sgd *o, const double *lr)
{
	Exec *e = o->e;
	const Model *m = e->m;
	for (int i = 0; i < m->n; i++) {
		const Node *d = &m->nodes[i];
		if (d->group < m->frozen || d->group >= OPTIM_MAX_GROUPS)
			continue;
		int pi[2] = { d->w, d->b }, gi[2] = { d->gw, d->gb };
		for (int j = 0; j < 2; j++) {
			if (gi[j] < 0 || o->vof[gi[j]] < 0)
				continue;
			size_t n = (size_t)tensor_numel(&m->params.t[pi[j]]);
			e->be->sgd_momentum_update(n, (float)lr[d->group], o->momentum,
			                           o->wd, exec_param(e, pi[j]),
			                           exec_grad(e, gi[j]), vbuf(o, gi[j]));
		}
	}
	exec_params_changed(e);
}

const Record *sgd_state(Sgd *o)
{
	if (o->vdev)
		o->e->be->to_host(o->v.buf, o->vdev, o->v.used);
	return &o->v;
}

int sgd_restore(Sgd *o, const Record *v, char *err, size_t errlen)
{
	if (v->n != o->v.n) {
		snprintf(err, errlen, "%d momentum buffers, the model has %d", v->n, o->v.n);
		return -1;
	}
	for (int i = 0; i < v->n; i++) {
		const Tensor *a = &v->t[i], *b = &o->v.t[i];
		if (strcmp(a->name, b->name) || a->dtype != DT_F32 || a->nbytes != b->nbytes) {
			snprintf(err, errlen, "momentum buffer %s does not fit the model's %s",
			         a->name, b->name);
			return -1;
		}
		memcpy(b->data, a->data, b->nbytes);
	}
	if (o->vdev)
		o->e->be->to_device(o->vdev, o->v.buf, o->v.used);
	return 0;
}
