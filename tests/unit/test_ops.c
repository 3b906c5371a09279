// Tests of kernels/cpu/ops.h: (a) every fast path against its plain-loop
// reference on random shapes, (b) every op forward and backward against
// PyTorch golden values (tests/fixtures/ops_golden.stream, made by
// tests/gen_golden_ops.py), (c) properties (dropout semantics, accumulation).
//
// Tolerance: an array passes when max|got - want| <= TOL * max(1, max|want|)
// (TOL = 1e-4 against PyTorch and 1e-4 fast vs reference: fp32 sums of up to
// a few thousand terms in different orders differ by ~1e-6 relative, so 1e-4
// leaves room while any indexing bug gives O(1) errors).
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "kernels/cpu/ops.h"
#include "libcommon/util/rng.h"
#include "formats/stream.h"

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
	const char *pk = getenv("CNNPIPE_CONV_PACKED");
	snprintf(what, sizeof what, "conv N%d C%d %dx%d K%d %dx%d s%d p%d%s t%d%s%s",
	         N, C, H, W, K, R, S, stride, pad, bias ? " bias" : "", ops_threads(),
	         ops_winograd() ? "" : " gemm", pk && *pk == '0' ? " openblas" : "");
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
	// each image's outputs are the same bits whatever the batch it is in
	// (predictions of shards and of batch sizes agree byte for byte)
	int same = 1;
	linear_forward_fixed(N, I, O, x, w, b, y1);
	linear_forward_ref(N, I, O, x, w, b, y2);
	snprintf(m, sizeof m, "linear %dx%d->%d fwd, fixed order", N, I, O);
	check(m, y1, y2, (size_t)N * O, TOL);
	for (int n = 0; n < N; n++) {
		linear_forward_fixed(1, I, O, x + (size_t)n * I, w, b, y2);
		same &= memcmp(y2, y1 + (size_t)n * O, sizeof(float) * O) == 0;
	}
	snprintf(m, sizeof m, "linear %dx%d->%d: one image alone = in the batch", N, I, O);
	if (same) {
		passed++;
	} else {
		failed++;
		fprintf(stderr, "FAIL %s\n", m);
	}
	free(x); free(w); free(b); free(y1); free(y2); free(dy); free(dx1);
	free(dx2); free(dw1); free(dw2); free(db1); free(db2);
}

