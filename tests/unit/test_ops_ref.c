// Every CPU op's fast path against its plain-loop reference (_ref, the
// specification in kernels/cpu/ops.h), forward and backward, on random
// inputs of several shapes: odd sizes, N = 1, C = 1, windows past the
// border, in place where ops.h allows it, NaNs where the op documents them,
// 1 and 2 threads.  (conv2d and linear: test_ops.c.)
//
// Tolerances, by what the two implementations do:
//   bit for bit (memcmp): relu, leaky, add, maxpool (y, argmax, dx),
//     shortcut, dropout (y, mask, the Rng state after), sgd, concat pool's
//     max and backward, global avgpool backward, nll backward;
//   TOL = 1e-5 relative to the scale (max |want|) for the reductions and
//     rescalings (batch norm, avgpool, means, log-softmax, NLL loss): the
//     references sum in double, the fast paths partly in float, which
//     differ by a few 1e-7 of the scale here, while an indexing slip or a
//     wrong divisor gives errors of order 1;
//   FOLD_TOL = 1e-6 for conv_fold_batchnorm (both in double, one rounding).
// The checks can fail: at the end, deliberately perturbed outputs (one ulp,
// one value off by 2*TOL, a NaN, one argmax) must each be caught.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "kernels/cpu/ops.h"
#include "libcommon/util/rng.h"

#define TOL 1e-5
#define FOLD_TOL 1e-6

static double worst;   // the largest error/scale of a passing check at TOL

// ---- helpers ---------------------------------------------------------------

static void *xalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

static float *randv(Rng *r, size_t n)
{
	float *v = xalloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		v[i] = rng_normal(r);
	return v;
}

static float *copyv(const float *v, size_t n)
{
	float *c = xalloc(n * sizeof(float));
	memcpy(c, v, n * sizeof(float));
	return c;
}

// Bit for bit (n bytes); what == NULL: silent (the perturbation checks).
static int same(const char *what, const void *got, const void *want, size_t n)
{
	const unsigned char *a = got, *b = want;
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i]) {
			if (what)
				fprintf(stderr, "FAIL %s: differs at byte %zu\n", what, i);
			return 0;
		}
	return 1;
}

// max |got - want| <= tol * max |want| (all exact when want is all zeros),
// NaN where want is NaN and only there.
static int close_to(const char *what, const float *got, const float *want,
                    size_t n, double tol)
{
	double maxd = 0, scale = 0;
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		if (isnan(got[i]) || isnan(want[i])) {
			if (isnan(got[i]) != isnan(want[i])) {
				if (what)
					fprintf(stderr, "FAIL %s: NaN mismatch at %zu (got %g want %g)\n",
					        what, i, got[i], want[i]);
				return 0;
			}
			continue;
		}
		if (isinf(want[i]) && got[i] == want[i])
			continue;   // the same infinity (a mean over an infinite value)
		double d = fabs((double)got[i] - want[i]);
		if (!(d <= maxd)) {   // also catches an infinite difference
			maxd = d;
			at = i;
		}
		if (fabs(want[i]) > scale)
			scale = fabs(want[i]);
	}
	if (!(maxd <= tol * scale)) {
		if (what)
			fprintf(stderr, "FAIL %s: max err %.3g at %zu (got %.9g want %.9g), scale %.3g\n",
			        what, maxd, at, got[at], want[at], scale);
		return 0;
	}
	if (what && tol == TOL && scale > 0 && maxd / scale > worst)
		worst = maxd / scale;
	return 1;
}

static char label[200];
#define L(...) (snprintf(label, sizeof label, __VA_ARGS__), label)

// ---- batch norm ------------------------------------------------------------

// x: per channel mean ~ N(0, 1), spread 0.5 .. 1.5: like activations
static float *bn_input(Rng *r, int N, int C, int HW)
{
	float *x = randv(r, (size_t)N * C * HW);
	for (int c = 0; c < C; c++) {
		float mu = rng_normal(r), sd = 0.5f + rng_uniform(r);
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++)
				x[((size_t)n * C + c) * HW + i] = mu + sd * x[((size_t)n * C + c) * HW + i];
	}
	return x;
}

