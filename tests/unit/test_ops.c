// Tests of kernels/ops.h: (a) every fast path against its plain-loop
// reference on random shapes, (b) every op forward and backward against
// PyTorch golden values (tests/fixtures/ops_golden.bin, made by
// tests/gen_golden_ops.py), (c) properties (dropout semantics, accumulation).
//
// Tolerance: an array passes when max|got - want| <= TOL * max(1, max|want|)
// (TOL = 1e-4 against PyTorch and 1e-4 fast vs reference: fp32 sums of up to
// a few thousand terms in different orders differ by ~1e-6 relative, so 1e-4
// leaves room while any indexing bug gives O(1) errors).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "ops.h"
#include "rng.h"

#define TOL 1e-4

static int passed, failed;
static double worst_abs, worst_scaled;

static void check(const char *what, const float *got, const float *want,
                  size_t n, double tol)
{
	double maxd = 0, maxw = 0;
	size_t at = 0;
	int bad_nan = 0;
	for (size_t i = 0; i < n; i++) {
		if (isnan(got[i]) != isnan(want[i]))
			bad_nan = 1;
		double d = fabs((double)got[i] - want[i]);
		if (d > maxd) {
			maxd = d;
			at = i;
		}
		if (fabs(want[i]) > maxw)
			maxw = fabs(want[i]);
	}
	double scale = maxw > 1 ? maxw : 1;
	if (maxd > worst_abs)
		worst_abs = maxd;
	if (maxd / scale > worst_scaled)
		worst_scaled = maxd / scale;
	if (bad_nan || maxd > tol * scale) {
		failed++;
		printf("FAIL %s: max abs err %.3g at %zu (got %g want %g), scale %g\n",
		       what, maxd, at, got[at], want[at], scale);
	} else {
		passed++;
	}
}

static void expect(int ok, const char *what)
{
	if (ok) {
		passed++;
	} else {
		failed++;
		printf("FAIL %s\n", what);
	}
}

static float *randv(Rng *r, size_t n)
{
	float *v = xmalloc_array(n ? n : 1, sizeof(float));
	for (size_t i = 0; i < n; i++)
		v[i] = rng_normal(r);
	return v;
}

static float *copyv(const float *v, size_t n)
{
	float *c = xmalloc_array(n ? n : 1, sizeof(float));
	memcpy(c, v, n * sizeof(float));
	return c;
}

// ---- (a) fast vs reference ----------------------------------------------

static void conv_vs_ref(Rng *r, int N, int C, int H, int W, int K, int R,
                        int S, int stride, int pad, int bias)
{
	ConvShape s = conv_shape(N, C, H, W, K, R, S, stride, pad);
	char what[160];
	snprintf(what, sizeof what, "conv N%d C%d %dx%d K%d %dx%d s%d p%d%s t%d",
	         N, C, H, W, K, R, S, stride, pad, bias ? " bias" : "", ops_threads());
	size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * R * S,
	       ny = (size_t)N * K * s.P * s.Q;
	float *x = randv(r, nx), *w = randv(r, nw), *b = bias ? randv(r, K) : NULL;
	float *y1 = randv(r, ny), *y2 = randv(r, ny), *dy = randv(r, ny);
	conv2d_forward(&s, x, w, b, y1);
	conv2d_forward_ref(&s, x, w, b, y2);
	char m[200];
	snprintf(m, sizeof m, "%s fwd", what);
	check(m, y1, y2, ny, TOL);
	// Gradients accumulate into non-zero starting values.
	float *dw0 = randv(r, nw), *db0 = randv(r, K);
	float *dx1 = randv(r, nx), *dx2 = randv(r, nx);
	float *dw1 = copyv(dw0, nw), *dw2 = copyv(dw0, nw);
	float *db1 = copyv(db0, K), *db2 = copyv(db0, K);
	conv2d_backward(&s, x, w, dy, dx1, dw1, db1);
	conv2d_backward_ref(&s, x, w, dy, dx2, dw2, db2);
	snprintf(m, sizeof m, "%s dx", what);
	check(m, dx1, dx2, nx, TOL);
	snprintf(m, sizeof m, "%s dw", what);
	check(m, dw1, dw2, nw, TOL);
	snprintf(m, sizeof m, "%s db", what);
	check(m, db1, db2, K, TOL);
	// NULL gradients are allowed (first layer: no dx).
	float *dw3 = copyv(dw0, nw);
	conv2d_backward(&s, x, w, dy, NULL, dw3, NULL);
	snprintf(m, sizeof m, "%s dw only", what);
	check(m, dw3, dw2, nw, TOL);
	free(x); free(w); free(b); free(y1); free(y2); free(dy); free(dw0);
	free(db0); free(dx1); free(dx2); free(dw1); free(dw2); free(db1);
	free(db2); free(dw3);
}

