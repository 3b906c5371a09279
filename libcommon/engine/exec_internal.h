// Between the files of the execution state (exec.c, forward.c, backward.c).
#ifndef CNNPIPE_EXEC_INTERNAL_H
#define CNNPIPE_EXEC_INTERNAL_H
#include "exec.h"

// Allocates the gradients (zeroed) if they do not exist yet.
void exec_ensure_grads(Exec *e);

#endif