static void bn_case(Rng *r, int N, int C, int HW, int affine)
{
	const size_t nx = (size_t)N * C * HW;
	const float eps = 1e-5f, mom = 0.1f;
	const char *tag = affine ? "" : " no affine";
	float *x = bn_input(r, N, C, HW), *dy = randv(r, nx);
	float *gamma = affine ? randv(r, C) : NULL, *beta = affine ? randv(r, C) : NULL;
	float *rm0 = randv(r, C), *rv0 = randv(r, C);
	for (int c = 0; c < C; c++)
		rv0[c] = 0.2f + rv0[c] * rv0[c];
	// training forward
	float *rm1 = copyv(rm0, C), *rv1 = copyv(rv0, C), *rm2 = copyv(rm0, C), *rv2 = copyv(rv0, C);
	float *sm1 = randv(r, C), *si1 = randv(r, C), *sm2 = randv(r, C), *si2 = randv(r, C);
	float *y1 = randv(r, nx), *y2 = randv(r, nx);
	batchnorm_forward_train(N, C, HW, x, gamma, beta, rm1, rv1, mom, eps, sm1, si1, y1);
	batchnorm_forward_train_ref(N, C, HW, x, gamma, beta, rm2, rv2, mom, eps, sm2, si2, y2);
	char what[100];
	snprintf(what, sizeof what, "bn N%d C%d HW%d%s t%d", N, C, HW, tag, ops_threads());
	// N*HW = 1: var 0, invstd 1/sqrt(eps) = 316 and y = beta: the fast
	// path's x*scale + shift cancels 316*|x| down to |beta|
	double ytol = (size_t)N * HW == 1 ? 1e-3 : TOL;
	CHECK(close_to(L("%s train y", what), y1, y2, nx, ytol));
	CHECK(close_to(L("%s train save_mean", what), sm1, sm2, C, TOL));
	CHECK(close_to(L("%s train save_invstd", what), si1, si2, C, TOL));
	CHECK(close_to(L("%s train running_mean", what), rm1, rm2, C, TOL));
	CHECK(close_to(L("%s train running_var", what), rv1, rv2, C, TOL));
	// in place (y = x), without the optional outputs
	float *z = copyv(x, nx), *z2 = copyv(x, nx);
	batchnorm_forward_train(N, C, HW, z, gamma, beta, NULL, NULL, mom, eps, NULL, NULL, z);
	batchnorm_forward_train_ref(N, C, HW, z2, gamma, beta, NULL, NULL, mom, eps, NULL, NULL, z2);
	CHECK(same(L("%s train in place = out of place", what), z, y1, nx * 4));
	CHECK(same(L("%s train ref in place = out of place", what), z2, y2, nx * 4));
	// training backward, from the same saved statistics; the parameter
	// gradients accumulate onto non-zero values
	float *dg0 = randv(r, C), *db0 = randv(r, C);
	float *dx1 = randv(r, nx), *dx2 = randv(r, nx);
	float *dg1 = copyv(dg0, C), *db1 = copyv(db0, C), *dg2 = copyv(dg0, C), *db2 = copyv(db0, C);
	batchnorm_backward_train(N, C, HW, x, gamma, sm1, si1, dy, dx1, dg1, db1);
	batchnorm_backward_train_ref(N, C, HW, x, gamma, sm1, si1, dy, dx2, dg2, db2);
	CHECK(close_to(L("%s train dx", what), dx1, dx2, nx, TOL));
	CHECK(close_to(L("%s train dgamma", what), dg1, dg2, C, TOL));
	CHECK(close_to(L("%s train dbeta", what), db1, db2, C, TOL));
	float *dg3 = copyv(dg0, C);
	batchnorm_backward_train(N, C, HW, x, gamma, sm1, si1, dy, NULL, dg3, NULL);
	CHECK(close_to(L("%s train dgamma only", what), dg3, dg2, C, TOL));
	// the ReLU / leaky ReLU backward fused in = the activation's backward,
	// then the batch norm's; in place (dx = dy) as the engine runs it
	for (int a = 0; a < 2; a++) {
		const float slope = a ? 0.1f : 0.0f;
		float *g = xalloc(nx * 4), *dxa = copyv(dy, nx);
		if (a)
			leaky_relu_backward(nx, slope, y1, dy, g);
		else
			relu_backward(nx, y1, dy, g);
		memcpy(dg1, dg0, C * 4); memcpy(db1, db0, C * 4);
		memcpy(dg2, dg0, C * 4); memcpy(db2, db0, C * 4);
		float *dg4 = copyv(dg0, C), *db4 = copyv(db0, C);
		batchnorm_backward_train(N, C, HW, x, gamma, sm1, si1, g, dx2, dg2, db2);
		batchnorm_backward_train_act_ref(N, C, HW, x, gamma, sm1, si1, y1, slope,
		                                 dy, dx1, dg4, db4);
		CHECK(close_to(L("%s train act%d ref dx", what, a), dx1, dx2, nx, TOL));
		CHECK(close_to(L("%s train act%d ref dgamma", what, a), dg4, dg2, C, TOL));
		batchnorm_backward_train_act(N, C, HW, x, gamma, sm1, si1, y1, slope,
		                             dxa, dxa, dg1, db1);
		CHECK(close_to(L("%s train act%d dx", what, a), dxa, dx2, nx, TOL));
		CHECK(close_to(L("%s train act%d dgamma", what, a), dg1, dg2, C, TOL));
		CHECK(close_to(L("%s train act%d dbeta", what, a), db1, db2, C, TOL));
		free(g); free(dxa); free(dg4); free(db4);
	}
	// eval forward and backward with the running statistics
	batchnorm_forward_eval(N, C, HW, x, gamma, beta, rm0, rv0, eps, y1);
	batchnorm_forward_eval_ref(N, C, HW, x, gamma, beta, rm0, rv0, eps, y2);
	CHECK(close_to(L("%s eval y", what), y1, y2, nx, TOL));
	memcpy(z, x, nx * 4);
	batchnorm_forward_eval(N, C, HW, z, gamma, beta, rm0, rv0, eps, z);
	CHECK(same(L("%s eval in place = out of place", what), z, y1, nx * 4));
	memcpy(dg1, dg0, C * 4); memcpy(db1, db0, C * 4);
	memcpy(dg2, dg0, C * 4); memcpy(db2, db0, C * 4);
	batchnorm_backward_eval(N, C, HW, x, gamma, rm0, rv0, eps, dy, dx1, dg1, db1);
	batchnorm_backward_eval_ref(N, C, HW, x, gamma, rm0, rv0, eps, dy, dx2, dg2, db2);
	CHECK(close_to(L("%s eval dx", what), dx1, dx2, nx, TOL));
	CHECK(close_to(L("%s eval dgamma", what), dg1, dg2, C, TOL));
	CHECK(close_to(L("%s eval dbeta", what), db1, db2, C, TOL));
	free(x); free(dy); free(gamma); free(beta); free(rm0); free(rv0);
	free(rm1); free(rv1); free(rm2); free(rv2); free(sm1); free(si1);
	free(sm2); free(si2); free(y1); free(y2); free(z); free(z2); free(dg0);
	free(db0); free(dx1); free(dx2); free(dg1); free(db1); free(dg2);
	free(db2); free(dg3);
}

