// Eval batch norm folded into the convolution before it, as
// conv_fold_batchnorm_ref computes it, in double with one rounding:
//   g = gamma / sqrt(var + eps), wf = w*g, bf = (b - mean)*g + beta
//   w, wf: (K, CRS) (may be the same array); b: (K) or NULL; the rest: (K)
#include "ops_cuda.cuh"

__global__ void fold_weights_kernel(size_t n, size_t CRS, const float *w,
                                    const float *gamma, const float *var,
                                    float eps, float *wf)
{
	GRID_STRIDE(i, n) {
		size_t k = i / CRS;
		double g = (double)gamma[k] / sqrt((double)var[k] + (double)eps);
		wf[i] = (float)((double)w[i] * g);
	}
}

__global__ void fold_bias_kernel(int K, const float *b, const float *gamma,
                                 const float *beta, const float *mean,
                                 const float *var, float eps, float *bf)
{
	GRID_STRIDE(k, (size_t)K) {
		double g = (double)gamma[k] / sqrt((double)var[k] + (double)eps);
		double bk = b ? (double)b[k] : 0.0;
		bf[k] = (float)((bk - (double)mean[k]) * g + (double)beta[k]);
	}
}

void cu_conv_fold_batchnorm(int K, size_t CRS, const float *w, const float *b,
                            const float *gamma, const float *beta,
                            const float *mean, const float *var, float eps,
                            float *wf, float *bf)
{
	if (K <= 0)
		return;
	size_t n = (size_t)K * CRS;
	if (n) {
		fold_weights_kernel<<<grid_for(n), THREADS>>>(n, CRS, w, gamma, var, eps, wf);
		LAUNCH_CHECK(fold_weights_kernel);
	}
	fold_bias_kernel<<<grid_for((size_t)K), THREADS>>>(K, b, gamma, beta, mean, var,
	                                                   eps, bf);
	LAUNCH_CHECK(fold_bias_kernel);
}
