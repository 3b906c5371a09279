// Fully connected layer (PyTorch's nn.Linear, y = x w^T + b) through cuBLAS.
// cuBLAS is column-major: a row-major (R, C) array is its (C, R) matrix, so
// with X = x^T (I, N), W = w^T (I, O), Y = y^T (O, N):
//   forward     Y  = W^T X         sgemm(T, N, O, N, I)
//   dx          dX = W dY          sgemm(N, N, I, N, O)   (=)
//   dw          dW += X dY^T       sgemm(N, T, I, O, N)   (beta 1)
// Math: plain f32 (CUBLAS_DEFAULT_MATH) unless CNNPIPE_CUDA_TF32=1.
//   x, dx: (N, I), w, dw: (O, I), b, db: (O) or NULL, y, dy: (N, O)
#include "cublas_open.cuh"
#include "ops_cuda.cuh"

__global__ void bias_rows_kernel(size_t n, int O, const float *b, float *y)
{
	GRID_STRIDE(i, n)
		y[i] = b[i % (size_t)O];
}

// db[o] += sum over n of dy[n, o], in double
__global__ void bias_grad_kernel(int N, int O, const float *dy, float *db)
{
	GRID_STRIDE(o, (size_t)O) {
		double acc = 0.0;
		for (int n = 0; n < N; n++)
			acc += dy[(size_t)n * O + o];
		db[o] += (float)acc;
	}
}

void cu_linear_forward(int N, int I, int O, const float *x, const float *w,
                       const float *b, float *y)
{
	size_t ny = (size_t)N * O;
	if (!ny)
		return;
	float one = 1.0f, beta = 0.0f;
	if (b) {   // y starts as the bias, the product is added to it
		bias_rows_kernel<<<grid_for(ny), THREADS>>>(ny, O, b, y);
		LAUNCH_CHECK(bias_rows_kernel);
		beta = 1.0f;
	}
	if (I == 0) {
		if (!b)
			CUDA_CHECK(cudaMemset(y, 0, ny * sizeof(float)));
		return;
	}
	CUBLAS_CHECK(cublas_calls.sgemm(cuda_cublas(), CUBLAS_OP_T, CUBLAS_OP_N, O, N, I, &one,
	                         w, I, x, I, &beta, y, O));
}

void cu_linear_backward(int N, int I, int O, const float *x, const float *w,
                        const float *dy, float *dx, float *dw, float *db)
{
	float one = 1.0f, zero = 0.0f;
	if (dx && N > 0 && I > 0) {
		if (O == 0)
			CUDA_CHECK(cudaMemset(dx, 0, (size_t)N * I * sizeof(float)));
		else
			CUBLAS_CHECK(cublas_calls.sgemm(cuda_cublas(), CUBLAS_OP_N, CUBLAS_OP_N, I, N, O,
			                         &one, w, I, dy, O, &zero, dx, I));
	}
	if (dw && N > 0 && O > 0 && I > 0)
		CUBLAS_CHECK(cublas_calls.sgemm(cuda_cublas(), CUBLAS_OP_N, CUBLAS_OP_T, I, O, N,
		                         &one, x, I, dy, O, &one, dw, I));
	if (db && O > 0) {
		bias_grad_kernel<<<grid_for((size_t)O), THREADS>>>(N, O, dy, db);
		LAUNCH_CHECK(bias_grad_kernel);
	}
}
