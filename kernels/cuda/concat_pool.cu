// fast.ai's AdaptiveConcatPool2d (output 1x1) and the global average pool,
// as the references in kernels/cpu/pool.c: concat pool's y[n, 0:C] is the
// max over HW (maxpool's rule: the first maximum, NaN wins), y[n, C:2C] the
// mean (summed in double).  One thread per (n, c) plane forward (HW is small
// at the end of a body: 7 x 7), one per value backward.
//   x, dx: (N, C, HW); concat: y, dy (N, 2C), argmax (N, C); global: (N, C)
#include "ops_cuda.cuh"

__global__ void concat_pool_fwd_kernel(size_t planes, int C, int HW, const float *x,
                                       float *y, int32_t *argmax)
{
	GRID_STRIDE(pc, planes) {
		size_t n = pc / (size_t)C, c = pc % (size_t)C;
		const float *xp = x + pc * (size_t)HW;
		float m = 0.0f;
		int32_t at = -1;
		double sum = 0.0;
		for (int i = 0; i < HW; i++) {
			float v = xp[i];
			int better = isnan(v) ? !isnan(m) : v > m;
			if (at < 0 || better) {
				m = v;
				at = i;
			}
			sum += v;
		}
		y[n * 2 * C + c] = m;
		y[n * 2 * C + C + c] = (float)(sum / HW);
		if (argmax)
			argmax[pc] = at;
	}
}

// dx = dy[n, C + c] / HW everywhere, plus dy[n, c] at the argmax
__global__ void concat_pool_bwd_kernel(size_t n, int C, int HW, const int32_t *argmax,
                                       const float *dy, float *dx)
{
	GRID_STRIDE(e, n) {
		size_t pc = e / (size_t)HW, i = e % (size_t)HW;
		size_t b = pc / (size_t)C, c = pc % (size_t)C;
		float g = __fdiv_rn(dy[b * 2 * C + C + c], (float)HW);
		if ((int32_t)i == argmax[pc])
			g = __fadd_rn(g, dy[b * 2 * C + c]);
		dx[e] = g;
	}
}

__global__ void gap_fwd_kernel(size_t planes, int HW, const float *x, float *y)
{
	GRID_STRIDE(pc, planes) {
		const float *xp = x + pc * (size_t)HW;
		double sum = 0.0;
		for (int i = 0; i < HW; i++)
			sum += xp[i];
		y[pc] = (float)(sum / HW);
	}
}

__global__ void gap_bwd_kernel(size_t n, int HW, const float *dy, float *dx)
{
	GRID_STRIDE(e, n)
		dx[e] = __fdiv_rn(dy[e / (size_t)HW], (float)HW);
}

void cu_concat_pool_forward(int N, int C, int HW, const float *x, float *y,
                            int32_t *argmax)
{
	size_t planes = (size_t)N * C;
	if (!planes)
		return;
	concat_pool_fwd_kernel<<<grid_for(planes), THREADS>>>(planes, C, HW, x, y, argmax);
	LAUNCH_CHECK(concat_pool_fwd_kernel);
}

void cu_concat_pool_backward(int N, int C, int HW, const int32_t *argmax,
                             const float *dy, float *dx)
{
	size_t n = (size_t)N * C * HW;
	if (!n)
		return;
	concat_pool_bwd_kernel<<<grid_for(n), THREADS>>>(n, C, HW, argmax, dy, dx);
	LAUNCH_CHECK(concat_pool_bwd_kernel);
}

void cu_global_avgpool_forward(int N, int C, int HW, const float *x, float *y)
{
	size_t planes = (size_t)N * C;
	if (!planes)
		return;
	gap_fwd_kernel<<<grid_for(planes), THREADS>>>(planes, HW, x, y);
	LAUNCH_CHECK(gap_fwd_kernel);
}

void cu_global_avgpool_backward(int N, int C, int HW, const float *dy, float *dx)
{
	size_t n = (size_t)N * C * HW;
	if (!n)
		return;
	gap_bwd_kernel<<<grid_for(n), THREADS>>>(n, HW, dy, dx);
	LAUNCH_CHECK(gap_bwd_kernel);
}