static void linear_vs_ref(Rng *r, int N, int I, int O)
{
	char m[120];
	float *x = randv(r, (size_t)N * I), *w = randv(r, (size_t)O * I), *b = randv(r, O);
	float *y1 = randv(r, (size_t)N * O), *y2 = randv(r, (size_t)N * O);
	float *dy = randv(r, (size_t)N * O);
	linear_forward(N, I, O, x, w, b, y1);
	linear_forward_ref(N, I, O, x, w, b, y2);
	snprintf(m, sizeof m, "linear %dx%d->%d fwd", N, I, O);
	check(m, y1, y2, (size_t)N * O, TOL);
	float *dx1 = randv(r, (size_t)N * I), *dx2 = randv(r, (size_t)N * I);
	float *dw1 = randv(r, (size_t)O * I), *dw2 = copyv(dw1, (size_t)O * I);
	float *db1 = randv(r, O), *db2 = copyv(db1, O);
	linear_backward(N, I, O, x, w, dy, dx1, dw1, db1);
	linear_backward_ref(N, I, O, x, w, dy, dx2, dw2, db2);
	snprintf(m, sizeof m, "linear %dx%d->%d dx", N, I, O);
	check(m, dx1, dx2, (size_t)N * I, TOL);
	snprintf(m, sizeof m, "linear %dx%d->%d dw", N, I, O);
	check(m, dw1, dw2, (size_t)O * I, TOL);
	snprintf(m, sizeof m, "linear %dx%d->%d db", N, I, O);
	check(m, db1, db2, O, TOL);
	free(x); free(w); free(b); free(y1); free(y2); free(dy); free(dx1);
	free(dx2); free(dw1); free(dw2); free(db1); free(db2);
}

static void fast_vs_ref(void)
{
	Rng r;
	rng_seed(&r, 42, 7);
	for (int t = 1; t <= 2; t++) {
		ops_set_threads(t);
		conv_vs_ref(&r, 3, 3, 17, 15, 8, 7, 7, 2, 3, 1);   // stem-like, odd
		conv_vs_ref(&r, 1, 5, 9, 11, 7, 3, 3, 1, 1, 1);
		conv_vs_ref(&r, 3, 6, 10, 10, 4, 3, 3, 2, 1, 0);
		conv_vs_ref(&r, 2, 8, 7, 7, 16, 1, 1, 1, 0, 0);    // pointwise
		conv_vs_ref(&r, 3, 8, 9, 9, 6, 1, 1, 2, 0, 1);     // 1x1 stride 2
		conv_vs_ref(&r, 2, 4, 6, 5, 3, 2, 3, 1, 0, 1);     // non-square kernel
		conv_vs_ref(&r, 1, 2, 3, 3, 5, 5, 5, 1, 2, 1);     // kernel > image
		conv_vs_ref(&r, 4, 16, 8, 8, 24, 3, 3, 1, 1, 0);   // more images than threads
		conv_vs_ref(&r, 2, 3, 13, 13, 5, 3, 3, 3, 2, 1);   // stride 3
		linear_vs_ref(&r, 1, 13, 5);
		linear_vs_ref(&r, 7, 33, 19);
		linear_vs_ref(&r, 64, 1024, 2);
	}
	ops_set_threads(1);
}

// ---- (b) golden fixtures -------------------------------------------------

typedef struct {
	char name[64];
	int dtype, ndim;
	int64_t dims[8];
	size_t n;
	void *data;
} Fix;

static Fix *fx;
static int nfx;

