// Part of tests/bench/train_mpi.sh: the time of one all-reduce (a sum over
// the ranks, comm_allreduce_sum) of N floats, as data-parallel train does
// after every backward; run under mpirun.  Prints, on rank 0, the median of
// REPS timed sums after two warm-ups, and the bus bandwidth that time means
// for a ring all-reduce: 2 (P-1)/P * bytes / time.
//   allreduce [N (default 21.8e6, ResNet34's gradients)] [REPS (10)]
#include <stdio.h>
#include <stdlib.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/comm.h"
#include "libcommon/util/err.h"
#include "libcommon/util/timer.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, "allreduce [N] [REPS]");
	size_t n = argc > 1 ? (size_t)parse_double("N", argv[1], 1, 1e9) : 21800000;
	int reps = argc > 2 ? (int)parse_long("REPS", argv[2], 1, 1000) : 10;
	char err[1024];
	Comm *c = comm_world(err, sizeof err);
	if (!c)
		die("%s", err);
	float *buf = xmalloc_array(n, sizeof(float));
	for (size_t i = 0; i < n; i++)
		buf[i] = (float)(i % 97) * 1e-3f;
	double *t = xmalloc_array((size_t)reps, sizeof(double));
	for (int r = -2; r < reps; r++) {
		if (comm_barrier(c, err, sizeof err) < 0)
			die("%s", err);
		double t0 = now_seconds();
		// the factor keeps the values bounded over the repetitions
		if (comm_allreduce_sum(c, buf, n, 1.0f / (float)comm_size(c), err, sizeof err) < 0)
			die("%s", err);
		if (r >= 0)
			t[r] = now_seconds() - t0;
	}
	qsort(t, (size_t)reps, sizeof *t, cmp_double);
	double med = t[reps / 2], P = comm_size(c);
	if (comm_rank(c) == 0 && P > 1)
		printf("all-reduce of %zu floats (%.1f MB) over %d ranks (%s): %.2f ms, "
		       "bus bandwidth %.2f GB/s\n", n, n * 4e-6, comm_size(c), comm_name(c),
		       med * 1e3, 2 * (P - 1) / P * (double)n * 4 / med / 1e9);
	else if (comm_rank(c) == 0)
		printf("all-reduce of %zu floats in one process: %.2f ms (the scaling alone)\n",
		       n, med * 1e3);
	free(buf);
	free(t);
	comm_close(c);
	return 0;
}
