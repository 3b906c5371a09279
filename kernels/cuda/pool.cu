// Max and average pooling over k x k windows, as the references in
// kernels/cpu/pool.c: max takes the first maximum of the window's cells
// inside x (row by row), a NaN beats every number and the first NaN wins; a
// window wholly outside x gives 0 and argmax -1.  Average divides by
// PyTorch's count_include_pad=True divisor.  Forward: one thread per output;
// backward: one thread per input cell gathering the windows that hold it, in
// the order the references add them, so no two threads write one place.
//   x, dx: (N, C, H, W); y, dy, argmax: (N, C, P, Q) (argmax into H*W)
#include "ops_cuda.cuh"

__global__ void maxpool_fwd_kernel(size_t n, PoolShape s, const float *x, float *y,
                                   int32_t *argmax)
{
	GRID_STRIDE(o, n) {
		int q = (int)(o % s.Q), p = (int)(o / s.Q % s.P);
		size_t plane = o / ((size_t)s.P * s.Q);
		const float *xp = x + plane * s.H * s.W;
		float m = 0.0f;
		int32_t at = -1;
		for (int r = 0; r < s.k; r++) {
			int ih = p * s.stride - s.pad + r;
			if (ih < 0 || ih >= s.H)
				continue;
			for (int t = 0; t < s.k; t++) {
				int iw = q * s.stride - s.pad + t;
				if (iw < 0 || iw >= s.W)
					continue;
				float v = xp[ih * s.W + iw];
				int better = isnan(v) ? !isnan(m) : v > m;
				if (at < 0 || better) {
					m = v;
					at = ih * s.W + iw;
				}
			}
		}
		y[o] = m;
		if (argmax)
			argmax[o] = at;
	}
}

// The outputs whose windows hold input row ih: [*lo, *hi).
__device__ static void windows_of(int ih, int k, int stride, int pad, int P,
                                  int *lo, int *hi)
{
	// p*stride - pad <= ih  and  ih < p*stride - pad + k
	int a = ih + pad - k + 1;   // p*stride >= a
	int l = a <= 0 ? 0 : (a + stride - 1) / stride;
	int h = (ih + pad) / stride + 1;
	*lo = l;
	*hi = h < P ? h : P;
}

__global__ void maxpool_bwd_kernel(size_t n, PoolShape s, const int32_t *argmax,
                                   const float *dy, float *dx)
{
	GRID_STRIDE(i, n) {
		int iw = (int)(i % s.W), ih = (int)(i / s.W % s.H);
		size_t plane = i / ((size_t)s.H * s.W);
		const int32_t *am = argmax + plane * s.P * s.Q;
		const float *g = dy + plane * s.P * s.Q;
		int p0, p1, q0, q1;
		windows_of(ih, s.k, s.stride, s.pad, s.P, &p0, &p1);
		windows_of(iw, s.k, s.stride, s.pad, s.Q, &q0, &q1);
		int32_t me = ih * s.W + iw;
		float acc = 0.0f;
		for (int p = p0; p < p1; p++)
			for (int q = q0; q < q1; q++)
				if (am[p * s.Q + q] == me)
					acc = __fadd_rn(acc, g[p * s.Q + q]);
		dx[i] = acc;
	}
}

// PyTorch's divisor with count_include_pad=True: the window's cells inside
// [-pad, H + pad) x [-pad, W + pad).
__device__ static int avg_divisor(const PoolShape &s, int p, int q)
{
	int r0 = p * s.stride - s.pad, t0 = q * s.stride - s.pad;
	int rlo = r0 > -s.pad ? r0 : -s.pad, rhi = r0 + s.k < s.H + s.pad ? r0 + s.k : s.H + s.pad;
	int tlo = t0 > -s.pad ? t0 : -s.pad, thi = t0 + s.k < s.W + s.pad ? t0 + s.k : s.W + s.pad;
	int rows = rhi > rlo ? rhi - rlo : 0, cols = thi > tlo ? thi - tlo : 0;
	return rows * cols;
}

__global__ void avgpool_fwd_kernel(size_t n, PoolShape s, const float *x, float *y)
{
	GRID_STRIDE(o, n) {
		int q = (int)(o % s.Q), p = (int)(o / s.Q % s.P);
		size_t plane = o / ((size_t)s.P * s.Q);
		const float *xp = x + plane * s.H * s.W;
		double sum = 0.0;
		for (int r = 0; r < s.k; r++) {
			int ih = p * s.stride - s.pad + r;
			if (ih < 0 || ih >= s.H)
				continue;
			for (int t = 0; t < s.k; t++) {
				int iw = q * s.stride - s.pad + t;
				if (iw >= 0 && iw < s.W)
					sum += xp[ih * s.W + iw];
			}
		}
		int div = avg_divisor(s, p, q);
		y[o] = div > 0 ? (float)(sum / div) : 0.0f;
	}
}

__global__ void avgpool_bwd_kernel(size_t n, PoolShape s, const float *dy, float *dx)
{
	GRID_STRIDE(i, n) {
		int iw = (int)(i % s.W), ih = (int)(i / s.W % s.H);
		size_t plane = i / ((size_t)s.H * s.W);
		const float *g = dy + plane * s.P * s.Q;
		int p0, p1, q0, q1;
		windows_of(ih, s.k, s.stride, s.pad, s.P, &p0, &p1);
		windows_of(iw, s.k, s.stride, s.pad, s.Q, &q0, &q1);
		double sum = 0.0;
		for (int p = p0; p < p1; p++)
			for (int q = q0; q < q1; q++) {
				int div = avg_divisor(s, p, q);
				if (div > 0)
					sum += (double)g[p * s.Q + q] / div;
			}
		dx[i] = (float)sum;
	}
}

void cu_maxpool2d_forward(const PoolShape *s, const float *x, float *y,
                          int32_t *argmax)
{
	size_t n = (size_t)s->N * s->C * s->P * s->Q;
	if (!n)
		return;
	maxpool_fwd_kernel<<<grid_for(n), THREADS>>>(n, *s, x, y, argmax);
	LAUNCH_CHECK(maxpool_fwd_kernel);
}

void cu_maxpool2d_backward(const PoolShape *s, const int32_t *argmax,
                           const float *dy, float *dx)
{
	size_t n = (size_t)s->N * s->C * s->H * s->W;
	if (!n)
		return;
	maxpool_bwd_kernel<<<grid_for(n), THREADS>>>(n, *s, argmax, dy, dx);
	LAUNCH_CHECK(maxpool_bwd_kernel);
}

void cu_avgpool2d_forward(const PoolShape *s, const float *x, float *y)
{
	size_t n = (size_t)s->N * s->C * s->P * s->Q;
	if (!n)
		return;
	avgpool_fwd_kernel<<<grid_for(n), THREADS>>>(n, *s, x, y);
	LAUNCH_CHECK(avgpool_fwd_kernel);
}

void cu_avgpool2d_backward(const PoolShape *s, const float *dy, float *dx)
{
	size_t n = (size_t)s->N * s->C * s->H * s->W;
	if (!n)
		return;
	avgpool_bwd_kernel<<<grid_for(n), THREADS>>>(n, *s, dy, dx);
	LAUNCH_CHECK(avgpool_bwd_kernel);
}