static int load_fixtures(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *buf = xmalloc((size_t)len);
	if (fread(buf, 1, (size_t)len, f) != (size_t)len || len < 8 ||
	    memcmp(buf, "OPSFIX01", 8) != 0) {
		fclose(f);
		return -1;
	}
	fclose(f);
	size_t off = 8;
	fx = xmalloc_array(4096, sizeof(Fix));
	while (off < (size_t)len && nfx < 4096) {
		Fix *t = &fx[nfx];
		uint32_t nl, dt, nd;
		memcpy(&nl, buf + off, 4);
		off += 4;
		if (nl >= sizeof t->name || off + nl + 8 > (size_t)len)
			return -1;
		memcpy(t->name, buf + off, nl);
		t->name[nl] = 0;
		off += nl;
		memcpy(&dt, buf + off, 4);
		memcpy(&nd, buf + off + 4, 4);
		off += 8;
		if (nd > 8 || dt > 2)
			return -1;
		t->dtype = (int)dt;
		t->ndim = (int)nd;
		t->n = 1;
		for (uint32_t i = 0; i < nd; i++) {
			memcpy(&t->dims[i], buf + off, 8);
			off += 8;
			t->n *= (size_t)t->dims[i];
		}
		size_t es = dt == 2 ? 1 : 4;
		if (off + t->n * es > (size_t)len)
			return -1;
		t->data = buf + off;   // the buffer lives until exit
		off += t->n * es;
		nfx++;
	}
	return 1;
}

static Fix *getf(const char *cs, const char *k)
{
	char name[80];
	snprintf(name, sizeof name, "%s.%s", cs, k);
	for (int i = 0; i < nfx; i++)
		if (strcmp(fx[i].name, name) == 0)
			return &fx[i];
	return NULL;
}

static float *F32(const char *cs, const char *k)
{
	Fix *t = getf(cs, k);
	if (!t) {
		printf("FAIL fixture %s.%s missing\n", cs, k);
		failed++;
		exit(1);
	}
	return t->data;
}

static void gcheck(const char *cs, const char *k, const float *got)
{
	char m[100];
	snprintf(m, sizeof m, "golden %s.%s", cs, k);
	Fix *t = getf(cs, k);
	check(m, got, t->data, t->n, TOL);
}

static void golden_conv(const char *cs)
{
	Fix *x = getf(cs, "x"), *w = getf(cs, "w");
	int32_t *pr = getf(cs, "params")->data;
	ConvShape s = conv_shape((int)x->dims[0], (int)x->dims[1], (int)x->dims[2],
	                         (int)x->dims[3], (int)w->dims[0], (int)w->dims[2],
	                         (int)w->dims[3], pr[0], pr[1]);
	Fix *bf = getf(cs, "b");
	float *b = bf ? bf->data : NULL;
	size_t ny = getf(cs, "y")->n;
	float *y = xcalloc(ny, 4), *dx = xcalloc(x->n, 4), *dw = xcalloc(w->n, 4);
	float *db = xcalloc(s.K, 4);
	for (int ref = 0; ref < 2; ref++) {
		char name[40];
		snprintf(name, sizeof name, "%s%s", cs, ref ? "(ref)" : "");
		memset(dw, 0, w->n * 4);
		memset(db, 0, s.K * 4);
		(ref ? conv2d_forward_ref : conv2d_forward)(&s, x->data, w->data, b, y);
		(ref ? conv2d_backward_ref : conv2d_backward)(&s, x->data, w->data,
		        F32(cs, "dy"), dx, dw, b ? db : NULL);
		gcheck(cs, "y", y);
		gcheck(cs, "dx", dx);
		gcheck(cs, "dw", dw);
		if (b)
			gcheck(cs, "db", db);
	}
	free(y); free(dx); free(dw); free(db);
}

