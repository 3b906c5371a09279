// Threads: a parallel for over [0, n) in contiguous chunks.
#ifndef CNNPIPE_THREADS_H
#define CNNPIPE_THREADS_H
#include <stddef.h>

// Number of online CPUs (at least 1).
int num_cores(void);
// Calls fn(ctx, begin, end, thread_index) on nthreads contiguous slices of
// [0, n); runs inline when nthreads <= 1 or n <= 1.  Returns when all are done.
// Slice 0 runs on the caller; the others on workers kept between calls (a
// concurrent or nested call starts threads of its own).
typedef void (*ParallelFn)(void *ctx, size_t begin, size_t end, int thread);
void parallel_for(size_t n, int nthreads, ParallelFn fn, void *ctx);

#endif