static void fast_vs_ref(void)
{
	Rng r;
	rng_seed(&r, 42, 7);
	// t = 1, 2 threads; t = 3: 2 threads with im2col + OpenBLAS forced in
	// place of the packed kernel (the default for every non-Winograd,
	// non-direct shape)
	for (int t = 1; t <= 3; t++) {
		ops_set_threads(t < 3 ? t : 2);
		if (t == 3)
			setenv("CNNPIPE_CONV_PACKED", "0", 1);
		conv_vs_ref(&r, 3, 3, 17, 15, 8, 7, 7, 2, 3, 1);   // stem-like, odd
		conv_vs_ref(&r, 1, 5, 9, 11, 7, 3, 3, 1, 1, 1);
		conv_vs_ref(&r, 3, 6, 10, 10, 4, 3, 3, 2, 1, 0);
		conv_vs_ref(&r, 2, 8, 7, 7, 16, 1, 1, 1, 0, 0);    // pointwise
		conv_vs_ref(&r, 3, 8, 9, 9, 6, 1, 1, 2, 0, 1);     // 1x1 stride 2
		conv_vs_ref(&r, 2, 4, 6, 5, 3, 2, 3, 1, 0, 1);     // non-square kernel
		conv_vs_ref(&r, 1, 2, 3, 3, 5, 5, 5, 1, 2, 1);     // kernel > image
		conv_vs_ref(&r, 4, 16, 8, 8, 24, 3, 3, 1, 1, 0);   // more images than threads
		conv_vs_ref(&r, 2, 3, 13, 13, 5, 3, 3, 3, 2, 1);   // stride 3
		// Winograd F(4x4,3x3) shapes: partial tiles, pad 0/2, many channels
		conv_vs_ref(&r, 3, 64, 7, 7, 32, 3, 3, 1, 1, 1);
		conv_vs_ref(&r, 2, 256, 14, 14, 16, 3, 3, 1, 1, 0);
		conv_vs_ref(&r, 1, 7, 13, 11, 9, 3, 3, 1, 0, 1);
		conv_vs_ref(&r, 2, 5, 9, 10, 6, 3, 3, 1, 2, 1);
		conv_vs_ref(&r, 1, 3, 4, 4, 2, 3, 3, 1, 1, 0);
		// the filter gradient in one chunk without dU (few tiles, many
		// channels: conv_winograd_dw.c), one of them with pad 0
		conv_vs_ref(&r, 2, 64, 14, 14, 64, 3, 3, 1, 1, 0);
		conv_vs_ref(&r, 3, 96, 9, 9, 40, 3, 3, 1, 0, 1);
		// streamed (16 to 64 input channels, 512 tiles or more): groups
		// across images, partial tiles, a last partial group
		conv_vs_ref(&r, 7, 16, 37, 35, 32, 3, 3, 1, 1, 0);
		conv_vs_ref(&r, 9, 32, 30, 30, 36, 3, 3, 1, 1, 1);
		conv_vs_ref(&r, 5, 48, 42, 41, 48, 3, 3, 1, 2, 1);
		conv_vs_ref(&r, 33, 64, 15, 15, 64, 3, 3, 1, 0, 0);
		conv_vs_ref(&r, 2, 128, 8, 8, 64, 3, 3, 1, 1, 1);   // one chunk, C > 64
		ops_set_winograd(0);   // the sgemm path on the same 3x3/1 shapes
		conv_vs_ref(&r, 3, 64, 7, 7, 32, 3, 3, 1, 1, 1);
		conv_vs_ref(&r, 1, 7, 13, 11, 9, 3, 3, 1, 0, 1);
		ops_set_winograd(1);
		// Direct path (C <= 4): 64-channel and 16-channel blocks, odd widths
		conv_vs_ref(&r, 2, 3, 23, 21, 64, 7, 7, 2, 3, 1);
		conv_vs_ref(&r, 3, 3, 13, 29, 16, 3, 3, 1, 1, 0);
		conv_vs_ref(&r, 1, 2, 11, 12, 48, 5, 5, 3, 2, 1);
		// stride 1 in rows of 48 columns (darknet's first layer): a full
		// block and a tail, exactly 48, a tail alone; 2 and 3 channel blocks
		conv_vs_ref(&r, 2, 3, 9, 61, 32, 3, 3, 1, 1, 1);
		conv_vs_ref(&r, 1, 3, 6, 48, 16, 3, 3, 1, 1, 0);
		conv_vs_ref(&r, 2, 4, 8, 7, 48, 3, 3, 1, 0, 1);
		conv_vs_ref(&r, 2, 4, 9, 7, 128, 3, 3, 2, 0, 0);
		conv_vs_ref(&r, 2, 3, 40, 37, 64, 7, 7, 2, 3, 1);   // rows of 19 outputs
		// the filter gradient of 3 channels, 3x3 stride 1 (conv_dw_c3.c):
		// pads 0 to 2, rows of a vector and a tail, more images than threads
		conv_vs_ref(&r, 3, 3, 10, 20, 8, 3, 3, 1, 2, 1);
		conv_vs_ref(&r, 5, 3, 7, 33, 16, 3, 3, 1, 0, 0);
		conv_vs_ref(&r, 1, 3, 3, 3, 4, 3, 3, 1, 1, 1);
		// Column blocks and Winograd chunks that start and end mid-row
		// and span images; K not a multiple of the kernel's 8 rows.
		setenv("CNNPIPE_CONV_COLS", "37", 1);
		setenv("CNNPIPE_WINO_TILES", "32", 1);
		conv_vs_ref(&r, 3, 3, 17, 15, 8, 7, 7, 2, 3, 1);
		conv_vs_ref(&r, 3, 8, 9, 9, 6, 1, 1, 2, 0, 1);
		conv_vs_ref(&r, 5, 8, 7, 6, 5, 1, 1, 1, 0, 1);    // pointwise, blocks span images
		conv_vs_ref(&r, 3, 6, 10, 10, 4, 3, 3, 2, 1, 0);
		conv_vs_ref(&r, 7, 9, 9, 11, 13, 3, 3, 1, 1, 1);  // 3x3 tiles each: chunks span images
		conv_vs_ref(&r, 2, 20, 30, 29, 19, 3, 3, 1, 0, 0);
		unsetenv("CNNPIPE_CONV_COLS");
		unsetenv("CNNPIPE_WINO_TILES");
		conv_vs_ref(&r, 2, 8, 40, 40, 8, 1, 1, 1, 0, 1);  // pointwise, whole images
		// the filter gradient's images past 2048 columns in equal parts
		// (2304: halves; 3136: halves, read in place), or whole where
		// no part of 512 or more divides them (2209 = 47 x 47)
		conv_vs_ref(&r, 2, 3, 96, 96, 8, 7, 7, 2, 3, 1);
		conv_vs_ref(&r, 2, 5, 56, 56, 6, 1, 1, 1, 0, 0);
		conv_vs_ref(&r, 1, 4, 47, 47, 5, 1, 1, 1, 0, 1);
		// ResNet18 at 32x32: maps of 2x2 and 1x1, column blocks of many
		// images in the filter gradient
		conv_vs_ref(&r, 9, 16, 2, 2, 32, 3, 3, 1, 1, 0);
		conv_vs_ref(&r, 9, 16, 1, 1, 32, 3, 3, 1, 1, 0);
		conv_vs_ref(&r, 9, 16, 2, 2, 32, 3, 3, 2, 1, 0);
		conv_vs_ref(&r, 9, 16, 4, 4, 32, 1, 1, 2, 0, 0);
		conv_vs_ref(&r, 9, 16, 4, 4, 32, 3, 3, 1, 1, 0);
		linear_vs_ref(&r, 1, 13, 5);
		linear_vs_ref(&r, 7, 33, 19);
		linear_vs_ref(&r, 64, 1024, 2);
		// outputs (and dx's columns) in parts to the threads
		linear_vs_ref(&r, 64, 1024, 512);
		linear_vs_ref(&r, 16, 200, 1000);
		// the generic filter gradient: one block of 98 columns, its 40
		// and 37 rows cut among the threads; 16 images of 196 columns in
		// 4 blocks of 4 images (6 a block would leave one thread 2 of 3)
		conv_vs_ref(&r, 2, 8, 14, 14, 40, 3, 3, 2, 1, 1);
		conv_vs_ref(&r, 2, 8, 14, 14, 37, 3, 3, 2, 1, 0);
		conv_vs_ref(&r, 16, 4, 28, 28, 8, 3, 3, 2, 1, 1);
		// packed shapes, odd widths
		conv_vs_ref(&r, 3, 5, 15, 13, 72, 3, 3, 2, 1, 1);
		conv_vs_ref(&r, 2, 9, 7, 9, 64, 3, 3, 2, 0, 0);
		conv_vs_ref(&r, 3, 24, 14, 14, 40, 1, 1, 1, 0, 1);   // pointwise, 196 per image
		conv_vs_ref(&r, 2, 16, 33, 35, 32, 1, 1, 1, 0, 0);
	}
	unsetenv("CNNPIPE_CONV_PACKED");
	ops_set_threads(1);
}

// The activation act (CONV_ACT_*) of the references below, slope 0.1 for
// leaky; a NaN stays NaN, as PyTorch's relu and leaky_relu.
static float ref_act(float v, int act)
{
	if (isnan(v) || act == CONV_ACT_NONE || v > 0)
		return v;
	return act == CONV_ACT_RELU ? 0.0f : 0.1f * v;
}

// conv2d_forward_fused = reference convolution, + res, then the activation.
static void conv_fused_vs_ref(Rng *r, int N, int C, int H, int W, int K, int R,
                              int stride, int pad, int with_res, int act)
{
	ConvShape s = conv_shape(N, C, H, W, K, R, R, stride, pad);
	size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * R * R,
	       ny = (size_t)N * K * s.P * s.Q;
	float *x = randv(r, nx), *w = randv(r, nw), *b = randv(r, K);
	float *res = with_res ? randv(r, ny) : NULL;
	float *y = randv(r, ny), *want = randv(r, ny);
	const float slope = 0.1f;
	conv2d_forward_ref(&s, x, w, b, want);
	for (size_t i = 0; i < ny; i++)
		want[i] = ref_act(want[i] + (res ? res[i] : 0.0f), act);
	ConvCache *c = conv_cache_new();
	conv2d_forward_fused(c, &s, x, w, b, res, act, slope, y);
	char m[200];
	snprintf(m, sizeof m, "conv fused N%d C%d %dx%d K%d %dx%d s%d p%d%s act%d t%d",
	         N, C, H, W, K, R, R, stride, pad, res ? " res" : "", act, ops_threads());
	check(m, y, want, ny, TOL);
	conv_cache_free(c);
	free(x); free(w); free(b); free(res); free(y); free(want);
}

