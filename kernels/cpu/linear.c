// Fully connected layer, as PyTorch's nn.Linear: y = x w^T + b.
//   x: (N, I), w: (O, I), b: (O) or NULL, y: (N, O)
// Fast path: OpenBLAS sgemm with ops_threads() threads.
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

void linear_forward(int N, int I, int O, const float *x, const float *w,
                    const float *b, float *y)
{
	if (N == 0 || O == 0)
		return;
	ops_blas_threads(ops_threads());
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
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, O, I,
	            1.0f, x, I, w, I, beta, y, O);
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
	ops_blas_threads(ops_threads());
	if (dx) {
		if (O == 0 || N == 0)
			memset(dx, 0, sizeof(float) * (size_t)N * I);
		else if (I > 0)
			// dx: (N, I) = dy: (N, O) . w: (O, I)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, I, O,
			            1.0f, dy, O, w, I, 0.0f, dx, I);
	}
	if (dw && N > 0 && O > 0 && I > 0)
		// dw: (O, I) += dy^T: (O, N) . x: (N, I)
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, I, N,
		            1.0f, dy, O, x, I, 1.0f, dw, I);
	if (db)
		for (int o = 0; o < O; o++) {
			float acc = 0.0f;
			for (int n = 0; n < N; n++)
				acc += dy[(size_t)n * O + o];
			db[o] += acc;
		}
}
