#include <pthread.h>
#include <unistd.h>
#include "err.h"
#include "threads.h"

int num_cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (int)n;
}

typedef struct {
	ParallelFn fn;
	void *ctx;
	size_t begin, end;
	int thread;
} Slice;

static void *run_slice(void *arg)
{
	Slice *s = arg;
	s->fn(s->ctx, s->begin, s->end, s->thread);
	return NULL;
}

#define MAX_THREADS 256

void parallel_for(size_t n, int nthreads, ParallelFn fn, void *ctx)
{
	if (nthreads > MAX_THREADS)
		nthreads = MAX_THREADS;
	if ((size_t)nthreads > n)
		nthreads = (int)n;
	if (nthreads <= 1) {
		if (n)
			fn(ctx, 0, n, 0);
		return;
	}
	pthread_t tid[MAX_THREADS];
	Slice sl[MAX_THREADS];
	for (int i = 0; i < nthreads; i++) {
		sl[i] = (Slice){ fn, ctx, n * i / nthreads, n * (i + 1) / nthreads, i };
	}
	// Slice 0 runs on the calling thread.
	for (int i = 1; i < nthreads; i++)
		if (pthread_create(&tid[i], NULL, run_slice, &sl[i]) != 0)
			die("cannot start a thread");
	run_slice(&sl[0]);
	for (int i = 1; i < nthreads; i++)
		pthread_join(tid[i], NULL);
}