// conv2d_forward_fused_maxpool2 = reference convolution, the activation,
// then maxpool2d_forward_ref (within TOL); and bit for bit the unfused fast
// path (conv2d_forward_fused, then maxpool2d_forward), NaNs too: a NaN
// input pixel (nan_at >= 0) spreads to the windows it reaches.
static void conv_pool_vs_ref(Rng *r, int N, int C, int H, int W, int K, int R,
                             int stride, int pad, int act, long nan_at)
{
	ConvShape s = conv_shape(N, C, H, W, K, R, R, stride, pad);
	PoolShape ps = pool_shape(N, K, s.P, s.Q, 2, 2, 0);
	size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * R * R,
	       ny = (size_t)N * K * s.P * s.Q, np = (size_t)N * K * ps.P * ps.Q;
	float *x = randv(r, nx), *w = randv(r, nw), *b = randv(r, K);
	float *full = randv(r, ny), *want = randv(r, np), *fast = randv(r, np),
	      *y = randv(r, np);
	if (nan_at >= 0)
		x[nan_at % (long)nx] = NAN;
	const float slope = 0.1f;
	conv2d_forward_ref(&s, x, w, b, full);
	for (size_t i = 0; i < ny; i++)
		full[i] = ref_act(full[i], act);
	maxpool2d_forward_ref(&ps, full, want, NULL);
	ConvCache *c = conv_cache_new();
	conv2d_forward_fused(c, &s, x, w, b, NULL, act, slope, full);
	maxpool2d_forward(&ps, full, fast, NULL);
	conv2d_forward_fused_maxpool2(c, &s, x, w, b, act, slope, y);
	char m[200];
	snprintf(m, sizeof m, "conv fused maxpool2 N%d C%d %dx%d K%d %dx%d s%d p%d act%d t%d%s",
	         N, C, H, W, K, R, R, stride, pad, act, ops_threads(), nan_at >= 0 ? " NaN" : "");
	check(m, y, want, np, TOL);
	strcat(m, ": = unfused, bit for bit");
	expect(memcmp(y, fast, np * sizeof(float)) == 0, m);
	conv_cache_free(c);
	free(x); free(w); free(b); free(full); free(want); free(fast); free(y);
}

static void conv_pool_tests(void)
{
	Rng r;
	rng_seed(&r, 23, 5);
	for (int t = 1; t <= 3; t++) {
		ops_set_threads(t < 3 ? t : 2);
		if (t == 3)
			setenv("CNNPIPE_CONV_PACKED", "0", 1);   // OpenBLAS
		for (int act = CONV_ACT_NONE; act <= CONV_ACT_LEAKY; act++) {
			conv_pool_vs_ref(&r, 3, 9, 14, 14, 13, 3, 1, 1, act, -1);   // Winograd, 14 = 3.5 tiles
			conv_pool_vs_ref(&r, 2, 16, 12, 10, 8, 3, 1, 1, act, -1);   // Winograd
			conv_pool_vs_ref(&r, 2, 3, 22, 50, 16, 3, 1, 1, act, -1);   // direct rows, 2-row tail
			conv_pool_vs_ref(&r, 1, 3, 8, 100, 32, 3, 1, 1, act, -1);   // direct rows, 3 column blocks
			conv_pool_vs_ref(&r, 2, 3, 10, 14, 64, 3, 1, 1, act, -1);   // direct, 64-channel blocks
			conv_pool_vs_ref(&r, 2, 3, 20, 20, 16, 7, 2, 3, act, -1);   // direct, stride 2
			conv_pool_vs_ref(&r, 3, 6, 8, 6, 16, 1, 1, 0, act, -1);     // packed: unfused inside
		}
		conv_pool_vs_ref(&r, 2, 9, 12, 12, 8, 3, 1, 1, CONV_ACT_LEAKY, 77);
		conv_pool_vs_ref(&r, 2, 3, 22, 50, 16, 3, 1, 1, CONV_ACT_LEAKY, 1234);
		conv_pool_vs_ref(&r, 2, 3, 10, 14, 64, 3, 1, 1, CONV_ACT_RELU, 99);
		unsetenv("CNNPIPE_CONV_PACKED");
	}
	ops_set_threads(1);
}

// conv2d_forward_fused_pointwise = the two conv2d_forward_fused one after
// the other, bit for bit (and the references within TOL): Winograd first
// layers with partial tiles, groups of fewer than 16 tiles, K2 not a
// multiple of 8, with and without the second bias; a first layer that is
// not Winograd runs unfused.
static void conv_pw_case(Rng *r, int N, int C, int H, int W, int K, int K2, int act,
                         int act2, int bias2)
{
	ConvShape s = conv_shape(N, C, H, W, K, 3, 3, 1, 1);
	ConvShape s2 = conv_shape(N, K, s.P, s.Q, K2, 1, 1, 1, 0);
	size_t nx = (size_t)N * C * H * W, nm = (size_t)N * K * s.P * s.Q,
	       ny = (size_t)N * K2 * s.P * s.Q;
	float *x = randv(r, nx), *w = randv(r, (size_t)K * C * 9), *b = randv(r, K);
	float *w2 = randv(r, (size_t)K2 * K), *b2 = bias2 ? randv(r, K2) : NULL;
	float *mid = randv(r, nm), *want = randv(r, ny), *y = randv(r, ny), *ref = randv(r, ny);
	ConvCache *c = conv_cache_new(), *c2 = conv_cache_new();
	conv2d_forward_fused(c, &s, x, w, b, NULL, act, 0.1f, mid);
	conv2d_forward_fused(c2, &s2, mid, w2, b2, NULL, act2, 0.1f, want);
	conv2d_forward_fused_pointwise(c, &s, x, w, b, act, 0.1f, c2, K2, w2, b2, act2, 0.1f, y);
	conv2d_forward_ref(&s, x, w, b, mid);
	for (size_t i = 0; i < nm; i++)
		mid[i] = ref_act(mid[i], act);
	conv2d_forward_ref(&s2, mid, w2, b2, ref);
	for (size_t i = 0; i < ny; i++)
		ref[i] = ref_act(ref[i], act2);
	char m[200];
	snprintf(m, sizeof m, "conv fused pointwise N%d C%d %dx%d K%d K2 %d act%d,%d%s t%d", N, C,
	         H, W, K, K2, act, act2, bias2 ? " bias2" : "", ops_threads());
	check(m, y, ref, ny, TOL);
	strcat(m, ": = unfused, bit for bit");
	expect(memcmp(y, want, ny * sizeof(float)) == 0, m);
	conv_cache_free(c);
	conv_cache_free(c2);
	free(x); free(w); free(b); free(w2); free(b2); free(mid); free(want); free(y); free(ref);
}

