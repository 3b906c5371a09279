// Shared helpers of the CPU ops (not a contract header).
#ifndef CNNPIPE_OPS_INTERNAL_H
#define CNNPIPE_OPS_INTERNAL_H
#include <stddef.h>

// OpenBLAS's thread count is one global; set it only when it changes.
// Callers that run sgemm inside our own parallel_for set it to 1 first so
// that the two kinds of threads do not multiply.
void ops_blas_threads(int n);

// Elementwise loops below this size run on one thread: starting threads
// costs more than the memory-bound work they would share.
#define OPS_PAR_MIN ((size_t)1 << 18)

// The thread count to use for n independent items of roughly `work` flops
// each: 1 when the whole job is too small to share.
int ops_threads_for(size_t n, double work);
#endif
