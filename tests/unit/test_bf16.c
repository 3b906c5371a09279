// Tests of the bfloat16 products (kernels/cpu/bf16.c, ops_set_bf16): the
// rounding against its definition, each kernel against its plain loop, the
// repacking of filters and inputs, and the Winograd convolutions in bf16
// against the double-free f32 reference within bf16's error, with the same
// bytes on 1 and 2 threads.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/ops_internal.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/rng.h"

static float *randv(Rng *r, size_t n)
{
	float *v = xmalloc_array(n ? n : 1, sizeof(float));
	for (size_t i = 0; i < n; i++)
		v[i] = rng_normal(r);
	return v;
}

static uint16_t *randh(Rng *r, size_t n)
{
	uint16_t *h = xmalloc_array(n ? n : 1, sizeof(uint16_t));
	for (size_t i = 0; i < n; i++)
		h[i] = ops_bf16_round(rng_normal(r));
	return h;
}

static float bits_float(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

// Round to nearest even by the definition (not the bit trick): the two
// neighbours in bf16, the nearer, on a tie the even one.
static uint16_t round_by_definition(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	if ((u & 0x7f800000u) == 0)
		return (uint16_t)((u >> 16) & 0x8000u);
	if (isnan(f))
		return (uint16_t)((u >> 16) | 0x40u);
	uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
	double d = f, a = ops_bf16_float(lo), b = ops_bf16_float(hi);
	if (isinf(f))
		return lo;
	if (isinf(b))   // past the largest finite: rounds to infinity at the half
		return fabs(d - a) < fabs(a) * (1.0 / 512) ? lo : hi;
	double ea = fabs(d - a), eb = fabs(d - b);
	return ea < eb ? lo : eb < ea ? hi : (lo & 1) ? hi : lo;
}

static void rounding_tests(Rng *r)
{
	int bad = 0, bad_vec = 0;
	enum { N = 1 << 16 };
	float *x = xmalloc_array(N, sizeof(float));
	uint16_t *h = xmalloc_array(N, sizeof(uint16_t));
	for (int i = 0; i < N; i++) {
		uint32_t u = rng_u32(r);
		if (i % 4 == 1)   // ties and near-ties
			u = (u & 0xffff0000u) | (i % 8 == 1 ? 0x8000u : 0x7fffu);
		if (i % 64 == 2)  // denormals
			u &= 0x807fffffu;
		if (i % 64 == 3)  // NaNs and infinities
			u |= 0x7f800000u;
		x[i] = bits_float(u);
	}
	for (int i = 0; i < N; i++)
		bad += ops_bf16_round(x[i]) != round_by_definition(x[i]);
	ops_f32_to_bf16(x, N, h);   // the vector path, where there is one
	for (int i = 0; i < N; i++)
		bad_vec += h[i] != ops_bf16_round(x[i]);
	check_msg(!bad, "ops_bf16_round: %d of %d differ from the definition", bad, N);
	check_msg(!bad_vec, "ops_f32_to_bf16: %d of %d differ from ops_bf16_round", bad_vec, N);
	CHECK(ops_bf16_round(1.0f) == 0x3f80 && ops_bf16_float(0x3f80) == 1.0f);
	CHECK(ops_bf16_round(bits_float(0x3f808000u)) == 0x3f80);   // tie to even
	CHECK(ops_bf16_round(bits_float(0x3f818000u)) == 0x3f82);
	float lo[16], hi[16];
	uint16_t p[32];
	for (int l = 0; l < 16; l++)
		lo[l] = rng_normal(r), hi[l] = rng_normal(r);
	wino_pair_bf16(lo, hi, p);
	int pb = 0;
	for (int l = 0; l < 16; l++)
		pb += p[2 * l] != ops_bf16_round(lo[l]) || p[2 * l + 1] != ops_bf16_round(hi[l]);
	check_msg(!pb, "wino_pair_bf16: %d of 16 pairs wrong", pb);
	free(x);
	free(h);
}

static void kernel_tests(Rng *r)
{
	// ops_gemm_8x32_bf16 against its loop: rows of a stride wider than 64
	const int C2s[] = { 1, 3, 64, 257 };
	for (size_t q = 0; q < sizeof C2s / sizeof *C2s; q++) {
		int C2 = C2s[q];
		size_t ldv = 80, ldm = 40;
		uint16_t *u = randh(r, (size_t)C2 * 16), *v = randh(r, (size_t)C2 * ldv);
		float *m1 = randv(r, 8 * ldm), *m2 = randv(r, 8 * ldm);
		memcpy(m2, m1, sizeof(float) * 8 * ldm);
		for (int acc = 0; acc < 2; acc++) {   // (=), then (+=) onto it
			ops_gemm_8x32_bf16(C2, u, v, ldv, m1, ldm, acc);
			ops_gemm_8x32_bf16_ref(C2, u, v, ldv, m2, ldm, acc);
			double d = check_rel_diff(m1, m2, 8 * ldm, NULL);
			check_msg(d <= 1e-5, "ops_gemm_8x32_bf16 C2 %d acc %d: rel diff %.3g",
			          C2, acc, d);
		}
		free(u), free(v), free(m1), free(m2);
	}
	// ops_dot4x4_bf16 (accumulating) and ops_gemm_nt_bf16 with edges
	const int ns[] = { 32, 64, 96, 1024, 48 };
	for (size_t q = 0; q < sizeof ns / sizeof *ns; q++) {
		int n = ns[q];
		size_t ld = (size_t)n + 32;
		uint16_t *a = randh(r, 4 * ld), *b = randh(r, 4 * ld);
		float *c1 = randv(r, 4 * 6), *c2 = xmalloc_array(24, sizeof(float));
		memcpy(c2, c1, sizeof(float) * 24);
		ops_dot4x4_bf16(n, a, ld, b, ld, c1, 6);
		ops_dot4x4_bf16_ref(n, a, ld, b, ld, c2, 6);
		double d = check_rel_diff(c1, c2, 24, NULL);
		check_msg(d <= 1e-5, "ops_dot4x4_bf16 n %d: rel diff %.3g", n, d);
		free(a), free(b), free(c1), free(c2);
	}
	const int MN[][2] = { { 4, 4 }, { 13, 7 }, { 3, 9 }, { 16, 32 } };
	for (size_t q = 0; q < sizeof MN / sizeof *MN; q++) {
		int M = MN[q][0], N = MN[q][1], n = 64;
		uint16_t *A = randh(r, (size_t)M * n), *B = randh(r, (size_t)N * n);
		float *C1 = randv(r, (size_t)M * N), *C2 = xmalloc_array((size_t)M * N, sizeof(float));
		for (int i = 0; i < M; i++)
			for (int j = 0; j < N; j++) {
				double s = C1[i * N + j];
				for (int t = 0; t < n; t++)
					s += (double)ops_bf16_float(A[i * n + t]) * ops_bf16_float(B[j * n + t]);
				C2[i * N + j] = (float)s;
			}
		ops_gemm_nt_bf16(M, N, n, A, n, B, n, C1, N);
		double d = check_rel_diff(C1, C2, (size_t)M * N, NULL);
		check_msg(d <= 1e-5, "ops_gemm_nt_bf16 %dx%d: rel diff %.3g", M, N, d);
		free(A), free(B), free(C1), free(C2);
	}
	// ops_pack_pairs: 24 rows of 48 in blocks of 8, 64 rows in blocks of 32
	const int PK[][3] = { { 24, 48, 8 }, { 64, 32, 32 } };
	for (size_t q = 0; q < 2; q++) {
		int rows = PK[q][0], n = PK[q][1], blk = PK[q][2], bad = 0;
		uint16_t *src = randh(r, (size_t)rows * n);
		uint16_t *dst = xmalloc_array((size_t)rows * n, sizeof(uint16_t));
		ops_pack_pairs(src, rows, n, blk, dst);
		for (int row = 0; row < rows; row++)
			for (int t = 0; t < n; t++)
				bad += dst[(((size_t)(row / blk) * (n / 2) + t / 2) * blk + row % blk) * 2 + t % 2]
				       != src[(size_t)row * n + t];
		check_msg(!bad, "ops_pack_pairs %dx%d blocks of %d: %d wrong", rows, n, blk, bad);
		free(src), free(dst);
	}
	// the filters' pairs, odd C and K
	int K = 13, C = 7, K8 = 16, C2 = 4;
	float *U = randv(r, (size_t)36 * K8 * C);
	uint16_t *Ub = xmalloc_array(wino_filter_bf16_halfs(K, C), sizeof(uint16_t));
	CHECK(wino_filter_bf16_halfs(K, C) == (size_t)36 * K8 * C2 * 2);
	wino_filter_to_bf16(K, C, U, Ub);
	int bad = 0;
	for (int xi = 0; xi < 36; xi++)
		for (int kb = 0; kb < K8 / 8; kb++)
			for (int c = 0; c < 2 * C2; c++)
				for (int i = 0; i < 8; i++) {
					size_t blk = (size_t)xi * (K8 / 8) + kb;
					uint16_t want = c < C ? ops_bf16_round(U[(blk * C + c) * 8 + i]) : 0;
					bad += Ub[blk * C2 * 16 + (c / 2) * 16 + i * 2 + c % 2] != want;
				}
	check_msg(!bad, "wino_filter_to_bf16 K13 C7: %d values wrong", bad);
	free(U), free(Ub);
}

// sqrt(mean (a - b)^2) / sqrt(mean b^2)
static double rms_rel(const float *a, const float *b, size_t n)
{
	double e = 0, w = 0;
	for (size_t i = 0; i < n; i++) {
		double d = (double)a[i] - b[i];
		e += d * d;
		w += (double)b[i] * b[i];
	}
	return w > 0 ? sqrt(e / w) : sqrt(e);
}

// The Winograd convolution in bf16 against the f32 reference; the f32
// path's error for scale; 1 and 2 threads bit for bit.
static void conv_tests(Rng *r, int N, int C, int H, int W, int K, int pad)
{
	ConvShape s = conv_shape(N, C, H, W, K, 3, 3, 1, pad);
	size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * 9, ny = (size_t)N * K * s.P * s.Q;
	float *x = randv(r, nx), *w = randv(r, nw), *dy = randv(r, ny);
	float *yr = xmalloc_array(ny, sizeof(float)), *y32 = xmalloc_array(ny, sizeof(float));
	float *dxr = xmalloc_array(nx, sizeof(float)), *dwr = xcalloc(nw, sizeof(float));
	float *dbr = xcalloc((size_t)K, sizeof(float));
	conv2d_forward_ref(&s, x, w, NULL, yr);
	conv2d_backward_ref(&s, x, w, dy, dxr, dwr, dbr);
	ops_set_bf16(0);
	conv2d_forward(&s, x, w, NULL, y32);
	float *y[2], *dx[2], *dw[2], *db[2];
	for (int t = 0; t < 2; t++) {
		ops_set_threads(t + 1);
		ops_set_bf16(1);
		y[t] = xmalloc_array(ny, sizeof(float));
		dx[t] = xmalloc_array(nx, sizeof(float));
		dw[t] = xcalloc(nw, sizeof(float));
		db[t] = xcalloc((size_t)K, sizeof(float));
		conv2d_forward(&s, x, w, NULL, y[t]);
		conv2d_backward(&s, x, w, dy, dx[t], dw[t], db[t]);
		ops_set_bf16(0);
	}
	double ey = rms_rel(y[1], yr, ny), ex = rms_rel(dx[1], dxr, nx);
	double ew = rms_rel(dw[1], dwr, nw), e32 = rms_rel(y32, yr, ny);
	double my = check_rel_diff(y[1], yr, ny, NULL);
	char what[96];
	snprintf(what, sizeof what, "bf16 conv N%d C%d %dx%d K%d p%d", N, C, H, W, K, pad);
	// bf16 keeps 8 significand bits, each operand within 2^-9 relative;
	// F(4x4, 3x3)'s transforms (factors up to 25 in V, 64 in A^T M A, with
	// cancellation) raise the outputs' error to about 2 % rms (a model of
	// the transforms in double with bf16 operands: 2.0 % rms, 8 % of max|y|
	// at C = 64; direct products in bf16: 0.14 %).  4 % rms and 20 % of
	// max are the margin; an indexing error gives O(1).
	check_msg(ey <= 4e-2 && ex <= 4e-2 && ew <= 4e-2 && my <= 0.2,
	          "%s: rms y %.3g dx %.3g dw %.3g, max y %.3g", what, ey, ex, ew, my);
	// not f32's error: the bf16 path ran (the forward needs C >= 8)
	if (C >= 8)
		check_msg(ey > 100 * e32, "%s: y error %.3g, f32's %.3g: bf16 not taken?", what, ey, e32);
	check_msg(!memcmp(y[0], y[1], ny * sizeof(float)) &&
	          !memcmp(dx[0], dx[1], nx * sizeof(float)) &&
	          !memcmp(dw[0], dw[1], nw * sizeof(float)),
	          "%s: 1 and 2 threads differ", what);
	printf("%s: rms y %.2e dx %.2e dw %.2e, max y %.2e (f32 rms y %.2e)\n", what, ey,
	       ex, ew, my, e32);
	for (int t = 0; t < 2; t++)
		free(y[t]), free(dx[t]), free(dw[t]), free(db[t]);
	free(x), free(w), free(dy), free(yr), free(y32), free(dxr), free(dwr), free(dbr);
}

int main(void)
{
	Rng r;
	rng_seed(&r, 7, 16);
	rounding_tests(&r);
	kernel_tests(&r);
	conv_tests(&r, 2, 64, 14, 14, 64, 1);    // whole tiles
	conv_tests(&r, 3, 32, 7, 7, 48, 1);      // partial tiles, chunks across images
	conv_tests(&r, 2, 7, 13, 11, 9, 1);      // odd C and K: zero pairs, edges
	conv_tests(&r, 1, 16, 10, 9, 20, 0);     // pad 0
	conv_tests(&r, 2, 128, 28, 28, 16, 1);   // few outputs, many inputs
	conv_tests(&r, 4, 256, 7, 7, 256, 1);    // chunks of 32 tiles (C + K > 160)
	conv_tests(&r, 3, 64, 40, 40, 32, 1);    // filter gradient: chunks and a tail
	ops_set_threads(2);
	return check_done("test_bf16");
}