static void conv_pw_tests(void)
{
	Rng r;
	rng_seed(&r, 31, 6);
	for (int t = 1; t <= 3; t++) {
		ops_set_threads(t < 3 ? t : 2);
		if (t == 3)
			setenv("CNNPIPE_WINO_TILES", "32", 1);   // chunks that span images
		conv_pw_case(&r, 3, 16, 14, 14, 32, 16, CONV_ACT_LEAKY, CONV_ACT_LEAKY, 0);
		conv_pw_case(&r, 2, 9, 9, 10, 13, 5, CONV_ACT_RELU, CONV_ACT_NONE, 1);
		conv_pw_case(&r, 1, 8, 6, 7, 24, 20, CONV_ACT_NONE, CONV_ACT_RELU, 1);
		conv_pw_case(&r, 2, 3, 8, 8, 16, 8, CONV_ACT_LEAKY, CONV_ACT_LEAKY, 1);   // direct first
		unsetenv("CNNPIPE_WINO_TILES");
	}
	ops_set_threads(1);
}

// batchnorm_forward_train_act = batchnorm_forward_train, then relu_forward
// or leaky_relu_forward, bit for bit (outputs, running and saved statistics),
// in place too; rows of 16 and tails, 1 and 2 threads.
static void bn_act_case(Rng *r, int N, int C, int HW, int act, int inplace)
{
	size_t n = (size_t)N * C * HW;
	float *x = randv(r, n), *g = randv(r, C), *b = randv(r, C);
	float *rm1 = randv(r, C), *rv1 = randv(r, C), *sm1 = randv(r, C), *si1 = randv(r, C);
	for (int c = 0; c < C; c++)
		rv1[c] = fabsf(rv1[c]) + 0.5f;
	float *rm2 = copyv(rm1, C), *rv2 = copyv(rv1, C), *sm2 = copyv(sm1, C), *si2 = copyv(si1, C);
	float *y1 = randv(r, n), *y2 = inplace ? copyv(x, n) : randv(r, n);
	batchnorm_forward_train(N, C, HW, x, g, b, rm1, rv1, 0.1f, 1e-5f, sm1, si1, y1);
	if (act == CONV_ACT_RELU)
		relu_forward(n, y1, y1);
	else if (act == CONV_ACT_LEAKY)
		leaky_relu_forward(n, 0.1f, y1, y1);
	batchnorm_forward_train_act(N, C, HW, inplace ? y2 : x, g, b, rm2, rv2, 0.1f, 1e-5f,
	                            sm2, si2, act, 0.1f, y2);
	char m[160];
	snprintf(m, sizeof m, "batchnorm_forward_train_act N%d C%d HW%d act%d%s t%d: = "
	         "batch norm, then the activation", N, C, HW, act, inplace ? " in place" : "",
	         ops_threads());
	expect(!memcmp(y1, y2, n * sizeof(float)) && !memcmp(rm1, rm2, C * sizeof(float)) &&
	       !memcmp(rv1, rv2, C * sizeof(float)) && !memcmp(sm1, sm2, C * sizeof(float)) &&
	       !memcmp(si1, si2, C * sizeof(float)), m);
	free(x); free(g); free(b); free(rm1); free(rv1); free(sm1); free(si1);
	free(rm2); free(rv2); free(sm2); free(si2); free(y1); free(y2);
}

static void bn_act_tests(void)
{
	Rng r;
	rng_seed(&r, 29, 3);
	for (int t = 1; t <= 2; t++) {
		ops_set_threads(t);
		for (int act = CONV_ACT_NONE; act <= CONV_ACT_LEAKY; act++) {
			bn_act_case(&r, 3, 5, 37, act, 0);
			bn_act_case(&r, 2, 4, 64, act, 1);
			bn_act_case(&r, 5, 3, 1, act, 0);   // 1d
			bn_act_case(&r, 6, 77, 1, act, 1);  // 1d across the lanes, in place
		}
		// past 8 MiB: stored past the caches (aligned rows), or not
		bn_act_case(&r, 2, 16, 65600, CONV_ACT_LEAKY, 0);
		bn_act_case(&r, 2, 17, 61777, CONV_ACT_RELU, 1);
	}
	ops_set_threads(1);
}

