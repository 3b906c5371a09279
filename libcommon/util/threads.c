#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
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

static void run_threads(int nthreads, Slice *sl)
{
	pthread_t tid[MAX_THREADS];
	// Slice 0 runs on the calling thread.
	for (int i = 1; i < nthreads; i++)
		if (pthread_create(&tid[i], NULL, run_slice, &sl[i]) != 0)
			die("cannot start a thread");
	run_slice(&sl[0]);
	for (int i = 1; i < nthreads; i++)
		pthread_join(tid[i], NULL);
}

// Workers started on first use and kept: a thread's start and join cost
// about 50 us on the development machine, and a ResNet34 training step at
// batch 16 has some 400 parallel loops.  A worker waits for a new job
// (gen) spinning for a few tens of microseconds, then asleep; one caller
// at a time (a second, or a loop nested in a job, starts its own threads).
// gen is odd while a job's fields are written, as a seqlock's count.
static struct {
	pthread_mutex_t mu;
	pthread_cond_t wake, done;
	atomic_ulong gen;
	atomic_int want, left;   // the job's threads (slices), workers yet to end
	Slice *_Atomic sl;
	int started;             // workers 1 .. started
	atomic_flag busy;
	unsigned long born[MAX_THREADS];   // gen when worker i was started
} g_pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
             PTHREAD_COND_INITIALIZER, 0, 0, 0, NULL, 0, ATOMIC_FLAG_INIT, { 0 } };

#define SPINS 2000

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void *pool_worker(void *arg)
{
	const int id = (int)(intptr_t)arg;
	unsigned long seen = g_pool.born[id];   // jobs before it are not its
	for (;;) {
		unsigned long g = atomic_load(&g_pool.gen);
		for (int i = 0; (g == seen || g % 2) && i < SPINS; i++) {
			cpu_relax();
			g = atomic_load(&g_pool.gen);
		}
		if (g == seen || g % 2) {
			pthread_mutex_lock(&g_pool.mu);
			while ((g = atomic_load(&g_pool.gen)) == seen || g % 2)
				pthread_cond_wait(&g_pool.wake, &g_pool.mu);
			pthread_mutex_unlock(&g_pool.mu);
		}
		int want = atomic_load(&g_pool.want);
		Slice *sl = atomic_load(&g_pool.sl);
		// A worker outside job g may be reading while the next job is
		// written (gen odd, then the next even value): it tries again.
		if (atomic_load(&g_pool.gen) != g)
			continue;
		seen = g;
		if (id >= want)
			continue;
		run_slice(&sl[id]);
		if (atomic_fetch_sub(&g_pool.left, 1) == 1) {
			pthread_mutex_lock(&g_pool.mu);
			pthread_cond_signal(&g_pool.done);
			pthread_mutex_unlock(&g_pool.mu);
		}
	}
	return NULL;
}

static void run_pool(int nthreads, Slice *sl)
{
	while (g_pool.started < nthreads - 1) {
		pthread_t t;
		g_pool.born[g_pool.started + 1] = atomic_load(&g_pool.gen);
		if (pthread_create(&t, NULL, pool_worker, (void *)(intptr_t)(g_pool.started + 1)) != 0)
			die("cannot start a thread");
		pthread_detach(t);
		g_pool.started++;
	}
	atomic_fetch_add(&g_pool.gen, 1);   // odd: the job is being written
	atomic_store(&g_pool.sl, sl);
	atomic_store(&g_pool.want, nthreads);
	atomic_store(&g_pool.left, nthreads - 1);
	pthread_mutex_lock(&g_pool.mu);
	atomic_fetch_add(&g_pool.gen, 1);   // even: posted
	pthread_cond_broadcast(&g_pool.wake);
	pthread_mutex_unlock(&g_pool.mu);
	run_slice(&sl[0]);
	for (int i = 0; atomic_load(&g_pool.left) > 0 && i < SPINS; i++)
		cpu_relax();
	if (atomic_load(&g_pool.left) > 0) {
		pthread_mutex_lock(&g_pool.mu);
		while (atomic_load(&g_pool.left) > 0)
			pthread_cond_wait(&g_pool.done, &g_pool.mu);
		pthread_mutex_unlock(&g_pool.mu);
	}
}

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
	Slice sl[MAX_THREADS];
	for (int i = 0; i < nthreads; i++)
		sl[i] = (Slice){ fn, ctx, n * i / nthreads, n * (i + 1) / nthreads, i };
	if (atomic_flag_test_and_set(&g_pool.busy)) {
		run_threads(nthreads, sl);
		return;
	}
	run_pool(nthreads, sl);
	atomic_flag_clear(&g_pool.busy);
}