// The reference itself on a case worked by hand: per channel c the values
// 2c + {0, 1, 0, 1, ...}: mean 2c + 0.5, biased var 0.25, unbiased 0.25*8/7.
static void bn_ref_by_hand(void)
{
	float x[2 * 3 * 4], rm[3] = { 0, 0, 0 }, rv[3] = { 1, 1, 1 }, sm[3], si[3], y[24];
	for (int i = 0; i < 24; i++)
		x[i] = (float)((i / 4) % 3) * 2.0f + (float)(i % 2);
	batchnorm_forward_train_ref(2, 3, 4, x, NULL, NULL, rm, rv, 0.1f, 1e-5f, sm, si, y);
	int ok = 1;
	for (int c = 0; c < 3; c++) {
		ok &= fabs(rm[c] - 0.1 * (2 * c + 0.5)) < 1e-6;
		ok &= fabs(rv[c] - (0.9 + 0.1 * 0.25 * 8 / 7)) < 1e-6;
		ok &= fabs(si[c] - 1 / sqrt(0.25 + 1e-5)) < 1e-4;
	}
	for (int i = 0; i < 24; i++)   // +-0.5 / sqrt(0.25 + eps)
		ok &= fabs(y[i] - (i % 2 ? 1 : -1) * 0.5 / sqrt(0.25 + 1e-5)) < 1e-6;
	CHECK(ok);
}

static void batchnorm_tests(Rng *r)
{
	bn_ref_by_hand();
	for (int t = 1; t <= 2; t++) {
		ops_set_threads(t);
		bn_case(r, 4, 3, 25, 1);
		bn_case(r, 1, 5, 49, 1);     // N = 1
		bn_case(r, 7, 1, 9, 1);      // C = 1
		bn_case(r, 16, 6, 1, 1);     // 1d on (N, C)
		bn_case(r, 3, 2, 1, 0);      // 1d, affine=False
		bn_case(r, 1, 4, 1, 1);      // N*HW = 1
		bn_case(r, 5, 77, 1, 1);     // 1d: channels across lanes, and tails
		bn_case(r, 3, 130, 1, 0);    // 1d: three channel blocks
		bn_case(r, 64, 512, 1, 1);   // 1d: the head's shape, 2 threads
		bn_case(r, 2, 3, 13, 0);
		bn_case(r, 8, 16, 400, 1);   // enough work for 2 threads
	}
	ops_set_threads(1);
}

// ---- pooling ---------------------------------------------------------------

// ties, signed zeros and NaNs among normal values
static void spice(Rng *r, float *x, size_t n)
{
	for (size_t e = 0; e < n; e++) {
		uint32_t u = rng_u32(r) % 100;
		if (u < 20)
			x[e] = (float)(int)(x[e] * 2);
		else if (u < 25)
			x[e] = (u & 1) ? 0.0f : -0.0f;
		else if (u == 25)
			x[e] = NAN;
		else if (u == 26)
			x[e] = -NAN;
		else if (u == 27)
			x[e] = (rng_u32(r) & 1) ? INFINITY : -INFINITY;
	}
}

