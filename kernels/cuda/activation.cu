// ReLU and leaky ReLU, forward and backward: the references' one selection
// and one rounded multiply per value, so the results equal them bit for bit.
//   x, y, dy, dx: (n); in place (y == x, dx == dy) allowed.
#include "ops_cuda.cuh"

__global__ void relu_fwd_kernel(size_t n, const float *x, float *y)
{
	GRID_STRIDE(i, n)
		y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

__global__ void relu_bwd_kernel(size_t n, const float *y, const float *dy, float *dx)
{
	GRID_STRIDE(i, n)
		dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

__global__ void leaky_fwd_kernel(size_t n, float slope, const float *x, float *y)
{
	GRID_STRIDE(i, n)
		y[i] = x[i] > 0.0f ? x[i] : __fmul_rn(x[i], slope);
}

__global__ void leaky_bwd_kernel(size_t n, float slope, const float *x,
                                 const float *dy, float *dx)
{
	GRID_STRIDE(i, n)
		dx[i] = x[i] > 0.0f ? dy[i] : __fmul_rn(dy[i], slope);
}

void cu_relu_forward(size_t n, const float *x, float *y)
{
	if (!n)
		return;
	relu_fwd_kernel<<<grid_for(n), THREADS>>>(n, x, y);
	LAUNCH_CHECK(relu_fwd_kernel);
}

void cu_relu_backward(size_t n, const float *y, const float *dy, float *dx)
{
	if (!n)
		return;
	relu_bwd_kernel<<<grid_for(n), THREADS>>>(n, y, dy, dx);
	LAUNCH_CHECK(relu_bwd_kernel);
}

void cu_leaky_relu_forward(size_t n, float slope, const float *x, float *y)
{
	if (!n)
		return;
	leaky_fwd_kernel<<<grid_for(n), THREADS>>>(n, slope, x, y);
	LAUNCH_CHECK(leaky_fwd_kernel);
}

void cu_leaky_relu_backward(size_t n, float slope, const float *x,
                            const float *dy, float *dx)
{
	if (!n)
		return;
	leaky_bwd_kernel<<<grid_for(n), THREADS>>>(n, slope, x, dy, dx);
	LAUNCH_CHECK(leaky_bwd_kernel);
}
