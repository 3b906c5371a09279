// Log-softmax along the last axis and the NLL loss (mean over the batch),
// as the references in kernels/cpu/softmax_nll.c: rows in double, rounded
// once.  One block per row (K may be 2 or 1000).  A target outside [0, K)
// is fatal, as on the CPU: the kernels note the first bad row and the host
// reads it back (one small copy per call) before the loss is used.
//   x, y, dy, dx, logp, dlogp: (N, K); target: (N), device i32
#include <math.h>
#include "ops_cuda.cuh"

#define ROW_THREADS 128

__device__ static double row_reduce(double v, double *sh, int is_max)
{
	sh[threadIdx.x] = v;
	__syncthreads();
	for (int k = blockDim.x / 2; k > 0; k /= 2) {
		if ((int)threadIdx.x < k) {
			double o = sh[threadIdx.x + k];
			sh[threadIdx.x] = is_max ? (o > sh[threadIdx.x] ? o : sh[threadIdx.x])
			                         : sh[threadIdx.x] + o;
		}
		__syncthreads();
	}
	double r = sh[0];
	__syncthreads();
	return r;
}

// y = x - (m + log(sum exp(x - m))), m the row's max
__global__ void log_softmax_fwd_kernel(int K, const float *x, float *y)
{
	__shared__ double sh[ROW_THREADS];
	const float *xp = x + (size_t)blockIdx.x * K;
	float *yp = y + (size_t)blockIdx.x * K;
	double m = -INFINITY;
	for (int k = threadIdx.x; k < K; k += blockDim.x)
		if (xp[k] > m)
			m = xp[k];
	m = row_reduce(m, sh, 1);
	double sum = 0.0;
	for (int k = threadIdx.x; k < K; k += blockDim.x)
		sum += exp((double)xp[k] - m);
	sum = row_reduce(sum, sh, 0);
	double lse = m + log(sum);
	for (int k = threadIdx.x; k < K; k += blockDim.x)
		yp[k] = (float)((double)xp[k] - lse);
}

// dx = dy - exp(y) * sum_k dy
__global__ void log_softmax_bwd_kernel(int K, const float *y, const float *dy, float *dx)
{
	__shared__ double sh[ROW_THREADS];
	size_t row = (size_t)blockIdx.x * K;
	double sum = 0.0;
	for (int k = threadIdx.x; k < K; k += blockDim.x)
		sum += dy[row + k];
	sum = row_reduce(sum, sh, 0);
	for (int k = threadIdx.x; k < K; k += blockDim.x)
		dx[row + k] = (float)(dy[row + k] - exp((double)y[row + k]) * sum);
}

// One block: out[0] = -(1/N) sum_n logp[n, target[n]]; bad[0] = the first
// row whose target is outside [0, K), or N.
__global__ void nll_fwd_kernel(int N, int K, const float *logp, const int32_t *target,
                               float *out, int *bad)
{
	__shared__ double sh[ROW_THREADS];
	double sum = 0.0;
	for (int n = threadIdx.x; n < N; n += blockDim.x) {
		int32_t t = target[n];
		if (t < 0 || t >= K)
			atomicMin(bad, n);
		else
			sum += logp[(size_t)n * K + t];
	}
	sum = row_reduce(sum, sh, 0);
	if (threadIdx.x == 0)
		out[0] = (float)(-sum / N);
}

// dlogp (=) = -dloss/N at each target, 0 elsewhere
__global__ void nll_bwd_kernel(size_t n, int N, int K, const int32_t *target,
                               float dloss, float *dlogp, int *bad)
{
	GRID_STRIDE(i, n) {
		int row = (int)(i / (size_t)K), k = (int)(i % (size_t)K);
		int32_t t = target[row];
		if (k == 0 && (t < 0 || t >= K))
			atomicMin(bad, row);
		dlogp[i] = k == t ? -dloss / (float)N : 0.0f;
	}
}

void cu_log_softmax_forward(int N, int K, const float *x, float *y)
{
	if (N <= 0 || K <= 0)
		return;
	log_softmax_fwd_kernel<<<N, ROW_THREADS>>>(K, x, y);
	LAUNCH_CHECK(log_softmax_fwd_kernel);
}

void cu_log_softmax_backward(int N, int K, const float *y, const float *dy,
                             float *dx)
{
	if (N <= 0 || K <= 0)
		return;
	log_softmax_bwd_kernel<<<N, ROW_THREADS>>>(K, y, dy, dx);
	LAUNCH_CHECK(log_softmax_bwd_kernel);
}

// The check the CPU's check_target makes, after the kernel: dies naming the
// first row with a target outside [0, K).
static void check_targets(int N, int K, const int32_t *target, const int *dbad)
{
	int bad = N;
	CUDA_CHECK(cudaMemcpy(&bad, dbad, sizeof bad, cudaMemcpyDeviceToHost));
	if (bad >= N)
		return;
	int32_t t = 0;
	CUDA_CHECK(cudaMemcpy(&t, target + bad, sizeof t, cudaMemcpyDeviceToHost));
	die("nll_loss: target %d outside [0, %d)", (int)t, K);
}

float cu_nll_loss_forward(int N, int K, const float *logp, const int32_t *target)
{
	if (N <= 0)
		return NAN;
	float *out = (float *)cuda_scratch(2 * sizeof(float) + sizeof(int));
	int *bad = (int *)(out + 2);
	CUDA_CHECK(cudaMemcpy(bad, &N, sizeof N, cudaMemcpyHostToDevice));
	nll_fwd_kernel<<<1, ROW_THREADS>>>(N, K, logp, target, out, bad);
	LAUNCH_CHECK(nll_fwd_kernel);
	check_targets(N, K, target, bad);
	float loss = 0.0f;
	CUDA_CHECK(cudaMemcpy(&loss, out, sizeof loss, cudaMemcpyDeviceToHost));
	return loss;
}

void cu_nll_loss_backward(int N, int K, const int32_t *target, float dloss,
                          float *dlogp)
{
	size_t n = (size_t)N * K;
	if (!n)
		return;
	int *bad = (int *)cuda_scratch(sizeof(int));
	CUDA_CHECK(cudaMemcpy(bad, &N, sizeof N, cudaMemcpyHostToDevice));
	nll_bwd_kernel<<<grid_for(n), THREADS>>>(n, N, K, target, dloss, dlogp, bad);
	LAUNCH_CHECK(nll_bwd_kernel);
	check_targets(N, K, target, bad);
}