static void pool_case(Rng *r, int N, int C, int H, int W, int k, int st, int pad,
                      int P, int Q)
{
	PoolShape s = pool_shape(N, C, H, W, k, st, pad);
	if (P) {   // the caller's output size (darknet's rule): windows past x
		s.P = P;
		s.Q = Q;
	}
	const size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * s.P * s.Q;
	char what[120];
	snprintf(what, sizeof what, "pool N%d C%d %dx%d k%d s%d p%d -> %dx%d t%d",
	         N, C, H, W, k, st, pad, s.P, s.Q, ops_threads());
	float *x = randv(r, nx), *dy = randv(r, ny);
	spice(r, x, nx);
	float *y1 = randv(r, ny), *y2 = randv(r, ny), *y3 = randv(r, ny);
	int32_t *a1 = xalloc(ny * 4), *a2 = xalloc(ny * 4);
	maxpool2d_forward(&s, x, y1, a1);
	maxpool2d_forward_ref(&s, x, y2, a2);
	maxpool2d_forward(&s, x, y3, NULL);   // the vectorised eval path
	CHECK(same(L("%s max y", what), y1, y2, ny * 4));
	CHECK(same(L("%s max argmax", what), a1, a2, ny * 4));
	CHECK(same(L("%s max y without argmax", what), y3, y2, ny * 4));
	float *dx1 = randv(r, nx), *dx2 = randv(r, nx);
	maxpool2d_backward(&s, a1, dy, dx1);
	maxpool2d_backward_ref(&s, a1, dy, dx2);
	CHECK(same(L("%s max dx", what), dx1, dx2, nx * 4));
	// average: finite inputs
	for (size_t i = 0; i < nx; i++)
		if (!isfinite(x[i]))
			x[i] = 1.5f;
	avgpool2d_forward(&s, x, y1);
	avgpool2d_forward_ref(&s, x, y2);
	CHECK(close_to(L("%s avg y", what), y1, y2, ny, TOL));
	avgpool2d_backward(&s, dy, dx1);
	avgpool2d_backward_ref(&s, dy, dx2);
	CHECK(close_to(L("%s avg dx", what), dx1, dx2, nx, TOL));
	free(x); free(dy); free(y1); free(y2); free(y3); free(a1); free(a2);
	free(dx1); free(dx2);
}

static void concat_global_case(Rng *r, int N, int C, int HW)
{
	const size_t nx = (size_t)N * C * HW, nc = (size_t)N * C;
	char what[80];
	snprintf(what, sizeof what, "N%d C%d HW%d", N, C, HW);
	float *x = randv(r, nx), *dy = randv(r, 2 * nc);
	spice(r, x, nx);
	float *y1 = randv(r, 2 * nc), *y2 = randv(r, 2 * nc);
	int32_t *a1 = xalloc(nc * 4), *a2 = xalloc(nc * 4);
	concat_pool_forward(N, C, HW, x, y1, a1);
	concat_pool_forward_ref(N, C, HW, x, y2, a2);
	int maxok = 1, meanok = 1;
	for (int n = 0; n < N; n++) {   // y[n] = (max: C, mean: C)
		maxok &= same(NULL, y1 + (size_t)n * 2 * C, y2 + (size_t)n * 2 * C, (size_t)C * 4);
		meanok &= close_to(L("concat pool %s mean", what), y1 + (size_t)n * 2 * C + C,
		                   y2 + (size_t)n * 2 * C + C, C, TOL);
	}
	CHECK(maxok);
	CHECK(meanok);
	CHECK(same(L("concat pool %s argmax", what), a1, a2, nc * 4));
	float *dx1 = randv(r, nx), *dx2 = randv(r, nx);
	concat_pool_backward(N, C, HW, a1, dy, dx1);
	concat_pool_backward_ref(N, C, HW, a1, dy, dx2);
	CHECK(same(L("concat pool %s dx", what), dx1, dx2, nx * 4));
	// global average: finite inputs
	for (size_t i = 0; i < nx; i++)
		if (!isfinite(x[i]))
			x[i] = -2.5f;
	global_avgpool_forward(N, C, HW, x, y1);
	global_avgpool_forward_ref(N, C, HW, x, y2);
	CHECK(close_to(L("global avgpool %s y", what), y1, y2, nc, TOL));
	global_avgpool_backward(N, C, HW, dy, dx1);
	global_avgpool_backward_ref(N, C, HW, dy, dx2);
	CHECK(same(L("global avgpool %s dx", what), dx1, dx2, nx * 4));
	free(x); free(dy); free(y1); free(y2); free(a1); free(a2); free(dx1); free(dx2);
}

static void pool_tests(Rng *r)
{
	for (int t = 1; t <= 2; t++) {
		ops_set_threads(t);
		pool_case(r, 2, 3, 9, 11, 3, 2, 1, 0, 0);    // ResNet's stem pool, odd
		pool_case(r, 1, 1, 7, 7, 2, 2, 0, 0, 0);     // N = 1, C = 1
		pool_case(r, 3, 2, 8, 8, 3, 1, 1, 0, 0);
		pool_case(r, 2, 2, 7, 7, 2, 2, 0, 4, 4);     // darknet: windows past x
		pool_case(r, 1, 2, 5, 6, 3, 3, 2, 3, 3);     // windows wholly in the padding
		pool_case(r, 2, 2, 6, 5, 5, 1, 2, 0, 0);     // window as big as x
		pool_case(r, 2, 2, 11, 70, 3, 2, 1, 0, 0);   // vector columns, stride 2
		pool_case(r, 1, 3, 13, 40, 3, 1, 1, 0, 0);   // vector columns, stride 1
		pool_case(r, 4, 16, 40, 40, 3, 2, 1, 0, 0);  // enough work for 2 threads
	}
	ops_set_threads(1);
	concat_global_case(r, 3, 5, 49);
	concat_global_case(r, 1, 1, 1);
	concat_global_case(r, 2, 4, 7);
	concat_global_case(r, 4, 64, 9);
}