// batchnorm_act_maxpool2_forward_train = batchnorm_forward_train_act, then
// maxpool2d_forward, bit for bit (pooled values, argmax, running and saved
// statistics), and within TOL of the references composed; its backward =
// maxpool2d_backward, then batchnorm_backward_train_act with the full-size
// activation (its sums in another order: within 1e-6), and its reference.
// Even maps (the vector paths, rows of 16 windows and tails) and odd ones
// (the last row and column in no window).
static void bn_pool_case(Rng *r, int N, int C, int H, int W, int act)
{
	PoolShape ps = pool_shape(N, C, H, W, 2, 2, 0);
	const int HW = H * W;
	size_t n = (size_t)N * C * HW, np = (size_t)N * C * ps.P * ps.Q;
	float *x = randv(r, n), *g = randv(r, C), *b = randv(r, C);
	float *rm1 = randv(r, C), *rv1 = randv(r, C);
	for (int c = 0; c < C; c++)
		rv1[c] = fabsf(rv1[c]) + 0.5f;
	float *rm2 = copyv(rm1, C), *rv2 = copyv(rv1, C), *rm3 = copyv(rm1, C), *rv3 = copyv(rv1, C);
	float *sm1 = randv(r, C), *si1 = randv(r, C), *sm2 = randv(r, C), *si2 = randv(r, C);
	float *sm3 = randv(r, C), *si3 = randv(r, C);
	float *z = randv(r, n), *y1 = randv(r, np), *y2 = randv(r, np), *y3 = randv(r, np);
	int32_t *a1 = xcalloc(np ? np : 1, 4), *a2 = xcalloc(np ? np : 1, 4);
	int32_t *a3 = xcalloc(np ? np : 1, 4);
	const float slope = act == CONV_ACT_LEAKY ? 0.1f : 0.0f;
	batchnorm_forward_train_act(N, C, HW, x, g, b, rm1, rv1, 0.1f, 1e-5f, sm1, si1,
	                            act, slope, z);
	maxpool2d_forward(&ps, z, y1, a1);
	batchnorm_act_maxpool2_forward_train(&ps, x, g, b, rm2, rv2, 0.1f, 1e-5f, sm2, si2,
	                                     act, slope, y2, a2);
	batchnorm_act_maxpool2_forward_train_ref(&ps, x, g, b, rm3, rv3, 0.1f, 1e-5f, sm3,
	                                         si3, act, slope, y3, a3);
	char m[192];
	snprintf(m, sizeof m, "batchnorm_act_maxpool2_forward_train N%d C%d %dx%d act%d t%d: "
	         "= batch norm + act, then the pool", N, C, H, W, act, ops_threads());
	expect(!memcmp(y1, y2, np * 4) && !memcmp(a1, a2, np * 4) &&
	       !memcmp(rm1, rm2, C * 4) && !memcmp(rv1, rv2, C * 4) &&
	       !memcmp(sm1, sm2, C * 4) && !memcmp(si1, si2, C * 4), m);
	snprintf(m, sizeof m, "batchnorm_act_maxpool2_forward_train_ref N%d C%d %dx%d act%d",
	         N, C, H, W, act);
	check(m, y2, y3, np, TOL);
	check(m, rv2, rv3, C, TOL);
	check(m, si2, si3, C, TOL);

	float *dy = randv(r, np), *g1 = randv(r, n), *dx1 = randv(r, n), *dx2 = randv(r, n);
	float *dx3 = randv(r, n);
	float *dg1 = randv(r, C), *db1 = randv(r, C);
	float *dg2 = copyv(dg1, C), *db2 = copyv(db1, C), *dg3 = copyv(dg1, C), *db3 = copyv(db1, C);
	maxpool2d_backward(&ps, a1, dy, g1);
	batchnorm_backward_train_act(N, C, HW, x, g, sm1, si1, z, slope, g1, dx1, dg1, db1);
	batchnorm_act_maxpool2_backward_train(&ps, x, g, sm2, si2, y2, a2, slope, dy, dx2,
	                                      dg2, db2);
	batchnorm_act_maxpool2_backward_train_ref(&ps, x, g, sm2, si2, y2, a2, slope, dy,
	                                          dx3, dg3, db3);
	snprintf(m, sizeof m, "batchnorm_act_maxpool2_backward_train N%d C%d %dx%d act%d t%d "
	         "vs unfused", N, C, H, W, act, ops_threads());
	check(m, dx2, dx1, n, 1e-6);
	check(m, dg2, dg1, C, 1e-6);
	check(m, db2, db1, C, 1e-6);
	snprintf(m, sizeof m, "batchnorm_act_maxpool2_backward_train_ref N%d C%d %dx%d act%d",
	         N, C, H, W, act);
	check(m, dx2, dx3, n, TOL);
	check(m, dg2, dg3, C, TOL);
	check(m, db2, db3, C, TOL);
	// dgamma alone (no dx, no dbeta asked) = with them; dx the same again
	float *dg4 = xcalloc((size_t)C, 4), *dg5 = xcalloc((size_t)C, 4);
	batchnorm_act_maxpool2_backward_train(&ps, x, g, sm2, si2, y2, a2, slope, dy, NULL,
	                                      dg4, NULL);
	batchnorm_act_maxpool2_backward_train(&ps, x, g, sm2, si2, y2, a2, slope, dy, dx3,
	                                      dg5, NULL);
	snprintf(m, sizeof m, "batchnorm_act_maxpool2_backward_train N%d C%d %dx%d: no dx, "
	         "and again", N, C, H, W);
	expect(!memcmp(dg4, dg5, C * 4) && !memcmp(dx3, dx2, n * 4), m);
	free(x); free(g); free(b); free(rm1); free(rv1); free(rm2); free(rv2); free(rm3);
	free(rv3); free(sm1); free(si1); free(sm2); free(si2); free(sm3); free(si3);
	free(z); free(y1); free(y2); free(y3); free(a1); free(a2); free(a3); free(dy);
	free(g1); free(dx1); free(dx2); free(dx3); free(dg1); free(db1); free(dg2);
	free(db2); free(dg3); free(db3); free(dg4); free(dg5);
}

static void bn_pool_tests(void)
{
	Rng r;
	rng_seed(&r, 31, 5);
	for (int t = 1; t <= 2; t++) {
		ops_set_threads(t);
		bn_pool_case(&r, 2, 3, 8, 8, CONV_ACT_LEAKY);
		bn_pool_case(&r, 3, 5, 12, 70, CONV_ACT_LEAKY);   // rows of 16 windows and a tail
		bn_pool_case(&r, 2, 4, 6, 64, CONV_ACT_RELU);    // exactly 2 x 16 windows
		bn_pool_case(&r, 1, 6, 9, 11, CONV_ACT_LEAKY);   // odd: the scalar path
		bn_pool_case(&r, 4, 2, 2, 2, CONV_ACT_RELU);     // one window per plane
		bn_pool_case(&r, 2, 3, 7, 10, CONV_ACT_RELU);    // odd rows only
		// past 8 MiB: dx stored past the caches where a vector is whole
		// and aligned (rows of 250 floats: not every one is)
		bn_pool_case(&r, 2, 17, 256, 250, t == 1 ? CONV_ACT_LEAKY : CONV_ACT_RELU);
	}
	ops_set_threads(1);
}