static void golden_bn(const char *cs, int train)
{
	Fix *x = getf(cs, "x");
	int N = (int)x->dims[0], C = (int)x->dims[1];
	int HW = x->ndim == 4 ? (int)(x->dims[2] * x->dims[3]) : 1;
	float *rm = copyv(F32(cs, "rmean0"), C), *rv = copyv(F32(cs, "rvar0"), C);
	float *sm = xcalloc(C, 4), *si = xcalloc(C, 4), *y = xcalloc(x->n, 4);
	float *dx = xcalloc(x->n, 4), *dg = xcalloc(C, 4), *dbt = xcalloc(C, 4);
	const float eps = 1e-5f;   // torch.nn.BatchNorm2d defaults
	if (train) {
		batchnorm_forward_train(N, C, HW, x->data, F32(cs, "gamma"), F32(cs, "beta"),
		                        rm, rv, 0.1f, eps, sm, si, y);
		batchnorm_backward_train(N, C, HW, x->data, F32(cs, "gamma"), sm, si,
		                         F32(cs, "dy"), dx, dg, dbt);
	} else {
		batchnorm_forward_eval(N, C, HW, x->data, F32(cs, "gamma"), F32(cs, "beta"),
		                       rm, rv, eps, y);
		batchnorm_backward_eval(N, C, HW, x->data, F32(cs, "gamma"), rm, rv, eps,
		                        F32(cs, "dy"), dx, dg, dbt);
	}
	gcheck(cs, "y", y);
	gcheck(cs, "dx", dx);
	gcheck(cs, "dgamma", dg);
	gcheck(cs, "dbeta", dbt);
	gcheck(cs, "rmean1", rm);
	gcheck(cs, "rvar1", rv);
	free(rm); free(rv); free(sm); free(si); free(y); free(dx); free(dg); free(dbt);
}

static void golden_pool(const char *cs, int isavg, int k, int stride, int pad)
{
	Fix *x = getf(cs, "x");
	PoolShape s = pool_shape((int)x->dims[0], (int)x->dims[1], (int)x->dims[2],
	                         (int)x->dims[3], k, stride, pad);
	size_t ny = getf(cs, "y")->n;
	expect(ny == (size_t)s.N * s.C * s.P * s.Q, "pool_shape matches PyTorch");
	if (ny != (size_t)s.N * s.C * s.P * s.Q)
		return;
	float *y = xcalloc(ny, 4), *dx = xcalloc(x->n, 4);
	int32_t *am = xcalloc(ny, 4);
	if (isavg) {
		avgpool2d_forward(&s, x->data, y);
		avgpool2d_backward(&s, F32(cs, "dy"), dx);
	} else {
		maxpool2d_forward(&s, x->data, y, am);
		maxpool2d_backward(&s, am, F32(cs, "dy"), dx);
	}
	gcheck(cs, "y", y);
	gcheck(cs, "dx", dx);
	free(y); free(dx); free(am);
}