// ---- elementwise -----------------------------------------------------------

static void elementwise_case(Rng *r, size_t n)
{
	char what[80];
	snprintf(what, sizeof what, "n %zu t%d", n, ops_threads());
	float *x = randv(r, n), *b = randv(r, n), *dy = randv(r, n);
	spice(r, x, n);
	float *y1 = randv(r, n), *y2 = randv(r, n), *z = randv(r, n);
	relu_forward(n, x, y1);
	relu_forward_ref(n, x, y2);
	CHECK(same(L("relu %s y", what), y1, y2, n * 4));
	memcpy(z, x, n * 4);
	relu_forward(n, z, z);
	CHECK(same(L("relu %s in place", what), z, y2, n * 4));
	float *dx1 = randv(r, n), *dx2 = randv(r, n);
	relu_backward(n, y2, dy, dx1);
	relu_backward_ref(n, y2, dy, dx2);
	CHECK(same(L("relu %s dx", what), dx1, dx2, n * 4));
	memcpy(z, dy, n * 4);
	relu_backward(n, y2, z, z);
	CHECK(same(L("relu %s dx in place", what), z, dx2, n * 4));
	const float slopes[] = { 0.1f, 0.01f };
	for (int k = 0; k < 2; k++) {
		float sl = slopes[k];
		leaky_relu_forward(n, sl, x, y1);
		leaky_relu_forward_ref(n, sl, x, y2);
		CHECK(same(L("leaky %g %s y", sl, what), y1, y2, n * 4));
		memcpy(z, x, n * 4);
		leaky_relu_forward(n, sl, z, z);
		CHECK(same(L("leaky %g %s in place", sl, what), z, y2, n * 4));
		leaky_relu_backward(n, sl, x, dy, dx1);
		leaky_relu_backward_ref(n, sl, x, dy, dx2);
		CHECK(same(L("leaky %g %s dx", sl, what), dx1, dx2, n * 4));
		memcpy(z, dy, n * 4);
		leaky_relu_backward(n, sl, x, z, z);
		CHECK(same(L("leaky %g %s dx in place", sl, what), z, dx2, n * 4));
	}
	add_forward(n, x, b, y1);
	add_forward_ref(n, x, b, y2);
	CHECK(same(L("add %s", what), y1, y2, n * 4));
	memcpy(z, x, n * 4);
	add_forward(n, z, b, z);   // y = a
	CHECK(same(L("add %s y = a", what), z, y2, n * 4));
	memcpy(z, b, n * 4);
	add_forward(n, x, z, z);   // y = b
	CHECK(same(L("add %s y = b", what), z, y2, n * 4));
	free(x); free(b); free(dy); free(y1); free(y2); free(z); free(dx1); free(dx2);
}

static void elementwise_tests(Rng *r)
{
	const size_t ns[] = { 1, 15, 16, 17, 33, 1000 };
	for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
		elementwise_case(r, ns[i]);
	ops_set_threads(2);
	elementwise_case(r, 300007);   // > OPS_PAR_MIN: threads
	ops_set_threads(1);
}

// ---- darknet shortcut --------------------------------------------------------

static void shortcut_case(Rng *r, int N, int C, int H, int W, int Ca, int Ha, int Wa)
{
	ShortcutShape s = { N, C, H, W, Ca, Ha, Wa };
	const size_t ny = (size_t)N * C * H * W, na = (size_t)N * Ca * Ha * Wa;
	char what[100];
	snprintf(what, sizeof what, "shortcut N%d %dx%dx%d + %dx%dx%d", N, C, H, W, Ca, Ha, Wa);
	float *x = randv(r, ny), *a = randv(r, na), *dy = randv(r, ny);
	float *y1 = randv(r, ny), *y2 = randv(r, ny);
	shortcut_forward(&s, x, a, y1);
	shortcut_forward_ref(&s, x, a, y2);
	CHECK(same(L("%s y", what), y1, y2, ny * 4));
	float *z = copyv(x, ny);
	shortcut_forward(&s, z, a, z);
	CHECK(same(L("%s in place", what), z, y2, ny * 4));
	float *dx1 = randv(r, ny), *dx2 = randv(r, ny), *da1 = randv(r, na), *da2 = randv(r, na);
	shortcut_backward(&s, dy, dx1, da1);
	shortcut_backward_ref(&s, dy, dx2, da2);
	CHECK(same(L("%s dx", what), dx1, dx2, ny * 4));
	CHECK(same(L("%s da", what), da1, da2, na * 4));
	float *da3 = randv(r, na);
	shortcut_backward(&s, dy, NULL, da3);
	CHECK(same(L("%s da only", what), da3, da2, na * 4));
	memcpy(z, dy, ny * 4);
	shortcut_backward(&s, z, z, NULL);
	CHECK(same(L("%s dx in place", what), z, dx2, ny * 4));
	free(x); free(a); free(dy); free(y1); free(y2); free(z); free(dx1);
	free(dx2); free(da1); free(da2); free(da3);
}

