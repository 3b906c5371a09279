// Every op of the CUDA backend against its CPU plain-loop reference (the
// *_ref of kernels/cpu/ops.h, the specification) on fresh random inputs,
// forward and backward, through the backend table as the engine calls it.
// Without a GPU (or in a build without CUDA) it says so and passes: the
// GPU check (tests/gpu/run.sh) is where it runs.  CNNPIPE_GPU_TEST_CPU=1
// runs it on the CPU backend instead, a check of the test itself where no
// GPU is (tests/gpu.bats).
//
// Tolerances, by what the two sides compute:
//   bit for bit: relu, leaky, add, shortcut, dropout (y, mask, the Rng
//     after), maxpool (y, argmax, dx), concat pool's max and backward,
//     global avgpool backward, NLL backward, SGD (the same rounded float
//     operations in the same order, no fused multiply-add);
//   TOL = 1e-5 of the scale (max |want|): sums in another order or in
//     float (cuDNN's convolutions in plain f32 (FMA math, no TF32), cuBLAS's
//     SGEMM, batch norm, average pools, log-softmax, NLL loss), where f32
//     rounding over a few hundred terms gives some 1e-7 and a wrong index
//     or divisor gives errors of order 1;
//   FOLD_TOL = 1e-6: folding batch norm, in double on both sides.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "kernels/backend.h"
#include "kernels/cpu/ops.h"
#include "libcommon/util/rng.h"

#define TOL 1e-5
#define FOLD_TOL 1e-6

static const Backend *be;
static Rng rng;
static char label[300];
#define L(...) (snprintf(label, sizeof label, __VA_ARGS__), label)

static void *xalloc(size_t n)
{
	void *p = calloc(n ? n : 1, 1);
	if (!p)
		abort();
	return p;
}

static float *randv(size_t n)
{
	float *v = xalloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		v[i] = rng_normal(&rng);
	return v;
}

static float *posv(size_t n)   // variances, gammas: in [0.5, 1.5)
{
	float *v = xalloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		v[i] = rng_range(&rng, 0.5f, 1.5f);
	return v;
}

// A device copy of n bytes of host (NULL stays NULL).
static void *up(const void *host, size_t n)
{
	if (!host)
		return NULL;
	void *d = be->alloc(n);
	be->to_device(d, host, n);
	return d;
}

static void *down(const void *dev, size_t n)
{
	void *h = xalloc(n);
	be->to_host(h, dev, n);
	return h;
}

static int same(const char *what, const void *got, const void *want, size_t n)
{
	if (!memcmp(got, want, n))
		return 1;
	const unsigned char *a = got, *b = want;
	size_t i = 0;
	while (a[i] == b[i])
		i++;
	if (what)
		fprintf(stderr, "FAIL %s: differs at byte %zu\n", what, i);
	return 0;
}