// conv with batch norm folded in = batch norm (eval) after the conv
static void conv_fold_bn_test(void)
{
	Rng r;
	rng_seed(&r, 8, 8);
	ConvShape s = conv_shape(2, 6, 9, 9, 10, 3, 3, 1, 1);
	size_t nx = (size_t)2 * 6 * 81, nw = (size_t)10 * 54, ny = (size_t)2 * 10 * 81;
	float *x = randv(&r, nx), *w = randv(&r, nw), *b = randv(&r, 10);
	float g[10], be[10], mu[10], var[10], wf[10 * 54], bf[10];
	for (int k = 0; k < 10; k++) {
		g[k] = 0.5f + rng_uniform(&r);
		be[k] = rng_normal(&r);
		mu[k] = rng_normal(&r);
		var[k] = 0.1f + rng_uniform(&r);
	}
	float *y = randv(&r, ny), *want = randv(&r, ny);
	for (int withb = 0; withb <= 1; withb++) {
		conv2d_forward_ref(&s, x, w, withb ? b : NULL, want);
		batchnorm_forward_eval(2, 10, 81, want, g, be, mu, var, 1e-5f, want);
		conv_fold_batchnorm(10, 54, w, withb ? b : NULL, g, be, mu, var, 1e-5f, wf, bf);
		conv2d_forward(&s, x, wf, bf, y);
		check(withb ? "conv fold batchnorm, bias" : "conv fold batchnorm", y, want, ny, TOL);
	}
	free(x); free(w); free(b); free(y); free(want);
}

static void conv_fused_tests(void)
{
	conv_fold_bn_test();
	Rng r;
	rng_seed(&r, 21, 4);
	for (int t = 1; t <= 3; t++) {
		ops_set_threads(t < 3 ? t : 2);
		if (t == 3)
			setenv("CNNPIPE_CONV_PACKED", "0", 1);   // OpenBLAS
		for (int act = CONV_ACT_NONE; act <= CONV_ACT_LEAKY; act++)
			for (int res = 0; res <= 1; res++) {
				conv_fused_vs_ref(&r, 3, 9, 10, 11, 13, 3, 1, 1, res, act);   // Winograd, partial tiles
				conv_fused_vs_ref(&r, 2, 3, 19, 17, 64, 7, 2, 3, res, act);   // direct
				conv_fused_vs_ref(&r, 2, 3, 11, 37, 16, 3, 1, 1, res, act);   // direct rows
				conv_fused_vs_ref(&r, 3, 5, 9, 9, 40, 3, 2, 1, res, act);     // packed
				conv_fused_vs_ref(&r, 3, 6, 7, 8, 16, 1, 1, 0, res, act);     // packed, 16 channels
			}
		unsetenv("CNNPIPE_CONV_PACKED");
	}
	ops_set_threads(1);
}

// conv2d_forward_cached: same as uncached; reused while the weights are
// the same; recomputed after invalidate, for new weights or a new shape.
static void conv_cache_tests(void)
{
	Rng r;
	rng_seed(&r, 11, 2);
	ops_set_threads(2);
	ConvShape s = conv_shape(3, 12, 9, 10, 10, 3, 3, 1, 1);
	size_t nx = (size_t)3 * 12 * 90, nw = (size_t)10 * 12 * 9, ny = (size_t)3 * 10 * 90;
	float *x = randv(&r, nx), *w = randv(&r, nw), *w2 = randv(&r, nw), *b = randv(&r, 10);
	float *y = randv(&r, ny), *want = randv(&r, ny), *old = randv(&r, ny);
	ConvCache *c = conv_cache_new();
	conv2d_forward_ref(&s, x, w, b, want);
	conv2d_forward_cached(c, &s, x, w, b, y);
	check("conv cache: first call", y, want, ny, TOL);
	conv2d_forward_cached(c, &s, x, w, b, y);
	check("conv cache: second call", y, want, ny, TOL);
	memcpy(old, y, ny * sizeof(float));
	float *wsave = copyv(w, nw);
	memcpy(w, w2, nw * sizeof(float));   // weights changed in place...
	conv2d_forward_cached(c, &s, x, w, b, y);
	expect(memcmp(y, old, ny * sizeof(float)) == 0,
	       "conv cache: in-place change without invalidate keeps the cached filters");
	conv_cache_invalidate(c);            // ...and announced
	conv2d_forward_ref(&s, x, w, b, want);
	conv2d_forward_cached(c, &s, x, w, b, y);
	check("conv cache: after invalidate", y, want, ny, TOL);
	conv2d_forward_ref(&s, x, wsave, b, want);   // other weights: other pointer
	conv2d_forward_cached(c, &s, x, wsave, b, y);
	check("conv cache: new weight pointer", y, want, ny, TOL);
	// the same pointer for another layer shape (K 10 -> 6, C 12 -> 20)
	ConvShape s2 = conv_shape(2, 20, 8, 8, 6, 3, 3, 1, 1);
	float *x2 = randv(&r, (size_t)2 * 20 * 64), *y2 = randv(&r, (size_t)2 * 6 * 64);
	float *want2 = randv(&r, (size_t)2 * 6 * 64);
	conv2d_forward_ref(&s2, x2, wsave, NULL, want2);
	conv2d_forward_cached(c, &s2, x2, wsave, NULL, y2);
	check("conv cache: new shape", y2, want2, (size_t)2 * 6 * 64, TOL);
	// non-Winograd shapes and NULL caches go through too
	ConvShape s3 = conv_shape(2, 12, 9, 10, 10, 3, 3, 2, 1);
	conv2d_forward_ref(&s3, x, w, b, want);
	conv2d_forward_cached(c, &s3, x, w, b, y);
	check("conv cache: stride 2", y, want, (size_t)2 * 10 * s3.P * s3.Q, TOL);
	conv2d_forward_ref(&s, x, w, b, want);
	conv2d_forward_cached(NULL, &s, x, w, b, y);
	check("conv cache: NULL cache", y, want, ny, TOL);
	conv_cache_free(c);
	conv_cache_free(NULL);
	conv_cache_invalidate(NULL);
	free(x); free(w); free(w2); free(b); free(y); free(want); free(old);
	free(wsave); free(x2); free(y2); free(want2);
	ops_set_threads(1);
}

// Two callers at once: the second gets private scratch memory.
typedef struct { ConvShape s; const float *x, *w; float *y; } ConcArg;