static void shortcut_tests(Rng *r)
{
	shortcut_case(r, 2, 3, 4, 5, 3, 4, 5);     // equal shapes: y = x + a
	shortcut_case(r, 1, 4, 4, 4, 2, 8, 8);     // a larger: stride 2, fewer channels
	shortcut_case(r, 2, 2, 6, 6, 5, 3, 3);     // a smaller: sample 2, more channels
	shortcut_case(r, 1, 1, 3, 3, 1, 9, 9);     // C = 1, stride 3
	shortcut_case(r, 3, 5, 7, 7, 5, 7, 7);
}

// ---- dropout -----------------------------------------------------------------

static void dropout_case(size_t n, float p)
{
	Rng r1, r2, rx;
	rng_seed(&rx, 1000 + n, 5);
	float *x = randv(&rx, n), *dy = randv(&rx, n);
	float *y1 = randv(&rx, n), *y2 = randv(&rx, n), *z = randv(&rx, n);
	uint8_t *m1 = xalloc(n), *m2 = xalloc(n);
	memset(m1, 7, n);
	memset(m2, 9, n);
	char what[80];
	snprintf(what, sizeof what, "dropout n %zu p %g", n, p);
	rng_seed(&r1, 77, 3);
	rng_seed(&r2, 77, 3);
	dropout_forward(n, p, &r1, x, y1, m1);
	dropout_forward_ref(n, p, &r2, x, y2, m2);
	CHECK(same(L("%s y", what), y1, y2, n * 4));
	CHECK(same(L("%s mask", what), m1, m2, n));
	CHECK(same(L("%s rng state", what), &r1, &r2, sizeof r1));
	// no mask, in place: the same values and draws
	memcpy(z, x, n * 4);
	rng_seed(&r1, 77, 3);
	dropout_forward(n, p, &r1, z, z, NULL);
	CHECK(same(L("%s in place, no mask", what), z, y2, n * 4));
	CHECK(same(L("%s rng state, no mask", what), &r1, &r2, sizeof r1));
	float *dx1 = randv(&rx, n), *dx2 = randv(&rx, n);
	dropout_backward(n, p, m2, dy, dx1);
	dropout_backward_ref(n, p, m2, dy, dx2);
	CHECK(same(L("%s dx", what), dx1, dx2, n * 4));
	memcpy(z, dy, n * 4);
	dropout_backward(n, p, m2, z, z);
	CHECK(same(L("%s dx in place", what), z, dx2, n * 4));
	// the reference's mask keeps about 1 - p (n = 100003: sd <= 0.0016)
	if (n > 50000) {
		size_t kept = 0;
		for (size_t i = 0; i < n; i++)
			kept += m2[i];
		double want = p <= 0 ? 1 : p >= 1 ? 0 : 1 - p;
		CHECK(fabs((double)kept / n - want) < 0.01);
	}
	free(x); free(dy); free(y1); free(y2); free(z); free(m1); free(m2);
	free(dx1); free(dx2);
}

static void dropout_tests(void)
{
	const size_t ns[] = { 1, 17, 1000, 100003 };
	const float ps[] = { 0.0f, 0.1f, 0.5f, 0.8f, 1.0f, -0.25f, 1.5f };
	for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
		for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++)
			dropout_case(ns[i], ps[k]);
}

// ---- log-softmax and NLL -------------------------------------------------------

static void softmax_case(Rng *r, int N, int K, float spread, float shift, int with_nan)
{
	const size_t n = (size_t)N * K;
	char what[80];
	snprintf(what, sizeof what, "log_softmax N%d K%d x%g%+g%s", N, K, spread, shift,
	         with_nan ? " NaN" : "");
	float *x = randv(r, n), *dy = randv(r, n);
	for (size_t i = 0; i < n; i++)
		x[i] = x[i] * spread + shift;
	if (with_nan)
		x[n / 2] = NAN;   // its row all NaN, the others untouched
	float *y1 = randv(r, n), *y2 = randv(r, n), *dx1 = randv(r, n), *dx2 = randv(r, n);
	log_softmax_forward(N, K, x, y1);
	log_softmax_forward_ref(N, K, x, y2);
	CHECK(close_to(L("%s y", what), y1, y2, n, TOL));
	log_softmax_backward(N, K, y2, dy, dx1);
	log_softmax_backward_ref(N, K, y2, dy, dx2);
	CHECK(close_to(L("%s dx", what), dx1, dx2, n, TOL));
	free(x); free(dy); free(y1); free(y2); free(dx1); free(dx2);
}

