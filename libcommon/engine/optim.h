// SGD with momentum over the learnable tensors of an execution state, one
// learning rate per layer group (fast.ai 0.7 layer_optimizer.py: one
// parameter group per layer group; torch.optim.SGD's update, the backend's
// sgd_momentum_update).  The momentum buffers start at zero (a new fit
// makes a new optimiser in fast.ai) and are named as the tensors they
// follow, so a checkpoint saves them as a Record.
#ifndef CNNPIPE_OPTIM_H
#define CNNPIPE_OPTIM_H
#include "exec.h"

#define OPTIM_MAX_GROUPS 16

typedef struct {
	Exec *e;
	float momentum, wd;
	Record v;            // momentum buffers (host view), one per learnable
	                     // tensor of the unfrozen groups
	int *vof;            // gradient index -> buffer in v, -1 (frozen)
	float *vdev;         // on a device backend
} Sgd;

// For the groups unfrozen now (m->frozen): a fit freezes nothing midway.
void sgd_init(Sgd *o, Exec *e, float momentum, float wd);
void sgd_free(Sgd *o);
// One step: every tensor of an unfrozen group g moves with lr[g]; then the
// execution state is told the weights changed.
void sgd_step(Sgd *o, const double *lr);
// The momentum buffers as a host Record (copied from the device when needed).
const Record *sgd_state(Sgd *o);
// Restores buffers saved by sgd_state; -1 with err when they do not fit.
int sgd_restore(Sgd *o, const Record *v, char *err, size_t errlen);

#endif