static void *conc_run(void *p)
{
	ConcArg *a = p;
	for (int i = 0; i < 20; i++)
		conv2d_forward(&a->s, a->x, a->w, NULL, a->y);
	return NULL;
}

static void conv_concurrent(void)
{
	Rng r;
	rng_seed(&r, 3, 3);
	ops_set_threads(2);
	ConcArg a[2];
	float *want[2];
	for (int i = 0; i < 2; i++) {
		a[i].s = conv_shape(2, 8 + i, 12, 12, 8, 3, 3, 1 + i, 1);
		size_t ny = (size_t)2 * 8 * a[i].s.P * a[i].s.Q;
		a[i].x = randv(&r, (size_t)2 * (8 + i) * 144);
		a[i].w = randv(&r, (size_t)8 * (8 + i) * 9);
		a[i].y = xcalloc(ny, sizeof(float));
		want[i] = xcalloc(ny, sizeof(float));
		conv2d_forward_ref(&a[i].s, a[i].x, a[i].w, NULL, want[i]);
	}
	pthread_t t;
	if (pthread_create(&t, NULL, conc_run, &a[1]) != 0) {
		expect(0, "conv concurrent: start thread");
		return;
	}
	conc_run(&a[0]);
	pthread_join(t, NULL);
	for (int i = 0; i < 2; i++) {
		check(i ? "conv concurrent: stride 2" : "conv concurrent: Winograd", a[i].y,
		      want[i], (size_t)2 * 8 * a[i].s.P * a[i].s.Q, TOL);
		free((void *)a[i].x); free((void *)a[i].w); free(a[i].y); free(want[i]);
	}
	ops_set_threads(1);
}

// ---- (b) golden fixtures -------------------------------------------------

// The fixture: one record of tensors named "<case>.<tensor>".
typedef Tensor Fix;
static Record fixrec;

static int load_fixtures(const char *path)
{
	Stream *st = stream_open_read(path);
	if (!st) {
		printf("FAIL %s\n", stream_last_error());
		return 0;
	}
	record_init(&fixrec);
	int rc = stream_read_record(st, &fixrec);
	if (rc != 1)
		printf("FAIL %s\n", rc < 0 ? stream_error(st) : "no record");
	stream_close(st);
	return rc == 1 ? 1 : -1;
}

static Fix *getf(const char *cs, const char *k)
{
	char name[80];
	snprintf(name, sizeof name, "%s.%s", cs, k);
	return record_find(&fixrec, name);
}

// Number of elements, as the tests use it.
#define NEL(t) ((size_t)tensor_numel(t))

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
	check(m, got, t->data, NEL(t), TOL);
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
	size_t ny = NEL(getf(cs, "y"));
	float *y = xcalloc(ny, 4), *dx = xcalloc(NEL(x), 4), *dw = xcalloc(NEL(w), 4);
	float *db = xcalloc(s.K, 4);
	for (int ref = 0; ref < 2; ref++) {
		char name[40];
		snprintf(name, sizeof name, "%s%s", cs, ref ? "(ref)" : "");
		memset(dw, 0, NEL(w) * 4);
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
	float *sm = xcalloc(C, 4), *si = xcalloc(C, 4), *y = xcalloc(NEL(x), 4);
	float *dx = xcalloc(NEL(x), 4), *dg = xcalloc(C, 4), *dbt = xcalloc(C, 4);
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
	size_t ny = NEL(getf(cs, "y"));
	expect(ny == (size_t)s.N * s.C * s.P * s.Q, "pool_shape matches PyTorch");
	if (ny != (size_t)s.N * s.C * s.P * s.Q)
		return;
	float *y = xcalloc(ny, 4), *dx = xcalloc(NEL(x), 4);
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
	if (ok <= 0) {
		printf("FAIL cannot read %s (make it with tests/gen_golden_ops.py)\n", path);
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
		float *y = xcalloc(NEL(x), 4), *dx = xcalloc(NEL(x), 4);
		relu_forward(NEL(x), x->data, y);
		relu_backward(NEL(x), y, F32("relu", "dy"), dx);
		gcheck("relu", "y", y);
		gcheck("relu", "dx", dx);
		// in place
		float *z = copyv(x->data, NEL(x));
		relu_forward(NEL(x), z, z);
		gcheck("relu", "y", z);
		free(y); free(dx); free(z);
	}
	{
		Fix *x = getf("leaky", "x");
		float *y = xcalloc(NEL(x), 4), *dx = xcalloc(NEL(x), 4);
		leaky_relu_forward(NEL(x), 0.1f, x->data, y);
		leaky_relu_backward(NEL(x), 0.1f, x->data, F32("leaky", "dy"), dx);
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
		float *y = xcalloc((size_t)N * 2 * C, 4), *dx = xcalloc(NEL(x), 4);
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
		float *y = xcalloc((size_t)N * C, 4), *dx = xcalloc(NEL(x), 4);
		global_avgpool_forward(N, C, HW, x->data, y);
		global_avgpool_backward(N, C, HW, F32("global_avgpool", "dy"), dx);
		gcheck("global_avgpool", "y", y);
		gcheck("global_avgpool", "dx", dx);
		free(y); free(dx);
	}
	{
		Fix *a = getf("add", "a");
		float *y = xcalloc(NEL(a), 4);
		add_forward(NEL(a), a->data, F32("add", "b"), y);
		gcheck("add", "y", y);
		float *z = copyv(a->data, NEL(a));
		add_forward(NEL(a), z, F32("add", "b"), z);   // y aliases a
		gcheck("add", "y", z);
		free(y); free(z);
	}
	for (int ref = 0; ref < 2; ref++) {
		Fix *x = getf("linear", "x"), *w = getf("linear", "w");
		int N = (int)x->dims[0], I = (int)x->dims[1], O = (int)w->dims[0];
		float *y = xcalloc((size_t)N * O, 4), *dx = xcalloc(NEL(x), 4);
		float *dw = xcalloc(NEL(w), 4), *db = xcalloc(O, 4);
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
		uint8_t *mask = xmalloc(NEL(x));
		float *y = xcalloc(NEL(x), 4), *dx = xcalloc(NEL(x), 4);
		size_t kept = 0;
		for (size_t i = 0; i < NEL(x); i++) {
			mask[i] = ty[i] != 0.0f;
			kept += mask[i];
			y[i] = mask[i] ? xv[i] / (1.0f - 0.5f) : 0.0f;
		}
		gcheck("dropout", "y", y);
		dropout_backward(NEL(x), 0.5f, mask, F32("dropout", "dy"), dx);
		gcheck("dropout", "dx", dx);
		expect(kept > 400 && kept < 600, "golden dropout: torch kept ~half");
		free(mask); free(y); free(dx);
	}
	{
		Fix *x = getf("log_softmax", "x");
		int N = (int)x->dims[0], K = (int)x->dims[1];
		float *y = xcalloc(NEL(x), 4), *dx = xcalloc(NEL(x), 4);
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
		float *d = xcalloc(NEL(lp), 4);
		nll_loss_backward(N, K, tg, 0.7f, d);
		gcheck("nll", "dlogp", d);
		free(d);
	}
}

