// Fully connected layer, as PyTorch's nn.Linear: y = x w^T + b.
//   x: (N, I), w: (O, I), b: (O) or NULL, y: (N, O)
// Fast path: OpenBLAS sgemm, one call per thread on a slice of the outputs
// (OpenBLAS's own threads, once started, spin idle for tens of
// milliseconds after each call and took CPU from the layers after it).
#include <string.h>
#include <cblas.h>
#undef I   // <complex.h> (via cblas.h) defines I; ops.h uses it as a name
#include "ops.h"
#include "ops_internal.h"

void linear_forward_ref(int N, int I, int O, const float *x, const float *w,
                        const float *b, float *y)
{
	for (int n = 0; n < N; n++)
		for (int o = 0; o < O; o++) {
			double acc = b ? b[o] : 0.0;
			for (int i = 0; i < I; i++)
				acc += (double)x[(size_t)n * I + i] * w[(size_t)o * I + i];
			y[(size_t)n * O + o] = (float)acc;
		}
}

// dx = dy w (=), dw += dy^T x, db += sum_n dy
void linear_backward_ref(int N, int I, int O, const float *x, const float *w,
                         const float *dy, float *dx, float *dw, float *db)
{
	if (dx)
		for (int n = 0; n < N; n++)
			for (int i = 0; i < I; i++) {
				double acc = 0.0;
				for (int o = 0; o < O; o++)
					acc += (double)dy[(size_t)n * O + o] * w[(size_t)o * I + i];
				dx[(size_t)n * I + i] = (float)acc;
			}
	if (dw)
		for (int o = 0; o < O; o++)
			for (int i = 0; i < I; i++) {
				double acc = 0.0;
				for (int n = 0; n < N; n++)
					acc += (double)dy[(size_t)n * O + o] * x[(size_t)n * I + i];
				dw[(size_t)o * I + i] += (float)acc;
			}
	if (db)
		for (int o = 0; o < O; o++) {
			double acc = 0.0;
			for (int n = 0; n < N; n++)
				acc += dy[(size_t)n * O + o];
			db[o] += (float)acc;
		}
}

// Thread t's part [lo, hi) of n values, cut at multiples of 16
static void part_of(int n, int t, int T, int *lo, int *hi)
{
	int blocks = (n + 15) / 16;
	*lo = blocks * t / T * 16;
	*hi = blocks * (t + 1) / T * 16;
	if (*hi > n)
		*hi = n;
	if (*lo > n)
		*lo = n;
}

typedef struct {
	int N, I, O, T;
	const float *x, *w, *dy;
	float *y, *dx, *dw;
	float beta;
} GemmJob;

// y[:, part] (=|+=) x . w[part]^T
static void fwd_part(void *ctx, size_t t0, size_t t1, int thread)
{
	(void)t1;
	const GemmJob *j = ctx;
	int lo, hi;
	(void)thread;
	part_of(j->O, (int)t0, j->T, &lo, &hi);
	if (hi > lo)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->N, hi - lo, j->I,
		            1.0f, j->x, j->I, j->w + (size_t)lo * j->I, j->I, j->beta,
		            j->y + lo, j->O);
}

// dx[:, part] = dy . w[:, part]; dw[part] += dy[:, part]^T . x
static void bwd_part(void *ctx, size_t t0, size_t t1, int thread)
{
	(void)t1;
	(void)thread;
	const GemmJob *j = ctx;
	int lo, hi;
	if (j->dx) {
		part_of(j->I, (int)t0, j->T, &lo, &hi);
		if (hi > lo)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->N, hi - lo, j->O,
			            1.0f, j->dy, j->O, j->w + lo, j->I, 0.0f, j->dx + lo, j->I);
	}
	if (j->dw) {
		part_of(j->O, (int)t0, j->T, &lo, &hi);
		if (hi > lo)
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hi - lo, j->I, j->N,
			            1.0f, j->dy + lo, j->O, j->x, j->I, 1.0f,
			            j->dw + (size_t)lo * j->I, j->I);
	}
}

// Threads for a product of 2 N I O flops cut into parts of 16 of n values
// (O forward; the longer of I and O backward)
static int gemm_threads(int N, int I, int O, int n)
{
	size_t parts = (size_t)(n + 15) / 16;
	return ops_threads_for(parts, 2.0 * N * I * (double)O / (double)parts);
}

