// Batch normalisation (PyTorch's BatchNorm1d/2d), training and eval, forward
// and backward, as the references in kernels/cpu/batchnorm.c define it: the
// batch mean and biased variance normalise, running statistics move by
// `momentum` with the unbiased variance; gamma/beta may be NULL (1 and 0).
//
// Three steps per call, every sum in double: partial sums of each channel
// over slices of its N*HW values (grid: slices x channels), then one thread
// per channel adds its slices in a fixed order (so a run is repeatable) and
// makes the channel's coefficients, then an elementwise pass.  The variance
// comes from the sums of x and x^2; in double that loses nothing a float
// result could show unless |mean|/std exceeds about 1e4.
//   x, y, dy, dx: (N, C, HW); gamma, beta, stats: (C)
#include "ops_cuda.cuh"

// Values per slice a block adds up (about), and the most slices a channel has.
#define PER_SLICE (THREADS * 16)
#define MAX_SLICES 64

static int slices_for(size_t M)
{
	size_t s = M / PER_SLICE;
	return s < 1 ? 1 : s > MAX_SLICES ? MAX_SLICES : (int)s;
}

__device__ static double block_sum(double v, double *sh)
{
	sh[threadIdx.x] = v;
	__syncthreads();
	for (int k = blockDim.x / 2; k > 0; k /= 2) {
		if ((int)threadIdx.x < k)
			sh[threadIdx.x] += sh[threadIdx.x + k];
		__syncthreads();
	}
	double r = sh[0];
	__syncthreads();
	return r;
}

// Channel blockIdx.y, slice blockIdx.x of gridDim.x: part[c*S + s] = sum of
// a, part[C*S + c*S + s] = sum of b, where (a, b) = (x, x^2) when dy is NULL,
// else (dy, dy*(x - mean[c])).
__global__ void bn_partials_kernel(int N, int C, int HW, const float *x,
                                   const float *dy, const double *mean,
                                   double *part)
{
	__shared__ double sh[THREADS];
	const int c = blockIdx.y, S = gridDim.x;
	const size_t M = (size_t)N * HW;
	const double mu = dy ? mean[c] : 0.0;
	double a = 0.0, b = 0.0;
	for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < M;
	     e += (size_t)S * blockDim.x) {
		size_t n = e / (size_t)HW, i = e - n * (size_t)HW;
		size_t at = (n * (size_t)C + (size_t)c) * (size_t)HW + i;
		double v = x[at];
		if (dy) {
			double g = dy[at];
			a += g;
			b += g * (v - mu);
		} else {
			a += v;
			b += v * v;
		}
	}
	a = block_sum(a, sh);
	b = block_sum(b, sh);
	if (threadIdx.x == 0) {
		part[(size_t)c * S + blockIdx.x] = a;
		part[(size_t)C * S + (size_t)c * S + blockIdx.x] = b;
	}
}

// Training forward, per channel: mean, invstd (coef[c], coef[C + c]), the
// running statistics and the saved ones.
__global__ void bn_train_stats_kernel(int C, int S, double M, const double *part,
                                      float *running_mean, float *running_var,
                                      float momentum, float eps,
                                      float *save_mean, float *save_invstd,
                                      double *coef)
{
	GRID_STRIDE(c, (size_t)C) {
		double s1 = 0.0, s2 = 0.0;
		for (int s = 0; s < S; s++) {
			s1 += part[c * S + s];
			s2 += part[(size_t)C * S + c * S + s];
		}
		double mean = s1 / M;
		double var = s2 / M - mean * mean;
		if (var < 0.0)
			var = 0.0;
		double uvar = M > 1 ? var * M / (M - 1) : var;
		double invstd = 1.0 / sqrt(var + (double)eps);
		if (running_mean)
			running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mean);
		if (running_var)
			running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * uvar);
		if (save_mean)
			save_mean[c] = (float)mean;
		if (save_invstd)
			save_invstd[c] = (float)invstd;
		coef[c] = mean;
		coef[C + c] = invstd;
	}
}

// y = (x - mean) * invstd * g + b, in double as the reference
__global__ void bn_train_apply_kernel(size_t n, int C, int HW, const float *x,
                                      const float *gamma, const float *beta,
                                      const double *coef, float *y)
{
	GRID_STRIDE(i, n) {
		int c = (int)((i / (size_t)HW) % (size_t)C);
		double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
		y[i] = (float)(((double)x[i] - coef[c]) * coef[C + c] * g + b);
	}
}

// y = (x - mean) / sqrt(var + eps) * g + b, the reference's operations
__global__ void bn_eval_kernel(size_t n, int C, int HW, const float *x,
                               const float *gamma, const float *beta,
                               const float *mean, const float *var, float eps,
                               float *y)
{
	GRID_STRIDE(i, n) {
		int c = (int)((i / (size_t)HW) % (size_t)C);
		double sd = sqrt((double)var[c] + eps);
		double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
		y[i] = (float)(((double)x[i] - (double)mean[c]) / sd * g + b);
	}
}

