// Thread count of the fast paths, shared by OpenBLAS and parallel_for.
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#undef I   // <complex.h> (via cblas.h) defines I; ops.h uses it as a name
#include "ops.h"
#include "ops_internal.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/util/threads.h"

static int g_threads = 1;
static int g_blas_threads = -1;   // unknown until first set

void ops_blas_threads(int n)
{
	if (n < 1)
		n = 1;
	if (n != g_blas_threads) {
		openblas_set_num_threads(n);
		g_blas_threads = n;
	}
}

void ops_set_threads(int n)
{
	if (n < 1)
		n = 1;
	if (n > 256)
		n = 256;
	// OpenBLAS's own threads are set by each caller of a threaded sgemm
	// (ops_blas_threads), not here: once started, its idle threads spin
	// (sched_yield) for a while and take CPU time from our own threads.
	g_threads = n;
}

int ops_threads(void)
{
	return g_threads;
}

int ops_threads_for(size_t n, double work)
{
	int t = g_threads;
	if ((size_t)t > n)
		t = (int)n;
	// ~1e5 flops is about the cost of starting and joining a thread.
	if ((double)n * work < 2e5)
		t = 1;
	return t < 1 ? 1 : t;
}

static int g_winograd = 1;

void ops_set_winograd(int on)
{
	g_winograd = on != 0;
}

int ops_winograd(void)
{
	return g_winograd;
}

typedef struct {
	ParallelFn fn;
	void *ctx;
	size_t n;
	atomic_size_t next;
} DynJob;

static void dyn_worker(void *ctx, size_t begin, size_t end, int thread)
{
	(void)begin;
	(void)end;
	DynJob *d = ctx;
	for (;;) {
		size_t i = atomic_fetch_add(&d->next, 1);
		if (i >= d->n)
			break;
		d->fn(d->ctx, i, i + 1, thread);
	}
}

void ops_parallel_dynamic(size_t n, int nthreads, ParallelFn fn, void *ctx)
{
	if ((size_t)nthreads > n)
		nthreads = (int)n;
	if (nthreads <= 1) {
		for (size_t i = 0; i < n; i++)
			fn(ctx, i, i + 1, 0);
		return;
	}
	DynJob d = { fn, ctx, n, 0 };
	parallel_for((size_t)nthreads, nthreads, dyn_worker, &d);
}

#define SCRATCH_SLOTS 259   // 256 threads at most, OPS_SLOT_WEIGHTS, _WORK, _BF16
struct OpsScratch {
	float *buf[SCRATCH_SLOTS];
	size_t cap[SCRATCH_SLOTS];
	int shared;
};
static OpsScratch g_scratch = { .shared = 1 };
static atomic_flag g_scratch_busy = ATOMIC_FLAG_INIT;

OpsScratch *ops_scratch_acquire(void)
{
	if (!atomic_flag_test_and_set(&g_scratch_busy))
		return &g_scratch;
	OpsScratch *p = xcalloc(1, sizeof *p);
	return p;
}

void ops_scratch_release(OpsScratch *p)
{
	if (p->shared) {
		atomic_flag_clear(&g_scratch_busy);
		return;
	}
	for (int i = 0; i < SCRATCH_SLOTS; i++)
		free(p->buf[i]);
	free(p);
}

float *ops_scratch(OpsScratch *p, int slot, size_t floats)
{
	if (slot < 0 || slot >= SCRATCH_SLOTS)
		die("ops_scratch: bad slot");
	if (floats > p->cap[slot]) {
		free(p->buf[slot]);
		if (floats > SIZE_MAX / sizeof(float) - 16)
			die("ops_scratch: size overflow");
		size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
		p->buf[slot] = aligned_alloc(64, bytes);
		if (!p->buf[slot])
			die("ops_scratch: out of memory");
		p->cap[slot] = floats;
	}
	return p->buf[slot];
}
