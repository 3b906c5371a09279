// Tests of what data-parallel training rests on: the RNG's skip-ahead
// (libcommon/util/rng_skip), a slice's dropout rows and ghost-batch batch
// norm (libcommon/engine/batch_slice) against the plain kernels' references,
// the ranks' slices of a batch (data_parallel), the single process's
// communicator (libcommon/util/comm).  The ranks themselves: tests/mpi.bats.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "kernels/backend.h"
#include "kernels/cpu/ops.h"
#include "libcommon/engine/batch_slice.h"
#include "libcommon/engine/data_parallel.h"
#include "libcommon/util/comm.h"
#include "libcommon/util/err.h"
#include "libcommon/util/rng.h"
#include "libcommon/util/rng_skip.h"

static void test_rng_skip(void)
{
	const uint64_t ns[] = { 0, 1, 2, 7, 64, 1000, 123457 };
	for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
		Rng a, b;
		rng_seed(&a, 42 + i, 2);
		b = a;
		for (uint64_t k = 0; k < ns[i]; k++)
			rng_u32(&a);
		rng_skip(&b, ns[i]);
		check_msg(a.state == b.state && a.inc == b.inc && rng_u32(&a) == rng_u32(&b),
		          "rng_skip(%llu) is not %llu draws", (unsigned long long)ns[i],
		          (unsigned long long)ns[i]);
	}
	// skips add up
	Rng a, b;
	rng_seed(&a, 9, 5);
	b = a;
	rng_skip(&a, 300);
	rng_skip(&a, 700);
	rng_skip(&b, 1000);
	CHECK(a.state == b.state);
}

// Rows [lo, lo+n) of a batch's dropout, drawn alone, are the batch's rows,
// and the stream ends where the batch's leaves it.
static void test_slice_dropout(void)
{
	const Backend *be = backend_cpu();
	enum { ROWS = 10, PER = 37 };
	float x[ROWS * PER], yw[ROWS * PER], ys[ROWS * PER];
	uint8_t mw[ROWS * PER], ms[ROWS * PER];
	for (int i = 0; i < ROWS * PER; i++)
		x[i] = (float)(i % 13) - 6.0f;
	const float ps[] = { 0.25f, 0.5f, 0.0f, 1.0f };
	for (size_t pi = 0; pi < sizeof ps / sizeof ps[0]; pi++) {
		Rng whole, part;
		rng_seed(&whole, 3, 2);
		part = whole;
		be->dropout_forward(ROWS * PER, ps[pi], &whole, x, yw, mw);
		int bad = 0;
		for (int lo = 0, n = 3; lo < ROWS; lo += n, n = n == 3 ? 4 : 3) {
			int k = lo + n > ROWS ? ROWS - lo : n;
			Rng r = part;
			slice_dropout_forward(be, (size_t)k * PER, k, ps[pi], &r, lo, ROWS,
			                      x + lo * PER, ys + lo * PER, ms + lo * PER);
			bad += r.state != whole.state;
		}
		check_msg(!bad && !memcmp(mw, ms, sizeof mw) && !memcmp(yw, ys, sizeof yw),
		          "p=%g: the slices' dropout is not the batch's", (double)ps[pi]);
	}
}

static double max_diff(const float *a, const float *b, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		m = fmax(m, fabs((double)a[i] - b[i]));
	return m;
}