// Backward, per channel: with sdy = sum dy and sdyxhat = sum dy*xhat,
// dgamma += sdyxhat, dbeta += sdy; coef = (k = g*invstd, sdy/M,
// sdyxhat/M*invstd, mean).  invstd is save_invstd[c] (training) or
// 1/sqrt(var[c] + eps) (eval).
__global__ void bn_grad_stats_kernel(int C, int S, double M, const double *part,
                                     const float *gamma, const double *mean,
                                     const float *save_invstd, const float *var,
                                     float eps, float *dgamma, float *dbeta,
                                     double *coef)
{
	GRID_STRIDE(c, (size_t)C) {
		double sdy = 0.0, sdyx = 0.0;
		for (int s = 0; s < S; s++) {
			sdy += part[c * S + s];
			sdyx += part[(size_t)C * S + c * S + s];
		}
		double invstd = save_invstd ? (double)save_invstd[c]
		                            : 1.0 / sqrt((double)var[c] + eps);
		sdyx *= invstd;
		if (dgamma)
			dgamma[c] += (float)sdyx;
		if (dbeta)
			dbeta[c] += (float)sdy;
		coef[c] = (gamma ? gamma[c] : 1.0) * invstd;
		coef[C + c] = sdy / M;
		coef[2 * C + c] = sdyx / M * invstd;
		coef[3 * C + c] = mean[c];
	}
}

// train: dx = k*(dy - sdy/M - (x - mean)*sdyxhat/M*invstd); eval: k*dy
__global__ void bn_grad_apply_kernel(size_t n, int C, int HW, int train,
                                     const float *x, const float *dy,
                                     const double *coef, float *dx)
{
	GRID_STRIDE(i, n) {
		int c = (int)((i / (size_t)HW) % (size_t)C);
		double g = dy[i], k = coef[c];
		if (train)
			dx[i] = (float)(k * (g - coef[C + c] -
			                     ((double)x[i] - coef[3 * C + c]) * coef[2 * C + c]));
		else
			dx[i] = (float)(k * g);
	}
}

// Widens a float (C) array into double (C).
__global__ void widen_kernel(int C, const float *a, double *d)
{
	GRID_STRIDE(c, (size_t)C)
		d[c] = a[c];
}

void cu_batchnorm_forward_train(int N, int C, int HW, const float *x,
                                const float *gamma, const float *beta,
                                float *running_mean, float *running_var,
                                float momentum, float eps, float *save_mean,
                                float *save_invstd, float *y)
{
	size_t M = (size_t)N * HW;
	if (M == 0 || C <= 0)
		return;   // no batch: no statistics, nothing moves
	int S = slices_for(M);
	double *part = (double *)cuda_scratch(((size_t)2 * C * S + 2 * (size_t)C) * sizeof(double));
	double *coef = part + (size_t)2 * C * S;
	bn_partials_kernel<<<dim3(S, C), THREADS>>>(N, C, HW, x, NULL, NULL, part);
	LAUNCH_CHECK(bn_partials_kernel);
	bn_train_stats_kernel<<<grid_for((size_t)C), THREADS>>>(C, S, (double)M, part,
	        running_mean, running_var, momentum, eps, save_mean, save_invstd, coef);
	LAUNCH_CHECK(bn_train_stats_kernel);
	size_t n = M * (size_t)C;
	bn_train_apply_kernel<<<grid_for(n), THREADS>>>(n, C, HW, x, gamma, beta, coef, y);
	LAUNCH_CHECK(bn_train_apply_kernel);
}

void cu_batchnorm_forward_eval(int N, int C, int HW, const float *x,
                               const float *gamma, const float *beta,
                               const float *mean, const float *var, float eps,
                               float *y)
{
	size_t n = (size_t)N * C * HW;
	if (!n)
		return;
	bn_eval_kernel<<<grid_for(n), THREADS>>>(n, C, HW, x, gamma, beta, mean, var, eps, y);
	LAUNCH_CHECK(bn_eval_kernel);
}

static void backward(int N, int C, int HW, int train, const float *x,
                     const float *gamma, const float *mean,
                     const float *save_invstd, const float *var, float eps,
                     const float *dy, float *dx, float *dgamma, float *dbeta)
{
	size_t M = (size_t)N * HW;
	if (M == 0 || C <= 0)
		return;
	int S = slices_for(M);
	double *part = (double *)cuda_scratch(((size_t)2 * C * S + 5 * (size_t)C) * sizeof(double));
	double *coef = part + (size_t)2 * C * S, *mu = coef + (size_t)4 * C;
	widen_kernel<<<grid_for((size_t)C), THREADS>>>(C, mean, mu);
	LAUNCH_CHECK(widen_kernel);
	bn_partials_kernel<<<dim3(S, C), THREADS>>>(N, C, HW, x, dy, mu, part);
	LAUNCH_CHECK(bn_partials_kernel);
	bn_grad_stats_kernel<<<grid_for((size_t)C), THREADS>>>(C, S, (double)M, part,
	        gamma, mu, train ? save_invstd : NULL, var, eps, dgamma, dbeta, coef);
	LAUNCH_CHECK(bn_grad_stats_kernel);
	if (!dx)
		return;
	size_t n = M * (size_t)C;
	bn_grad_apply_kernel<<<grid_for(n), THREADS>>>(n, C, HW, train, x, dy, coef, dx);
	LAUNCH_CHECK(bn_grad_apply_kernel);
}

void cu_batchnorm_backward_train(int N, int C, int HW, const float *x,
                                 const float *gamma, const float *save_mean,
                                 const float *save_invstd, const float *dy,
                                 float *dx, float *dgamma, float *dbeta)
{
	backward(N, C, HW, 1, x, gamma, save_mean, save_invstd, NULL, 0.0f, dy, dx,
	         dgamma, dbeta);
}

void cu_batchnorm_backward_eval(int N, int C, int HW, const float *x,
                                const float *gamma, const float *mean,
                                const float *var, float eps, const float *dy,
                                float *dx, float *dgamma, float *dbeta)
{
	backward(N, C, HW, 0, x, gamma, mean, NULL, var, eps, dy, dx, dgamma, dbeta);
}