void linear_forward(int N, int I, int O, const float *x, const float *w,
                    const float *b, float *y)
{
	if (N == 0 || O == 0)
		return;
	ops_blas_threads(1);
	float beta = 0.0f;
	if (b) {
		for (int n = 0; n < N; n++)
			memcpy(y + (size_t)n * O, b, sizeof(float) * O);
		beta = 1.0f;
	}
	if (I == 0) {
		if (!b)
			memset(y, 0, sizeof(float) * (size_t)N * O);
		return;
	}
	GemmJob j = { .N = N, .I = I, .O = O, .x = x, .w = w, .y = y, .beta = beta };
	j.T = gemm_threads(N, I, O, O);
	parallel_for((size_t)j.T, j.T, fwd_part, &j);
}

// linear_forward_fixed: one output, b + x . w, in one order whatever the
// batch and the threads (sgemm's kernels differ with the batch's size: an
// image's predictions depended on the batch it was in, and shards on their
// boundaries): lane l of 16 sums the products k = l (mod 16) in order, the
// lanes are added pairwise, then the bias.
static float dot_fixed(const float *x, const float *w, int I)
{
	float acc[16] = { 0 };
	int k = 0;
	for (; k + 16 <= I; k += 16)
		for (int l = 0; l < 16; l++)
			acc[l] += x[k + l] * w[k + l];
	for (int l = 0; k + l < I; l++)
		acc[l] += x[k + l] * w[k + l];
	for (int h = 8; h; h >>= 1)
		for (int l = 0; l < h; l++)
			acc[l] += acc[l + h];
	return acc[0];
}

typedef struct {
	int N, I, O;
	const float *x, *w, *b;
	float *y;
} LinearJob;

// Output blocks [lo, hi) of LINEAR_OB outputs, for every image: a block's
// rows of w stay in cache across the images.
#define LINEAR_OB 16
static void linear_blocks(void *ctx, size_t lo, size_t hi, int t)
{
	(void)t;
	const LinearJob *j = ctx;
	for (size_t blk = lo; blk < hi; blk++) {
		int o0 = (int)blk * LINEAR_OB;
		int o1 = o0 + LINEAR_OB < j->O ? o0 + LINEAR_OB : j->O;
		for (int n = 0; n < j->N; n++) {
			const float *xn = j->x + (size_t)n * j->I;
			float *yn = j->y + (size_t)n * j->O;
			for (int o = o0; o < o1; o++)
				yn[o] = dot_fixed(xn, j->w + (size_t)o * j->I, j->I) +
				        (j->b ? j->b[o] : 0.0f);
		}
	}
}

void linear_forward_fixed(int N, int I, int O, const float *x, const float *w,
                          const float *b, float *y)
{
	if (N == 0 || O == 0)
		return;
	LinearJob j = { N, I, O, x, w, b, y };
	size_t nb = ((size_t)O + LINEAR_OB - 1) / LINEAR_OB;
	int nt = ops_threads_for(nb, 2.0 * LINEAR_OB * (double)N * I);
	parallel_for(nb, nt, linear_blocks, &j);
}

void linear_backward(int N, int I, int O, const float *x, const float *w,
                     const float *dy, float *dx, float *dw, float *db)
{
	ops_blas_threads(1);
	if (dx && (O == 0 || N == 0))
		memset(dx, 0, sizeof(float) * (size_t)N * I);
	GemmJob j = { .N = N, .I = I, .O = O, .x = x, .w = w, .dy = dy };
	j.dx = dx && O > 0 && N > 0 && I > 0 ? dx : NULL;
	j.dw = dw && N > 0 && O > 0 && I > 0 ? dw : NULL;
	if (j.dx || j.dw) {
		j.T = gemm_threads(N, I, O, O > I ? O : I);
		parallel_for((size_t)j.T, j.T, bwd_part, &j);
	}
	if (db)
		for (int o = 0; o < O; o++) {
			float acc = 0.0f;
			for (int n = 0; n < N; n++)
				acc += dy[(size_t)n * O + o];
			db[o] += acc;
		}
}