static void golden(const char *path)
{
	int ok = load_fixtures(path);
	if (ok == 0) {
		printf("FAIL cannot open %s (make it with tests/gen_golden_ops.py)\n", path);
		failed++;
		return;
	}
	if (ok < 0) {
		printf("FAIL %s: malformed fixture file\n", path);
		failed++;
		return;
	}
	for (int t = 1; t <= 2; t++) {
		ops_set_threads(t);
		const char *convs[] = { "conv_a", "conv_b", "conv_c", "conv_d", "conv_e" };
		for (int i = 0; i < 5; i++)
			golden_conv(convs[i]);
	}
	ops_set_threads(1);
	golden_bn("bn2d_train", 1);
	golden_bn("bn2d_eval", 0);
	golden_bn("bn1d_train", 1);
	golden_bn("bn1d_eval", 0);

	{
		Fix *x = getf("relu", "x");
		float *y = xcalloc(x->n, 4), *dx = xcalloc(x->n, 4);
		relu_forward(x->n, x->data, y);
		relu_backward(x->n, y, F32("relu", "dy"), dx);
		gcheck("relu", "y", y);
		gcheck("relu", "dx", dx);
		// in place
		float *z = copyv(x->data, x->n);
		relu_forward(x->n, z, z);
		gcheck("relu", "y", z);
		free(y); free(dx); free(z);
	}
	{
		Fix *x = getf("leaky", "x");
		float *y = xcalloc(x->n, 4), *dx = xcalloc(x->n, 4);
		leaky_relu_forward(x->n, 0.1f, x->data, y);
		leaky_relu_backward(x->n, 0.1f, x->data, F32("leaky", "dy"), dx);
		gcheck("leaky", "y", y);
		gcheck("leaky", "dx", dx);
		free(y); free(dx);
	}
	golden_pool("maxpool_3s2p1", 0, 3, 2, 1);
	golden_pool("maxpool_2s2", 0, 2, 2, 0);
	golden_pool("avgpool_3s2p1", 1, 3, 2, 1);
	golden_pool("avgpool_2s2", 1, 2, 2, 0);
	{
		Fix *x = getf("concat_pool", "x");
		int N = (int)x->dims[0], C = (int)x->dims[1];
		int HW = (int)(x->dims[2] * x->dims[3]);
		float *y = xcalloc((size_t)N * 2 * C, 4), *dx = xcalloc(x->n, 4);
		int32_t *am = xcalloc((size_t)N * C, 4);
		concat_pool_forward(N, C, HW, x->data, y, am);
		concat_pool_backward(N, C, HW, am, F32("concat_pool", "dy"), dx);
		gcheck("concat_pool", "y", y);
		gcheck("concat_pool", "dx", dx);
		free(y); free(dx); free(am);
	}
	{
		Fix *x = getf("global_avgpool", "x");
		int N = (int)x->dims[0], C = (int)x->dims[1];
		int HW = (int)(x->dims[2] * x->dims[3]);
		float *y = xcalloc((size_t)N * C, 4), *dx = xcalloc(x->n, 4);
		global_avgpool_forward(N, C, HW, x->data, y);
		global_avgpool_backward(N, C, HW, F32("global_avgpool", "dy"), dx);
		gcheck("global_avgpool", "y", y);
		gcheck("global_avgpool", "dx", dx);
		free(y); free(dx);
	}
	{
		Fix *a = getf("add", "a");
		float *y = xcalloc(a->n, 4);
		add_forward(a->n, a->data, F32("add", "b"), y);
		gcheck("add", "y", y);
		float *z = copyv(a->data, a->n);
		add_forward(a->n, z, F32("add", "b"), z);   // y aliases a
		gcheck("add", "y", z);
		free(y); free(z);
	}
	for (int ref = 0; ref < 2; ref++) {
		Fix *x = getf("linear", "x"), *w = getf("linear", "w");
		int N = (int)x->dims[0], I = (int)x->dims[1], O = (int)w->dims[0];
		float *y = xcalloc((size_t)N * O, 4), *dx = xcalloc(x->n, 4);
		float *dw = xcalloc(w->n, 4), *db = xcalloc(O, 4);
		(ref ? linear_forward_ref : linear_forward)(N, I, O, x->data, w->data,
		        F32("linear", "b"), y);
		(ref ? linear_backward_ref : linear_backward)(N, I, O, x->data, w->data,
		        F32("linear", "dy"), dx, dw, db);
		gcheck("linear", "y", y);
		gcheck("linear", "dx", dx);
		gcheck("linear", "dw", dw);
		gcheck("linear", "db", db);
		free(y); free(dx); free(dw); free(db);
	}
	{
		// PyTorch's mask, read back from its output, through our backward
		// and our scaling: same dx and y.
		Fix *x = getf("dropout", "x");
		const float *xv = x->data, *ty = F32("dropout", "y");
		uint8_t *mask = xmalloc(x->n);
		float *y = xcalloc(x->n, 4), *dx = xcalloc(x->n, 4);
		size_t kept = 0;
		for (size_t i = 0; i < x->n; i++) {
			mask[i] = ty[i] != 0.0f;
			kept += mask[i];
			y[i] = mask[i] ? xv[i] / (1.0f - 0.5f) : 0.0f;
		}
		gcheck("dropout", "y", y);
		dropout_backward(x->n, 0.5f, mask, F32("dropout", "dy"), dx);
		gcheck("dropout", "dx", dx);
		expect(kept > 400 && kept < 600, "golden dropout: torch kept ~half");
		free(mask); free(y); free(dx);
	}
	{
		Fix *x = getf("log_softmax", "x");
		int N = (int)x->dims[0], K = (int)x->dims[1];
		float *y = xcalloc(x->n, 4), *dx = xcalloc(x->n, 4);
		log_softmax_forward(N, K, x->data, y);
		log_softmax_backward(N, K, y, F32("log_softmax", "dy"), dx);
		gcheck("log_softmax", "y", y);
		gcheck("log_softmax", "dx", dx);
		free(y); free(dx);
	}
	{
		Fix *lp = getf("nll", "logp");
		int N = (int)lp->dims[0], K = (int)lp->dims[1];
		const int32_t *tg = getf("nll", "target")->data;
		float loss = nll_loss_forward(N, K, lp->data, tg);
		gcheck("nll", "loss", &loss);
		float *d = xcalloc(lp->n, 4);
		nll_loss_backward(N, K, tg, 0.7f, d);
		gcheck("nll", "dlogp", d);
		free(d);
	}
}

