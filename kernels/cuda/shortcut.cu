// darknet's shortcut of two maps of different sizes (kernels/cpu/ops.h,
// shortcut_forward): y = x, plus a's cell on a grid in the first
// min(C, Ca) channels; computed output by output, as shortcut_forward_ref.
//   x, y, dy, dx: (N, C, H, W); a, da: (N, Ca, Ha, Wa); y may be x.
#include "ops_cuda.cuh"

// The cell of a (within one sample) added to y's (c, h, w), or -1.
__device__ static long shortcut_src(const ShortcutShape s, int c, int h, int w)
{
	int stride = s.Wa / s.W > 1 ? s.Wa / s.W : 1;
	int sample = s.W / s.Wa > 1 ? s.W / s.Wa : 1;
	if (c >= s.Ca || h % sample != 0 || w % sample != 0)
		return -1;
	int j = h / sample, i = w / sample;
	if (j >= s.Ha || i >= s.Wa || j * stride >= s.Ha || i * stride >= s.Wa)
		return -1;
	return ((long)c * s.Ha + (long)j * stride) * s.Wa + (long)i * stride;
}

__global__ void shortcut_fwd_kernel(size_t n, ShortcutShape s, const float *x,
                                    const float *a, float *y)
{
	GRID_STRIDE(o, n) {
		int w = (int)(o % s.W), h = (int)(o / s.W % s.H);
		int c = (int)(o / ((size_t)s.W * s.H) % s.C);
		size_t b = o / ((size_t)s.W * s.H * s.C);
		long src = shortcut_src(s, c, h, w);
		float v = x[o];
		if (src >= 0)
			v = __fadd_rn(v, a[b * (size_t)s.Ca * s.Ha * s.Wa + (size_t)src]);
		y[o] = v;
	}
}

// da (=): zeroed first, then each y cell's dy written onto its a cell
// (at most one y cell per a cell, so no two threads write one place).
__global__ void shortcut_bwd_kernel(size_t n, ShortcutShape s, const float *dy,
                                    float *da)
{
	GRID_STRIDE(o, n) {
		int w = (int)(o % s.W), h = (int)(o / s.W % s.H);
		int c = (int)(o / ((size_t)s.W * s.H) % s.C);
		size_t b = o / ((size_t)s.W * s.H * s.C);
		long src = shortcut_src(s, c, h, w);
		if (src >= 0)
			da[b * (size_t)s.Ca * s.Ha * s.Wa + (size_t)src] = dy[o];
	}
}

void cu_shortcut_forward(const ShortcutShape *s, const float *x, const float *a,
                         float *y)
{
	size_t n = (size_t)s->N * s->C * s->H * s->W;
	if (!n)
		return;
	shortcut_fwd_kernel<<<grid_for(n), THREADS>>>(n, *s, x, a, y);
	LAUNCH_CHECK(shortcut_fwd_kernel);
}

void cu_shortcut_backward(const ShortcutShape *s, const float *dy, float *dx,
                          float *da)
{
	size_t n = (size_t)s->N * s->C * s->H * s->W;
	if (dx && dx != dy && n)
		CUDA_CHECK(cudaMemcpy(dx, dy, n * sizeof(float), cudaMemcpyDeviceToDevice));
	if (!da)
		return;
	size_t na = (size_t)s->N * s->Ca * s->Ha * s->Wa;
	if (na)
		CUDA_CHECK(cudaMemset(da, 0, na * sizeof(float)));
	if (!n)
		return;
	shortcut_bwd_kernel<<<grid_for(n), THREADS>>>(n, *s, dy, da);
	LAUNCH_CHECK(shortcut_bwd_kernel);
}