static void nll_case(Rng *r, int N, int K)
{
	const size_t n = (size_t)N * K;
	float *x = randv(r, n), *lp = randv(r, n);
	int32_t *t = xalloc((size_t)(N ? N : 1) * 4);
	log_softmax_forward_ref(N, K, x, lp);
	for (int i = 0; i < N; i++)
		t[i] = (int32_t)rng_below(r, (uint32_t)K);
	float l1 = nll_loss_forward(N, K, lp, t), l2 = nll_loss_forward_ref(N, K, lp, t);
	if (N == 0)
		CHECK(isnan(l1) && isnan(l2));
	else
		CHECK(close_to(L("nll N%d K%d loss", N, K), &l1, &l2, 1, TOL));
	float *d1 = randv(r, n), *d2 = randv(r, n);
	nll_loss_backward(N, K, t, 0.7f, d1);
	nll_loss_backward_ref(N, K, t, 0.7f, d2);
	CHECK(same(L("nll N%d K%d dlogp", N, K), d1, d2, n * 4));
	free(x); free(lp); free(t); free(d1); free(d2);
}

static void nll_bad_target(void *ref)
{
	float lp[6] = { 0 };
	int32_t t[2] = { 1, 3 };   // 3 is outside [0, 3)
	(ref ? nll_loss_forward_ref : nll_loss_forward)(2, 3, lp, t);
}

static void softmax_nll_tests(Rng *r)
{
	softmax_case(r, 1, 1, 1, 0, 0);       // K = 1: y = 0
	softmax_case(r, 3, 10, 3, 0, 0);
	softmax_case(r, 5, 37, 2, 40, 0);     // shifted: the max keeps exp finite
	softmax_case(r, 2, 1000, 1, -20, 0);
	softmax_case(r, 4, 9, 1, 0, 1);       // a NaN poisons its row only
	nll_case(r, 1, 1);
	nll_case(r, 4, 10);
	nll_case(r, 33, 7);
	nll_case(r, 0, 5);                    // empty batch: NaN, as PyTorch
	CHECK(check_dies(nll_bad_target, NULL, 1, "target 3 outside [0, 3)"));
	CHECK(check_dies(nll_bad_target, "ref", 1, "target 3 outside [0, 3)"));
}

// ---- conv_fold_batchnorm --------------------------------------------------------

static void fold_case(Rng *r, int K, size_t CRS, int bias)
{
	float *w = randv(r, K * CRS), *b = randv(r, K), *g = randv(r, K), *be = randv(r, K);
	float *mu = randv(r, K), *var = randv(r, K);
	for (int k = 0; k < K; k++)
		var[k] = 0.05f + var[k] * var[k];
	float *wf1 = randv(r, K * CRS), *wf2 = randv(r, K * CRS), *bf1 = randv(r, K), *bf2 = randv(r, K);
	const float *bb = bias ? b : NULL;
	conv_fold_batchnorm(K, CRS, w, bb, g, be, mu, var, 1e-5f, wf1, bf1);
	conv_fold_batchnorm_ref(K, CRS, w, bb, g, be, mu, var, 1e-5f, wf2, bf2);
	CHECK(close_to(L("fold K%d CRS%zu%s wf", K, CRS, bias ? " bias" : ""), wf1, wf2,
	               K * CRS, FOLD_TOL));
	CHECK(close_to(L("fold K%d CRS%zu%s bf", K, CRS, bias ? " bias" : ""), bf1, bf2, K,
	               FOLD_TOL));
	float *z = copyv(w, K * CRS);   // wf = w
	conv_fold_batchnorm(K, CRS, z, bb, g, be, mu, var, 1e-5f, z, bf1);
	CHECK(same(L("fold K%d CRS%zu in place", K, CRS), z, wf1, K * CRS * 4));
	free(w); free(b); free(g); free(be); free(mu); free(var); free(wf1);
	free(wf2); free(bf1); free(bf2); free(z);
}

// ---- sgd -------------------------------------------------------------------------

static void sgd_case(Rng *r, size_t n, float lr, float mom, float wd)
{
	float *p1 = randv(r, n), *p2 = copyv(p1, n);
	float *v1 = xalloc(n * 4), *v2 = xalloc(n * 4);
	memset(v1, 0, n * 4);   // the momentum buffer starts at zero
	memset(v2, 0, n * 4);
	int ok = 1;
	for (int step = 0; step < 3; step++) {
		float *g = randv(r, n);
		for (size_t i = 0; i < n; i += 7)
			g[i] *= 1000.0f;   // large and small values together
		sgd_momentum_update(n, lr, mom, wd, p1, g, v1);
		sgd_momentum_update_ref(n, lr, mom, wd, p2, g, v2);
		ok &= same(L("sgd n %zu lr %g mom %g wd %g step %d p", n, lr, mom, wd, step),
		           p1, p2, n * 4);
		ok &= same(L("sgd n %zu lr %g mom %g wd %g step %d v", n, lr, mom, wd, step),
		           v1, v2, n * 4);
		free(g);
	}
	CHECK(ok);
	free(p1); free(p2); free(v1); free(v2);
}