// ---- (c) properties ----------------------------------------------------

static void properties(void)
{
	Rng r, r2;
	rng_seed(&r, 5, 1);
	const size_t n = 100000;
	float *x = randv(&r, n), *y = xcalloc(n, 4), *y2 = xcalloc(n, 4);
	float *dy = randv(&r, n), *dx = xcalloc(n, 4);
	uint8_t *mask = xmalloc(n), *mask2 = xmalloc(n);
	const float ps[] = { 0.5f, 0.25f, 0.8f };
	for (int k = 0; k < 3; k++) {
		float p = ps[k];
		rng_seed(&r, 99, 3);
		dropout_forward(n, p, &r, x, y, mask);
		size_t kept = 0;
		int exact = 1;
		for (size_t i = 0; i < n; i++) {
			kept += mask[i];
			float want = mask[i] ? x[i] / (1.0f - p) : 0.0f;
			if (fabsf(y[i] - want) > 1e-6f * (1 + fabsf(want)))
				exact = 0;
		}
		double frac = (double)kept / n;
		char m[120];
		snprintf(m, sizeof m, "dropout p=%.2f: y = x*mask/(1-p)", p);
		expect(exact, m);
		// binomial sd = sqrt(p(1-p)/n) <= 0.0016; 0.01 is > 6 sd
		snprintf(m, sizeof m, "dropout p=%.2f: kept fraction %.4f near %.2f", p, frac, 1 - p);
		expect(fabs(frac - (1 - p)) < 0.01, m);
		dropout_backward(n, p, mask, dy, dx);
		int bok = 1;
		for (size_t i = 0; i < n; i++) {
			float want = mask[i] ? dy[i] / (1.0f - p) : 0.0f;
			if (fabsf(dx[i] - want) > 1e-6f * (1 + fabsf(want)))
				bok = 0;
		}
		snprintf(m, sizeof m, "dropout p=%.2f backward", p);
		expect(bok, m);
		rng_seed(&r2, 99, 3);
		dropout_forward(n, p, &r2, x, y2, mask2);
		expect(memcmp(mask, mask2, n) == 0, "dropout: same seed, same mask");
	}
	dropout_forward(n, 0.0f, &r, x, y, mask);
	expect(memcmp(x, y, n * 4) == 0, "dropout p=0 copies");
	// Eval batch norm with the running stats of a train step on one big
	// channel-constant input: the running mean moves by momentum.
	{
		float xb[2 * 3 * 4], g[3] = { 1, 1, 1 }, b[3] = { 0, 0, 0 };
		float rm[3] = { 0, 0, 0 }, rv[3] = { 1, 1, 1 }, sm[3], si[3], yb[24];
		for (int i = 0; i < 24; i++)
			xb[i] = (float)((i / 4) % 3) * 2.0f + (float)(i % 2);   // c*2 + {0,1}
		batchnorm_forward_train(2, 3, 4, xb, g, b, rm, rv, 0.1f, 1e-5f, sm, si, yb);
		// per channel c: values c*2 + {0,1,0,1,...}: mean c*2+0.5, biased var
		// 0.25, unbiased 0.25*8/7
		int ok = 1;
		for (int c = 0; c < 3; c++) {
			ok &= fabsf(rm[c] - 0.1f * (c * 2 + 0.5f)) < 1e-6f;
			ok &= fabsf(rv[c] - (0.9f + 0.1f * 0.25f * 8 / 7)) < 1e-6f;
			ok &= fabsf(si[c] - 1.0f / sqrtf(0.25f + 1e-5f)) < 1e-4f;
		}
		expect(ok, "batchnorm train: running stats, unbiased var, momentum");
	}
	free(x); free(y); free(y2); free(dy); free(dx); free(mask); free(mask2);
}

int main(void)
{
	const char *fix = getenv("CNNPIPE_OPS_FIXTURE");
	fast_vs_ref();
	golden(fix ? fix : "tests/fixtures/ops_golden.bin");
	properties();
	printf("test_ops: max abs err %.3g, max err/scale %.3g (tolerance %.0e)\n",
	       worst_abs, worst_scaled, TOL);
	printf("test_ops: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