// Ghost batches: each normalised as a batch of its own (the reference on
// its rows), the running statistics moved by the mean of theirs, the
// gradients of gamma and beta summed over them.
static void test_ghost_bn(void)
{
	const Backend *be = backend_cpu();
	enum { N = 11, C = 3, HW = 5, B = 4 };   // ghosts of 4, 4, 3
	const int K = 3;
	size_t nx = (size_t)N * C * HW;
	float x[N * C * HW], dy[N * C * HW], y[N * C * HW], yr[N * C * HW];
	float dx[N * C * HW], dxr[N * C * HW];
	float gamma[C] = { 1.5f, 0.5f, -1.0f }, beta[C] = { 0.1f, -0.2f, 0.3f };
	Rng r;
	rng_seed(&r, 1, 1);
	for (size_t i = 0; i < nx; i++) {
		x[i] = rng_normal(&r) * (1.0f + (float)(i % 3));
		dy[i] = rng_normal(&r);
	}
	CHECK(ghost_bn_count(N, B) == K && ghost_bn_count(N, 0) == 1 &&
	      ghost_bn_count(N, N) == 1 && ghost_bn_count(8, 4) == 2);
	float rm[C] = { 0.5f, -0.5f, 0.0f }, rv[C] = { 1.0f, 2.0f, 0.5f };
	float rm0[C], rv0[C];
	memcpy(rm0, rm, sizeof rm);
	memcpy(rv0, rv, sizeof rv);
	float sm[K * C], si[K * C];
	ghost_bn_forward(be, N, B, C, HW, x, gamma, beta, rm, rv, 0.1f, 1e-5f, sm, si, y);

	double mean_m[C] = { 0 }, mean_v[C] = { 0 };
	float srm[K * C], sri[K * C];
	for (int k = 0; k < K; k++) {
		int lo = k * B, n = k < K - 1 ? B : N - lo;
		float tm[C], tv[C];
		for (int c = 0; c < C; c++)
			tm[c] = tv[c] = 0;   // momentum 1: the batch's statistics
		batchnorm_forward_train_ref(n, C, HW, x + (size_t)lo * C * HW, gamma, beta,
		                            tm, tv, 1.0f, 1e-5f, srm + k * C, sri + k * C,
		                            yr + (size_t)lo * C * HW);
		for (int c = 0; c < C; c++) {
			mean_m[c] += tm[c] / K;
			mean_v[c] += tv[c] / K;
		}
	}
	check_msg(max_diff(y, yr, nx) < 1e-5, "ghost bn forward: %g from the reference",
	          max_diff(y, yr, nx));
	check_msg(max_diff(sm, srm, K * C) < 1e-6 && max_diff(si, sri, K * C) < 1e-4,
	          "ghost bn: the saved statistics per ghost batch");
	double bad = 0;
	for (int c = 0; c < C; c++) {
		bad = fmax(bad, fabs(rm[c] - (0.9 * rm0[c] + 0.1 * mean_m[c])));
		bad = fmax(bad, fabs(rv[c] - (0.9 * rv0[c] + 0.1 * mean_v[c])));
	}
	check_msg(bad < 1e-6, "ghost bn: running statistics %g from 0.9 r + 0.1 mean", bad);

	float dg[C] = { 0 }, db[C] = { 0 }, dgr[C] = { 0 }, dbr[C] = { 0 };
	ghost_bn_backward(be, N, B, C, HW, x, gamma, sm, si, dy, dx, dg, db);
	for (int k = 0; k < K; k++) {
		int lo = k * B, n = k < K - 1 ? B : N - lo;
		size_t o = (size_t)lo * C * HW;
		batchnorm_backward_train_ref(n, C, HW, x + o, gamma, srm + k * C, sri + k * C,
		                             dy + o, dxr + o, dgr, dbr);
	}
	check_msg(max_diff(dx, dxr, nx) < 1e-4 && max_diff(dg, dgr, C) < 1e-4 &&
	          max_diff(db, dbr, C) < 1e-4, "ghost bn backward: dx %g, dgamma %g, dbeta %g",
	          max_diff(dx, dxr, nx), max_diff(dg, dgr, C), max_diff(db, dbr, C));

	// one ghost batch is the plain kernel, bit for bit
	float y1[N * C * HW], y2[N * C * HW], a[C], b[C], c1[C], c2[C], s1[C], s2[C];
	memcpy(a, rm0, sizeof a);
	memcpy(b, rv0, sizeof b);
	ghost_bn_forward(be, N, 0, C, HW, x, gamma, beta, a, b, 0.1f, 1e-5f, c1, s1, y1);
	float a2[C], b2[C];
	memcpy(a2, rm0, sizeof a2);
	memcpy(b2, rv0, sizeof b2);
	be->batchnorm_forward_train(N, C, HW, x, gamma, beta, a2, b2, 0.1f, 1e-5f, c2, s2, y2);
	CHECK(!memcmp(y1, y2, sizeof y1) && !memcmp(a, a2, sizeof a) && !memcmp(b, b2, sizeof b));
}

// The ranks' slices: whole ghost batches, contiguous, together the batch.
static void test_slices(void)
{
	int bad = 0;
	for (int size = 1; size <= 5; size++)
		for (int B = 0; B <= 9; B += 3)
			for (int N = 1; N <= 40; N += 3) {
				int next = 0;
				for (int r = 0; r < size; r++) {
					DataParallel dp;
					memset(&dp, 0, sizeof dp);
					dp.rank = r;
					dp.size = size;
					dp.bn_batch = B;
					int lo, n;
					dp_slice(&dp, N, &lo, &n);
					int Be = ghost_bn_count(N, B) == 1 ? N : B;
					bad += lo != next || n < 0 ||
					       (n && lo % Be) || (lo + n < N && n % Be);
					next = lo + n;
				}
				bad += next != N;
			}
	check_msg(!bad, "dp_slice: %d slices that do not tile the batch", bad);
}

// Without a launcher the world is this process: sums are the buffer
// itself, scaled.
static void test_comm_none(void)
{
	unsetenv("OMPI_COMM_WORLD_SIZE");
	unsetenv("PMI_SIZE");
	unsetenv("PMIX_RANK");
	char err[256] = "";
	Comm *c = comm_world(err, sizeof err);
	check_msg(c != NULL, "comm_world: %s", err);
	if (!c)
		return;
	CHECK(comm_size(c) == 1 && comm_rank(c) == 0 && !strcmp(comm_name(c), "none"));
	CHECK(!comm_on_device(c));
	float v[3] = { 1, 2, 3 };
	CHECK(comm_allreduce_sum(c, v, 3, 0.5f, err, sizeof err) == 0);
	CHECK(v[0] == 0.5f && v[1] == 1.0f && v[2] == 1.5f);
	double d[2] = { 4, 5 };
	CHECK(comm_allreduce_sum_f64(c, d, 2, err, sizeof err) == 0 && d[0] == 4 && d[1] == 5);
	CHECK(comm_broadcast(c, v, sizeof v, 0, err, sizeof err) == 0);
	CHECK(comm_broadcast(c, v, sizeof v, 1, err, sizeof err) < 0 && strstr(err, "rank 1"));
	CHECK(comm_barrier(c, err, sizeof err) == 0);
	Comm *g = comm_device(c, err, sizeof err);
	CHECK(g == NULL && *err);
	comm_close(c);
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, "test_data_parallel");
	test_rng_skip();
	test_slice_dropout();
	test_ghost_bn();
	test_slices();
	test_comm_none();
	return check_done("test_data_parallel");
}