// max |got - want| <= tol * max |want|; NaN where want is NaN and only there
static int close_to(const char *what, const float *got, const float *want,
                    size_t n, double tol)
{
	double maxd = 0, scale = 0;
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		if (isnan(got[i]) || isnan(want[i])) {
			if (isnan(got[i]) != isnan(want[i])) {
				if (what)
					fprintf(stderr, "FAIL %s: NaN mismatch at %zu\n", what, i);
				return 0;
			}
			continue;
		}
		double d = fabs((double)got[i] - want[i]);
		if (!(d <= maxd)) {
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
	return 1;
}

// got: device, want: host
static int dev_close(const char *what, const float *dgot, const float *want,
                     size_t n, double tol)
{
	float *g = down(dgot, n * sizeof(float));
	int ok = close_to(what, g, want, n, tol);
	free(g);
	return ok;
}

static int dev_same(const char *what, const void *dgot, const void *want, size_t n)
{
	void *g = down(dgot, n);
	int ok = same(what, g, want, n);
	free(g);
	return ok;
}

#define F(n) ((n) * sizeof(float))

// ---- convolution -------------------------------------------------------------

static void conv_case(int N, int C, int H, int W, int K, int R, int stride, int pad,
                      int bias)
{
	ConvShape s = conv_shape(N, C, H, W, K, R, R, stride, pad);
	size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * R * R;
	size_t ny = (size_t)N * K * s.P * s.Q;
	char t[100];
	snprintf(t, sizeof t, "conv %dx%d s%d p%d (%d,%d,%d,%d)->%d%s", R, R, stride, pad,
	         N, C, H, W, K, bias ? "" : " no bias");
	float *x = randv(nx), *w = randv(nw), *b = bias ? randv(K) : NULL;
	float *res = randv(ny), *dy = randv(ny);
	float *y = xalloc(F(ny)), *dx = xalloc(F(nx));
	float *dw = randv(nw), *db = randv(K);   // backward accumulates onto them
	float *dw0 = xalloc(F(nw)), *db0 = xalloc(F(K));
	memcpy(dw0, dw, F(nw));
	memcpy(db0, db, F(K));
	float *gx = up(x, F(nx)), *gw = up(w, F(nw)), *gb = up(b, F(K));
	float *gy = be->alloc(F(ny)), *gres = up(res, F(ny)), *gdy = up(dy, F(ny));
	float *gdx = be->alloc(F(nx)), *gdw = up(dw, F(nw)), *gdb = up(db, F(K));
	ConvCache *cc = be->conv_cache_new();

	conv2d_forward_ref(&s, x, w, b, y);
	be->conv2d_forward(cc, &s, gx, gw, gb, gy);
	CHECK(dev_close(L("%s y", t), gy, y, ny, TOL));
	// fused: v = y + res, then ReLU / leaky, the CPU epilogue's formula
	for (int act = CONV_ACT_RELU; act <= CONV_ACT_LEAKY; act++) {
		float *want = xalloc(F(ny));
		float slope = act == CONV_ACT_RELU ? 0.0f : 0.1f;
		for (size_t i = 0; i < ny; i++) {
			float v = y[i] + res[i], sv = v * slope;
			want[i] = v > sv ? v : sv;
		}
		be->conv2d_forward_fused(cc, &s, gx, gw, gb, gres, act, slope, gy);
		CHECK(dev_close(L("%s fused act %d", t, act), gy, want, ny, TOL));
		free(want);
	}
	conv2d_backward_ref(&s, x, w, dy, dx, dw, bias ? db : NULL);
	be->conv2d_backward(&s, gx, gw, gdy, gdx, gdw, bias ? gdb : NULL);
	CHECK(dev_close(L("%s dx", t), gdx, dx, nx, TOL));
	// the accumulated part alone, so its scale is that of the gradient
	float *gotw = down(gdw, F(nw)), *gotb = down(gdb, F(K));
	for (size_t i = 0; i < nw; i++) {
		gotw[i] -= dw0[i];
		dw[i] -= dw0[i];
	}
	CHECK(close_to(L("%s dw (+=)", t), gotw, dw, nw, TOL));
	if (bias) {
		for (int k = 0; k < K; k++) {
			gotb[k] -= db0[k];
			db[k] -= db0[k];
		}
		CHECK(close_to(L("%s db (+=)", t), gotb, db, K, TOL));
	}
	be->conv_cache_free(cc);
	void *dev[] = { gx, gw, gb, gy, gres, gdy, gdx, gdw, gdb };
	for (size_t i = 0; i < sizeof dev / sizeof *dev; i++)
		be->free(dev[i]);
	void *host[] = { x, w, b, res, dy, y, dx, dw, db, dw0, db0, gotw, gotb };
	for (size_t i = 0; i < sizeof host / sizeof *host; i++)
		free(host[i]);
}

static void fold_case(int K, size_t CRS, int bias)
{
	float *w = randv(K * CRS), *b = bias ? randv(K) : NULL, *g = posv(K), *be_ = randv(K);
	float *mu = randv(K), *var = posv(K);
	float *wf = xalloc(F(K * CRS)), *bf = xalloc(F(K));
	conv_fold_batchnorm_ref(K, CRS, w, b, g, be_, mu, var, 1e-5f, wf, bf);
	float *gw = up(w, F(K * CRS)), *gb = up(b, F(K)), *gg = up(g, F(K)), *gbe = up(be_, F(K));
	float *gmu = up(mu, F(K)), *gvar = up(var, F(K)), *gwf = be->alloc(F(K * CRS)),
	      *gbf = be->alloc(F(K));
	be->conv_fold_batchnorm(K, CRS, gw, gb, gg, gbe, gmu, gvar, 1e-5f, gwf, gbf);
	CHECK(dev_close(L("fold wf K %d%s", K, bias ? "" : " no bias"), gwf, wf, K * CRS, FOLD_TOL));
	CHECK(dev_close(L("fold bf K %d", K), gbf, bf, K, FOLD_TOL));
	void *dev[] = { gw, gb, gg, gbe, gmu, gvar, gwf, gbf };
	for (size_t i = 0; i < 8; i++)
		be->free(dev[i]);
	void *host[] = { w, b, g, be_, mu, var, wf, bf };
	for (size_t i = 0; i < 8; i++)
		free(host[i]);
}

// ---- batch norm ----------------------------------------------------------------

static void bn_case(int N, int C, int HW, int affine)
{
	size_t nx = (size_t)N * C * HW;
	const float eps = 1e-5f, mom = 0.1f;
	float *x = randv(nx), *dy = randv(nx);
	for (size_t i = 0; i < nx; i++)   // per channel offsets and spreads
		x[i] = x[i] * (1.0f + (float)(i / HW % C) * 0.1f) + (float)(i / HW % C);
	float *g = affine ? posv(C) : NULL, *bb = affine ? randv(C) : NULL;
	float *rm = randv(C), *rv = posv(C);
	float *y = xalloc(F(nx)), *sm = xalloc(F(C)), *si = xalloc(F(C)), *dx = xalloc(F(nx));
	float *dg = xalloc(F(C)), *dbb = xalloc(F(C));
	float *gx = up(x, F(nx)), *gdy = up(dy, F(nx)), *gg = up(g, F(C)), *gbb = up(bb, F(C));
	float *grm = up(rm, F(C)), *grv = up(rv, F(C)), *gy = be->alloc(F(nx));
	float *gsm = be->alloc(F(C)), *gsi = be->alloc(F(C)), *gdx = be->alloc(F(nx));
	float *gdg = up(dg, F(C)), *gdbb = up(dbb, F(C));
	char t[100];
	snprintf(t, sizeof t, "bn (%d,%d,%d)%s", N, C, HW, affine ? "" : " no affine");

	// eval first (running stats as given), then training, which moves them
	batchnorm_forward_eval_ref(N, C, HW, x, g, bb, rm, rv, eps, y);
	be->batchnorm_forward_eval(N, C, HW, gx, gg, gbb, grm, grv, eps, gy);
	CHECK(dev_close(L("%s eval y", t), gy, y, nx, TOL));
	batchnorm_backward_eval_ref(N, C, HW, x, g, rm, rv, eps, dy, dx, affine ? dg : NULL,
	                            affine ? dbb : NULL);
	be->batchnorm_backward_eval(N, C, HW, gx, gg, grm, grv, eps, gdy, gdx,
	                            affine ? gdg : NULL, affine ? gdbb : NULL);
	CHECK(dev_close(L("%s eval dx", t), gdx, dx, nx, TOL));
	if (affine) {
		CHECK(dev_close(L("%s eval dgamma", t), gdg, dg, C, TOL));
		CHECK(dev_close(L("%s eval dbeta", t), gdbb, dbb, C, TOL));
	}
	batchnorm_forward_train_ref(N, C, HW, x, g, bb, rm, rv, mom, eps, sm, si, y);
	be->batchnorm_forward_train(N, C, HW, gx, gg, gbb, grm, grv, mom, eps, gsm, gsi, gy);
	// one value per channel: x - mean is rounding noise times
	// 1/sqrt(eps) = 316 (the CPU's test allows the same)
	double ytol = (size_t)N * HW == 1 ? 1e-3 : TOL;
	CHECK(dev_close(L("%s train y", t), gy, y, nx, ytol));
	CHECK(dev_close(L("%s running_mean", t), grm, rm, C, TOL));
	CHECK(dev_close(L("%s running_var", t), grv, rv, C, TOL));
	CHECK(dev_close(L("%s save_mean", t), gsm, sm, C, TOL));
	CHECK(dev_close(L("%s save_invstd", t), gsi, si, C, TOL));
	// backward from the CPU's saved statistics on both sides
	be->to_device(gsm, sm, F(C));
	be->to_device(gsi, si, F(C));
	batchnorm_backward_train_ref(N, C, HW, x, g, sm, si, dy, dx, affine ? dg : NULL,
	                             affine ? dbb : NULL);
	be->batchnorm_backward_train(N, C, HW, gx, gg, gsm, gsi, gdy, gdx,
	                             affine ? gdg : NULL, affine ? gdbb : NULL);
	CHECK(dev_close(L("%s train dx", t), gdx, dx, nx, TOL));
	if (affine) {
		CHECK(dev_close(L("%s train dgamma (+=)", t), gdg, dg, C, TOL));
		CHECK(dev_close(L("%s train dbeta (+=)", t), gdbb, dbb, C, TOL));
	}
	void *dev[] = { gx, gdy, gg, gbb, grm, grv, gy, gsm, gsi, gdx, gdg, gdbb };
	for (size_t i = 0; i < 12; i++)
		be->free(dev[i]);
	void *host[] = { x, dy, g, bb, rm, rv, y, sm, si, dx, dg, dbb };
	for (size_t i = 0; i < 12; i++)
		free(host[i]);
}

// ---- elementwise, dropout, sgd --------------------------------------------------

static void elementwise_case(size_t n)
{
	float *x = randv(n), *x2 = randv(n), *dy = randv(n), *y = xalloc(F(n)), *dx = xalloc(F(n));
	x[0] = NAN;
	float *gx = up(x, F(n)), *gx2 = up(x2, F(n)), *gdy = up(dy, F(n));
	float *gy = be->alloc(F(n)), *gdx = be->alloc(F(n));
	relu_forward_ref(n, x, y);
	be->relu_forward(n, gx, gy);
	CHECK(dev_same(L("relu n %zu y", n), gy, y, F(n)));
	relu_backward_ref(n, y, dy, dx);
	be->relu_backward(n, gy, gdy, gdx);
	CHECK(dev_same(L("relu n %zu dx", n), gdx, dx, F(n)));
	leaky_relu_forward_ref(n, 0.1f, x, y);
	be->leaky_relu_forward(n, 0.1f, gx, gy);
	CHECK(dev_same(L("leaky n %zu y", n), gy, y, F(n)));
	leaky_relu_backward_ref(n, 0.1f, x, dy, dx);
	be->leaky_relu_backward(n, 0.1f, gx, gdy, gdx);
	CHECK(dev_same(L("leaky n %zu dx", n), gdx, dx, F(n)));
	add_forward_ref(n, x, x2, y);
	be->add_forward(n, gx, gx2, gy);
	CHECK(dev_same(L("add n %zu", n), gy, y, F(n)));
	be->add_forward(n, gx, gx2, gx);   // in place
	CHECK(dev_same(L("add n %zu in place", n), gx, y, F(n)));

	// dropout: the same seed gives the same mask, values and Rng state
	for (int k = 0; k < 3; k++) {
		float p = k == 0 ? 0.25f : k == 1 ? 0.0f : 1.0f;
		Rng r1, r2;
		rng_seed(&r1, 11, 2);
		r2 = r1;
		uint8_t *mask = xalloc(n), *gmask = be->alloc(n);
		dropout_forward_ref(n, p, &r1, x2, y, mask);
		be->dropout_forward(n, p, &r2, gx2, gy, gmask);
		CHECK(dev_same(L("dropout p %g y", p), gy, y, F(n)));
		CHECK(dev_same(L("dropout p %g mask", p), gmask, mask, n));
		CHECK(same(L("dropout p %g rng after", p), &r1, &r2, sizeof r1));
		dropout_backward_ref(n, p, mask, dy, dx);
		be->dropout_backward(n, p, gmask, gdy, gdx);
		CHECK(dev_same(L("dropout p %g dx", p), gdx, dx, F(n)));
		free(mask);
		be->free(gmask);
	}

	// sgd, with and without weight decay
	for (int k = 0; k < 2; k++) {
		float wd = k ? 5e-4f : 0.0f;
		float *p = randv(n), *g = randv(n), *v = randv(n);
		float *gp = up(p, F(n)), *gg = up(g, F(n)), *gv = up(v, F(n));
		sgd_momentum_update_ref(n, 0.01f, 0.9f, wd, p, g, v);
		be->sgd_momentum_update(n, 0.01f, 0.9f, wd, gp, gg, gv);
		CHECK(dev_same(L("sgd wd %g p", wd), gp, p, F(n)));
		CHECK(dev_same(L("sgd wd %g v", wd), gv, v, F(n)));
		be->free(gp);
		be->free(gg);
		be->free(gv);
		free(p);
		free(g);
		free(v);
	}
	void *dev[] = { gx, gx2, gdy, gy, gdx };
	for (size_t i = 0; i < 5; i++)
		be->free(dev[i]);
	void *host[] = { x, x2, dy, y, dx };
	for (size_t i = 0; i < 5; i++)
		free(host[i]);
}

static void shortcut_case(int N, int C, int H, int W, int Ca, int Ha, int Wa)
{
	ShortcutShape s = { N, C, H, W, Ca, Ha, Wa };
	size_t ny = (size_t)N * C * H * W, na = (size_t)N * Ca * Ha * Wa;
	float *x = randv(ny), *a = randv(na), *dy = randv(ny);
	float *y = xalloc(F(ny)), *dx = xalloc(F(ny)), *da = xalloc(F(na));
	float *gx = up(x, F(ny)), *ga = up(a, F(na)), *gdy = up(dy, F(ny));
	float *gy = be->alloc(F(ny)), *gdx = be->alloc(F(ny)), *gda = be->alloc(F(na));
	shortcut_forward_ref(&s, x, a, y);
	be->shortcut_forward(&s, gx, ga, gy);
	CHECK(dev_same(L("shortcut (%d,%d,%d) + (%d,%d,%d) y", C, H, W, Ca, Ha, Wa), gy, y, F(ny)));
	shortcut_backward_ref(&s, dy, dx, da);
	be->shortcut_backward(&s, gdy, gdx, gda);
	CHECK(dev_same(L("shortcut (%d,%d,%d) dx", C, H, W), gdx, dx, F(ny)));
	CHECK(dev_same(L("shortcut (%d,%d,%d) <- (%d,%d,%d) da", C, H, W, Ca, Ha, Wa), gda, da, F(na)));
	void *dev[] = { gx, ga, gdy, gy, gdx, gda };
	for (size_t i = 0; i < 6; i++)
		be->free(dev[i]);
	void *host[] = { x, a, dy, y, dx, da };
	for (size_t i = 0; i < 6; i++)
		free(host[i]);
}

// ---- pooling -----------------------------------------------------------------------

static void pool_case(int N, int C, int H, int W, int k, int stride, int pad)
{
	PoolShape s = pool_shape(N, C, H, W, k, stride, pad);
	size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * s.P * s.Q;
	float *x = randv(nx), *dy = randv(ny);
	x[nx / 2] = NAN;
	x[1] = x[0];   // a tie
	float *y = xalloc(F(ny)), *dx = xalloc(F(nx));
	int32_t *am = xalloc(ny * 4);
	float *gx = up(x, F(nx)), *gdy = up(dy, F(ny)), *gy = be->alloc(F(ny)), *gdx = be->alloc(F(nx));
	int32_t *gam = be->alloc(ny * 4);
	char t[100];
	snprintf(t, sizeof t, "pool k%d s%d p%d (%d,%d,%d,%d)", k, stride, pad, N, C, H, W);
	maxpool2d_forward_ref(&s, x, y, am);
	be->maxpool2d_forward(&s, gx, gy, gam);
	CHECK(dev_same(L("max%s y", t), gy, y, F(ny)));
	CHECK(dev_same(L("max%s argmax", t), gam, am, ny * 4));
	be->maxpool2d_forward(&s, gx, gy, NULL);
	CHECK(dev_same(L("max%s y without argmax", t), gy, y, F(ny)));
	maxpool2d_backward_ref(&s, am, dy, dx);
	be->maxpool2d_backward(&s, gam, gdy, gdx);
	CHECK(dev_same(L("max%s dx", t), gdx, dx, F(nx)));
	x[nx / 2] = 0.5f;
	be->to_device(gx, x, F(nx));
	avgpool2d_forward_ref(&s, x, y);
	be->avgpool2d_forward(&s, gx, gy);
	CHECK(dev_close(L("avg%s y", t), gy, y, ny, TOL));
	avgpool2d_backward_ref(&s, dy, dx);
	be->avgpool2d_backward(&s, gdy, gdx);
	CHECK(dev_close(L("avg%s dx", t), gdx, dx, nx, TOL));
	void *dev[] = { gx, gdy, gy, gdx, gam };
	for (size_t i = 0; i < 5; i++)
		be->free(dev[i]);
	void *host[] = { x, dy, y, dx, am };
	for (size_t i = 0; i < 5; i++)
		free(host[i]);
}

static void concat_pool_case(int N, int C, int HW)
{
	size_t nx = (size_t)N * C * HW;
	// one more value: the global pool reads x + 1, past the NaN
	float *x = randv(nx + 1), *dy = randv((size_t)N * 2 * C), *dy1 = randv((size_t)N * C);
	x[0] = NAN;
	float *y = xalloc(F(N * 2 * C)), *dx = xalloc(F(nx));
	int32_t *am = xalloc((size_t)N * C * 4);
	float *gx = up(x, F(nx + 1)), *gdy = up(dy, F(N * 2 * C)), *gdy1 = up(dy1, F(N * C));
	float *gy = be->alloc(F(N * 2 * C)), *gdx = be->alloc(F(nx));
	int32_t *gam = be->alloc((size_t)N * C * 4);
	concat_pool_forward_ref(N, C, HW, x, y, am);
	be->concat_pool_forward(N, C, HW, gx, gy, gam);
	float *got = down(gy, F(N * 2 * C));
	int maxes_same = 1;
	for (int n = 0; n < N; n++)
		maxes_same &= same(NULL, got + (size_t)n * 2 * C, y + (size_t)n * 2 * C, F(C));
	check_msg(maxes_same, "concat pool (%d,%d,%d) max part differs", N, C, HW);
	CHECK(close_to(L("concat pool (%d,%d,%d) y", N, C, HW), got, y, (size_t)N * 2 * C, TOL));
	CHECK(dev_same(L("concat pool (%d,%d,%d) argmax", N, C, HW), gam, am, (size_t)N * C * 4));
	concat_pool_backward_ref(N, C, HW, am, dy, dx);
	be->concat_pool_backward(N, C, HW, gam, gdy, gdx);
	CHECK(dev_same(L("concat pool (%d,%d,%d) dx", N, C, HW), gdx, dx, F(nx)));
	global_avgpool_forward_ref(N, C, HW, x + 1, y);   // (skipping the NaN)
	be->global_avgpool_forward(N, C, HW, gx + 1, gy);
	CHECK(dev_close(L("global avgpool (%d,%d,%d) y", N, C, HW), gy, y, (size_t)N * C, TOL));
	global_avgpool_backward_ref(N, C, HW, dy1, dx);
	be->global_avgpool_backward(N, C, HW, gdy1, gdx);
	CHECK(dev_same(L("global avgpool (%d,%d,%d) dx", N, C, HW), gdx, dx, F(nx)));
	free(got);
	void *dev[] = { gx, gdy, gdy1, gy, gdx, gam };
	for (size_t i = 0; i < 6; i++)
		be->free(dev[i]);
	void *host[] = { x, dy, dy1, y, dx, am };
	for (size_t i = 0; i < 6; i++)
		free(host[i]);
}

// ---- linear, log-softmax, NLL -------------------------------------------------------

static void linear_case(int N, int I, int O, int bias)
{
	float *x = randv((size_t)N * I), *w = randv((size_t)O * I), *b = bias ? randv(O) : NULL;
	float *dy = randv((size_t)N * O), *y = xalloc(F((size_t)N * O)), *dx = xalloc(F((size_t)N * I));
	float *dw = xalloc(F((size_t)O * I)), *db = xalloc(F(O));
	float *gx = up(x, F((size_t)N * I)), *gw = up(w, F((size_t)O * I)), *gb = up(b, F(O));
	float *gdy = up(dy, F((size_t)N * O)), *gy = be->alloc(F((size_t)N * O));
	float *gdx = be->alloc(F((size_t)N * I)), *gdw = up(dw, F((size_t)O * I)), *gdb = up(db, F(O));
	linear_forward_ref(N, I, O, x, w, b, y);
	be->linear_forward(N, I, O, gx, gw, gb, gy);
	CHECK(dev_close(L("linear (%d,%d)->%d%s y", N, I, O, bias ? "" : " no bias"), gy, y,
	                (size_t)N * O, TOL));
	linear_backward_ref(N, I, O, x, w, dy, dx, dw, bias ? db : NULL);
	be->linear_backward(N, I, O, gx, gw, gdy, gdx, gdw, bias ? gdb : NULL);
	CHECK(dev_close(L("linear (%d,%d)->%d dx", N, I, O), gdx, dx, (size_t)N * I, TOL));
	CHECK(dev_close(L("linear (%d,%d)->%d dw", N, I, O), gdw, dw, (size_t)O * I, TOL));
	if (bias)
		CHECK(dev_close(L("linear (%d,%d)->%d db", N, I, O), gdb, db, O, TOL));
	void *dev[] = { gx, gw, gb, gdy, gy, gdx, gdw, gdb };
	for (size_t i = 0; i < 8; i++)
		be->free(dev[i]);
	void *host[] = { x, w, b, dy, y, dx, dw, db };
	for (size_t i = 0; i < 8; i++)
		free(host[i]);
}

static void softmax_case(int N, int K)
{
	size_t n = (size_t)N * K;
	float *x = randv(n), *dy = randv(n), *y = xalloc(F(n)), *dx = xalloc(F(n));
	for (size_t i = 0; i < n; i++)
		x[i] *= 5.0f;
	int32_t *t = xalloc((size_t)N * 4);
	for (int i = 0; i < N; i++)
		t[i] = (int32_t)rng_below(&rng, (uint32_t)K);
	float *gx = up(x, F(n)), *gdy = up(dy, F(n)), *gy = be->alloc(F(n)), *gdx = be->alloc(F(n));
	int32_t *gt = up(t, (size_t)N * 4);
	log_softmax_forward_ref(N, K, x, y);
	be->log_softmax_forward(N, K, gx, gy);
	CHECK(dev_close(L("log_softmax (%d,%d) y", N, K), gy, y, n, TOL));
	be->to_device(gy, y, F(n));   // backward from the same y
	log_softmax_backward_ref(N, K, y, dy, dx);
	be->log_softmax_backward(N, K, gy, gdy, gdx);
	CHECK(dev_close(L("log_softmax (%d,%d) dx", N, K), gdx, dx, n, TOL));
	float want = nll_loss_forward_ref(N, K, y, t), got = be->nll_loss_forward(N, K, gy, gt);
	check_msg(fabsf(got - want) <= TOL * fabsf(want), "nll (%d,%d): %.9g, want %.9g", N, K,
	          got, want);
	nll_loss_backward_ref(N, K, t, 1.0f, dx);
	be->nll_loss_backward(N, K, gt, 1.0f, gdx);
	CHECK(dev_same(L("nll (%d,%d) dlogp", N, K), gdx, dx, F(n)));
	void *dev[] = { gx, gdy, gy, gdx, gt };
	for (size_t i = 0; i < 5; i++)
		be->free(dev[i]);
	void *host[] = { x, dy, y, dx, t };
	for (size_t i = 0; i < 5; i++)
		free(host[i]);
}

// The comparisons can fail: a value off by 2*TOL of the scale, a flipped
// bit, a NaN must each be caught.
static void checks_can_fail(void)
{
	float want[4] = { 1, -2, 3, 0.5f }, got[4];
	memcpy(got, want, sizeof got);
	got[2] += (float)(2 * TOL * 3);
	CHECK(!close_to(NULL, got, want, 4, TOL));
	memcpy(got, want, sizeof got);
	got[1] = NAN;
	CHECK(!close_to(NULL, got, want, 4, TOL));
	memcpy(got, want, sizeof got);
	((unsigned char *)got)[5] ^= 1;
	CHECK(!same(NULL, got, want, sizeof got));
}

int main(void)
{
	char err[256];
	const char *on_cpu = getenv("CNNPIPE_GPU_TEST_CPU");
	be = on_cpu && !strcmp(on_cpu, "1") ? backend_cpu() : backend_cuda(err, sizeof err);
	if (!be) {
		printf("test_cuda_ops: skipped: %s\n", err);
		return 0;
	}
	rng_seed(&rng, 2024, 12);
	checks_can_fail();
	conv_case(2, 3, 9, 7, 5, 3, 1, 1, 1);
	conv_case(2, 8, 10, 10, 16, 1, 2, 0, 0);
	conv_case(1, 4, 11, 11, 6, 7, 2, 3, 0);
	conv_case(3, 16, 14, 14, 32, 3, 2, 1, 1);
	conv_case(4, 64, 7, 7, 64, 3, 1, 1, 0);   // a ResNet layer4-like shape
	fold_case(6, 27, 1);
	fold_case(64, 576, 0);
	bn_case(4, 3, 25, 1);
	bn_case(8, 16, 196, 0);
	bn_case(5, 7, 1, 1);         // 1d
	bn_case(64, 8, 3136, 1);     // many values per channel: several slices
	bn_case(1, 3, 1, 1);         // one value per channel
	elementwise_case(1);
	elementwise_case(1000);
	elementwise_case(300001);
	shortcut_case(2, 4, 6, 6, 4, 6, 6);
	shortcut_case(2, 8, 6, 6, 4, 12, 12);
	shortcut_case(2, 4, 12, 12, 8, 6, 6);
	pool_case(2, 3, 9, 9, 3, 2, 1);
	pool_case(1, 2, 8, 7, 2, 2, 0);
	pool_case(2, 4, 112, 112, 3, 2, 1);
	pool_case(1, 1, 5, 5, 3, 1, 2);   // windows past the border
	concat_pool_case(3, 5, 49);
	concat_pool_case(2, 512, 7);
	concat_pool_case(1, 1, 1);
	linear_case(4, 1024, 512, 1);
	linear_case(3, 7, 5, 0);
	linear_case(64, 512, 2, 1);
	softmax_case(5, 2);
	softmax_case(3, 1000);
	printf("test_cuda_ops: on the %s backend\n", be->name);
	return check_done("test_cuda_ops");
}
