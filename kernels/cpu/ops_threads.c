// Thread count of the fast paths, shared by OpenBLAS and parallel_for.
#include <cblas.h>
#undef I   // <complex.h> (via cblas.h) defines I; ops.h uses it as a name
#include "ops.h"
#include "ops_internal.h"

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
	g_threads = n;
	ops_blas_threads(n);
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