// The reference on steps worked by hand (double): p = 1, g = 0.5, lr 0.1,
// momentum 0.9, wd 0.1:  d = 0.6, v = 0.6, p = 0.94;  then
// d = 0.5 + 0.094 = 0.594, v = 0.54 + 0.594 = 1.134, p = 0.94 - 0.1134.
static void sgd_by_hand(void)
{
	float p = 1.0f, g = 0.5f, v = 0.0f;
	sgd_momentum_update_ref(1, 0.1f, 0.9f, 0.1f, &p, &g, &v);
	CHECK(fabs(v - 0.6) < 1e-6 && fabs(p - 0.94) < 1e-6);
	sgd_momentum_update_ref(1, 0.1f, 0.9f, 0.1f, &p, &g, &v);
	CHECK(fabs(v - 1.134) < 1e-6 && fabs(p - 0.8266) < 1e-6);
	// wd = 0 skips the decay: v = g exactly, even for an infinite p
	p = INFINITY;
	v = 0.0f;
	sgd_momentum_update_ref(1, 0.1f, 0.9f, 0.0f, &p, &g, &v);
	CHECK(v == 0.5f);
}

static void sgd_tests(Rng *r)
{
	sgd_by_hand();
	const size_t ns[] = { 1, 15, 16, 17, 1001 };
	for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
		sgd_case(r, ns[i], 0.01f, 0.9f, 1e-4f);
		sgd_case(r, ns[i], 0.1f, 0.9f, 0.0f);
		sgd_case(r, ns[i], 0.3f, 0.0f, 5e-4f);
	}
	ops_set_threads(2);
	sgd_case(r, 300001, 0.01f, 0.9f, 1e-4f);   // > OPS_PAR_MIN: threads
	ops_set_threads(1);
}

// ---- the checks can fail ------------------------------------------------------------

static void perturbed(Rng *r)
{
	// one ulp in one parameter after an sgd step
	const size_t n = 100;
	float *p1 = randv(r, n), *p2 = copyv(p1, n), *g = randv(r, n);
	float *v1 = xalloc(n * 4), *v2 = xalloc(n * 4);
	memset(v1, 0, n * 4);
	memset(v2, 0, n * 4);
	sgd_momentum_update(n, 0.01f, 0.9f, 1e-4f, p1, g, v1);
	sgd_momentum_update_ref(n, 0.01f, 0.9f, 1e-4f, p2, g, v2);
	CHECK(same(NULL, p1, p2, n * 4));
	p1[37] = nextafterf(p1[37], INFINITY);
	CHECK(!same(NULL, p1, p2, n * 4));
	// batch norm's y with one value off by twice the tolerance, or NaN
	const int N = 3, C = 4, HW = 10;
	const size_t nx = (size_t)N * C * HW;
	float *x = bn_input(r, N, C, HW), *y1 = randv(r, nx), *y2 = randv(r, nx);
	batchnorm_forward_train(N, C, HW, x, NULL, NULL, NULL, NULL, 0.1f, 1e-5f, NULL, NULL, y1);
	batchnorm_forward_train_ref(N, C, HW, x, NULL, NULL, NULL, NULL, 0.1f, 1e-5f, NULL, NULL, y2);
	CHECK(close_to(NULL, y1, y2, nx, TOL));
	double scale = 0;
	for (size_t i = 0; i < nx; i++)
		scale = fmax(scale, fabs(y2[i]));
	float keep = y1[55];
	y1[55] += (float)(2 * TOL * scale);
	CHECK(!close_to(NULL, y1, y2, nx, TOL));
	y1[55] = NAN;
	CHECK(!close_to(NULL, y1, y2, nx, TOL));
	y1[55] = keep;
	CHECK(close_to(NULL, y1, y2, nx, TOL));
	// a maxpool argmax moved to the next cell
	PoolShape s = pool_shape(1, 1, 6, 6, 2, 2, 0);
	float *px = randv(r, 36), *py = randv(r, 9);
	int32_t a1[9], a2[9];
	maxpool2d_forward(&s, px, py, a1);
	maxpool2d_forward_ref(&s, px, py, a2);
	CHECK(same(NULL, a1, a2, sizeof a1));
	a1[4] ^= 1;
	CHECK(!same(NULL, a1, a2, sizeof a1));
	free(p1); free(p2); free(g); free(v1); free(v2); free(x); free(y1); free(y2);
	free(px); free(py);
}

int main(void)
{
	Rng r;
	rng_seed(&r, 2024, 11);
	batchnorm_tests(&r);
	pool_tests(&r);
	elementwise_tests(&r);
	shortcut_tests(&r);
	dropout_tests();
	softmax_nll_tests(&r);
	fold_case(&r, 5, 27, 1);
	fold_case(&r, 1, 1, 0);
	fold_case(&r, 16, 9 * 8, 0);
	sgd_tests(&r);
	perturbed(&r);
	printf("test_ops_ref: worst err/scale %.3g (tolerance %.0e)\n", worst, TOL);
	return check_done("test_ops_ref");
}
