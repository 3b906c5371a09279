// One SGD step with momentum and weight decay (torch.optim.SGD, dampening
// 0, no Nesterov), sgd_momentum_update_ref's float operations in its order,
// each rounded on its own (__f*_rn: no fused multiply-add), so the two agree
// bit for bit:  d = g + wd*p (wd != 0);  v = momentum*v + d;  p = p - lr*v.
//   p, g, v: (n), three distinct arrays
#include "ops_cuda.cuh"

__global__ void sgd_kernel(size_t n, float lr, float momentum, float wd,
                           float *p, const float *g, float *v)
{
	GRID_STRIDE(i, n) {
		float d = g[i];
		if (wd != 0.0f)
			d = __fadd_rn(d, __fmul_rn(wd, p[i]));
		float vi = __fadd_rn(__fmul_rn(momentum, v[i]), d);
		v[i] = vi;
		p[i] = __fsub_rn(p[i], __fmul_rn(lr, vi));
	}
}

void cu_sgd_momentum_update(size_t n, float lr, float momentum, float wd,
                            float *p, const float *g, float *v)
{
	if (!n)
		return;
	sgd_kernel<<<grid_for(n), THREADS>>>(n, lr, momentum, wd, p, g, v);
	LAUNCH_CHECK(sgd_kernel);
}
