// Inverted dropout.  The mask is drawn on the host from the same seeded Rng,
// one rng_uniform per value in order, exactly as dropout_forward_ref draws
// it, so a GPU run drops the same values as a CPU run; then uploaded, and
// applied on the device: y = mask ? x * s : 0 with s = 1/(1-p) rounded to
// float once (p <= 0: y = x, p >= 1: y = 0, neither drawing).
//   x, y, dy, dx, mask: (n); y may be x, dx may be dy.
#include <stdlib.h>
#include <string.h>
#include "ops_cuda.cuh"
extern "C" {
#include "libcommon/util/alloc.h"
}

static uint8_t *host_mask;   // the draws of one call, reused
static size_t host_len;

void cu_dropout_free(void)
{
	free(host_mask);
	host_mask = NULL;
	host_len = 0;
}

// mode 0: copy (p <= 0); 1: zero (p >= 1); 2: by the mask
__global__ void dropout_fwd_kernel(size_t n, int mode, float scale,
                                   const uint8_t *mask, const float *x, float *y)
{
	GRID_STRIDE(i, n)
		y[i] = mode == 0 ? x[i] : mode == 1 || !mask[i] ? 0.0f : __fmul_rn(x[i], scale);
}

__global__ void dropout_bwd_kernel(size_t n, int mode, float scale,
                                   const uint8_t *mask, const float *dy, float *dx)
{
	GRID_STRIDE(i, n)
		dx[i] = mode == 0 ? dy[i] : !mask[i] ? 0.0f : __fmul_rn(dy[i], scale);
}

__global__ void fill_u8_kernel(size_t n, uint8_t v, uint8_t *m)
{
	GRID_STRIDE(i, n)
		m[i] = v;
}

void cu_dropout_forward(size_t n, float p, Rng *rng, const float *x, float *y,
                        uint8_t *mask)
{
	if (!n)
		return;
	const int draw = !(p <= 0.0f) && !(p >= 1.0f);
	if (!draw) {
		int mode = p <= 0.0f ? 0 : 1;
		dropout_fwd_kernel<<<grid_for(n), THREADS>>>(n, mode, 1.0f, NULL, x, y);
		LAUNCH_CHECK(dropout_fwd_kernel);
		if (mask) {
			fill_u8_kernel<<<grid_for(n), THREADS>>>(n, mode == 0, mask);
			LAUNCH_CHECK(fill_u8_kernel);
		}
		return;
	}
	if (n > host_len) {
		free(host_mask);
		host_mask = (uint8_t *)xmalloc(n);
		host_len = n;
	}
	for (size_t i = 0; i < n; i++)
		host_mask[i] = (uint8_t)(rng_uniform(rng) >= p);
	uint8_t *dmask = mask ? mask : (uint8_t *)cuda_scratch(n);
	CUDA_CHECK(cudaMemcpy(dmask, host_mask, n, cudaMemcpyHostToDevice));
	const float scale = 1.0f / (1.0f - p);
	dropout_fwd_kernel<<<grid_for(n), THREADS>>>(n, 2, scale, dmask, x, y);
	LAUNCH_CHECK(dropout_fwd_kernel);
}

void cu_dropout_backward(size_t n, float p, const uint8_t *mask,
                         const float *dy, float *dx)
{
	if (!n)
		return;
	// p >= 1 keeps nothing (dy * 0 where a mask says kept, as the reference)
	int mode = p <= 0.0f ? 0 : 2;
	float scale = p <= 0.0f ? 1.0f : p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
	dropout_bwd_kernel<<<grid_for(n), THREADS>>>(n, mode, scale, mask, dy, dx);
	LAUNCH_CHECK(dropout_bwd_kernel);
}