// ---- (c) properties ----------------------------------------------------

// maxpool2d_forward without argmax (the vectorised eval path) gives
// exactly the values of the path with argmax (the plain loop): ties of
// -0 and +0 (the first wins), NaNs (the first wins), windows past x.
// relu, leaky and add forward (vector loops with masked tails) against the
// scalar formulas, out of place and in place, NaNs and signed zeros included
static void activation_values(void)
{
	Rng r;
	rng_seed(&r, 5, 9);
	const size_t n = 100003;
	float *x = randv(&r, n), *x2 = randv(&r, n), *y = randv(&r, n), *z = randv(&r, n);
	for (size_t i = 0; i < n; i += 97)
		x[i] = (i / 97) % 3 == 0 ? NAN : (i / 97) % 3 == 1 ? -0.0f : 0.0f;
	for (int t = 1; t <= 2; t++) {
		ops_set_threads(t);
		int ok = 1, okl = 1, oka = 1, inplace = 1;
		relu_forward(n, x, y);
		for (size_t i = 0; i < n; i++) {
			float w = x[i] > 0.0f ? x[i] : 0.0f;
			ok &= memcmp(&w, &y[i], 4) == 0;
		}
		leaky_relu_forward(n, 0.1f, x, y);
		for (size_t i = 0; i < n; i++) {
			float w = x[i] > 0.0f ? x[i] : x[i] * 0.1f;
			okl &= memcmp(&w, &y[i], 4) == 0 || (isnan(w) && isnan(y[i]));
		}
		add_forward(n, x, x2, y);
		for (size_t i = 0; i < n; i++) {
			float w = x[i] + x2[i];
			oka &= memcmp(&w, &y[i], 4) == 0 || (isnan(w) && isnan(y[i]));
		}
		memcpy(z, x, n * 4);
		leaky_relu_forward(n, 0.1f, z, z);
		leaky_relu_forward(n, 0.1f, x, y);
		inplace &= memcmp(z, y, n * 4) == 0;
		memcpy(z, x, n * 4);
		relu_forward(n, z, z);
		relu_forward(n, x, y);
		inplace &= memcmp(z, y, n * 4) == 0;
		expect(ok, "relu_forward = (x > 0 ? x : 0) bit for bit");
		expect(okl, "leaky_relu_forward = (x > 0 ? x : 0.1x)");
		expect(oka, "add_forward = a + b");
		expect(inplace, "relu/leaky in place = out of place");
	}
	ops_set_threads(1);
	free(x); free(x2); free(y); free(z);
}

static void maxpool_paths(void)
{
	Rng r;
	rng_seed(&r, 77, 1);
	struct { int H, W, k, st, pad, P, Q; } sh[] = {
		{ 224, 224, 2, 2, 0, 0, 0 },   // Tiny Darknet
		{ 112, 112, 3, 2, 1, 0, 0 },   // ResNet's stem pool
		{ 13, 600, 3, 1, 1, 0, 0 },    // rows longer than a pass (256)
		{ 9, 11, 2, 1, 0, 0, 0 },
		{ 7, 7, 2, 2, 0, 4, 4 },       // darknet's rule: windows past x
		{ 5, 6, 3, 3, 2, 3, 3 },       // windows wholly in the padding
	};
	for (int t = 1; t <= 2; t++) {
		ops_set_threads(t);
		for (size_t i = 0; i < sizeof sh / sizeof sh[0]; i++) {
			PoolShape s = pool_shape(3, 2, sh[i].H, sh[i].W, sh[i].k, sh[i].st, sh[i].pad);
			if (sh[i].P) {
				s.P = sh[i].P;
				s.Q = sh[i].Q;
			}
			size_t nx = (size_t)3 * 2 * s.H * s.W, ny = (size_t)3 * 2 * s.P * s.Q;
			float *x = randv(&r, nx), *y1 = randv(&r, ny), *y2 = randv(&r, ny);
			int32_t *am = xmalloc_array(ny, sizeof(int32_t));
			for (size_t e = 0; e < nx; e++) {   // ties, signed zeros, NaNs
				uint32_t u = rng_u32(&r) % 100;
				if (u < 20)
					x[e] = (float)(int)(x[e] * 2);
				else if (u < 25)
					x[e] = (u & 1) ? 0.0f : -0.0f;
				else if (u == 25)
					x[e] = NAN;
				else if (u == 26)
					x[e] = -NAN;
			}
			maxpool2d_forward(&s, x, y1, NULL);
			maxpool2d_forward(&s, x, y2, am);
			char m[120];
			snprintf(m, sizeof m, "maxpool %dx%d k%d s%d p%d -> %dx%d t%d: eval path == argmax path",
			         s.H, s.W, s.k, s.stride, s.pad, s.P, s.Q, t);
			expect(memcmp(y1, y2, ny * sizeof(float)) == 0, m);
			free(x); free(y1); free(y2); free(am);
		}
	}
	ops_set_threads(1);
}

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
	conv_cache_tests();
	conv_fused_tests();
	conv_pool_tests();
	bn_act_tests();
	bn_pool_tests();
	conv_pw_tests();
	conv_concurrent();
	golden(fix ? fix : "tests/fixtures/ops_golden.stream");
	record_free(&fixrec);
	properties();
	maxpool_paths();
	activation_values();
	printf("test_ops: max abs err %.3g, max err/scale %.3g (tolerance %.0e)\n",
	       worst_abs, worst_scaled, TOL);
	printf("test_ops: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
