// Between the files of the execution state (exec.c, forward.c, backward.c).
#ifndef CNNPIPE_EXEC_INTERNAL_H
#define CNNPIPE_EXEC_INTERNAL_H
#include "exec.h"

// Allocates the gradients (zeroed) if they do not exist yet.
void exec_ensure_grads(Exec *e);

// CNNPIPE_PROFILE (exec_profile.c): per-node times, e->prof NULL when off.
void exec_profile_init(Exec *e);
double exec_profile_start(const Exec *e);
void exec_profile_add(Exec *e, int node, int backward, double t0);
void exec_profile_print(const Exec *e);

#endif
