// Ghost-batch batch norm and a slice's dropout (batch_slice.h).
#include "batch_slice.h"
#include "libcommon/util/rng_skip.h"

int ghost_bn_count(int N, int B)
{
	if (B <= 0 || N <= B)
		return 1;
	return (N + B - 1) / B;
}

void ghost_bn_forward(const Backend *be, int N, int B, int C, int HW,
                      const float *x, const float *gamma, const float *beta,
                      float *running_mean, float *running_var, float momentum,
                      float eps, float *save_mean, float *save_invstd, float *y)
{
	int K = ghost_bn_count(N, B);
	if (K == 1)
		B = N;
	size_t per = (size_t)C * HW;   // values of one sample
	for (int k = 1; k <= K; k++) {
		int lo = (k - 1) * B, n = k < K ? B : N - lo;
		// the k-th of K updates, so that each ghost batch weighs momentum/K
		double a = (double)momentum / (K - (double)(K - k) * momentum);
		be->batchnorm_forward_train(n, C, HW, x + (size_t)lo * per, gamma, beta,
		                            running_mean, running_var, (float)a, eps,
		                            save_mean + (size_t)(k - 1) * C,
		                            save_invstd + (size_t)(k - 1) * C,
		                            y + (size_t)lo * per);
	}
}

void ghost_bn_backward(const Backend *be, int N, int B, int C, int HW,
                       const float *x, const float *gamma,
                       const float *save_mean, const float *save_invstd,
                       const float *dy, float *dx, float *dgamma, float *dbeta)
{
	int K = ghost_bn_count(N, B);
	if (K == 1)
		B = N;
	size_t per = (size_t)C * HW;
	for (int k = 0; k < K; k++) {
		int lo = k * B, n = k < K - 1 ? B : N - lo;
		size_t o = (size_t)lo * per;
		be->batchnorm_backward_train(n, C, HW, x + o, gamma,
		                             save_mean + (size_t)k * C,
		                             save_invstd + (size_t)k * C, dy + o,
		                             dx ? dx + o : NULL, dgamma, dbeta);
	}
}

void slice_dropout_forward(const Backend *be, size_t n, int N, float p,
                           Rng *rng, int row0, int rows, const float *x,
                           float *y, uint8_t *mask)
{
	int draws = !(p <= 0.0f) && !(p >= 1.0f);
	uint64_t per = draws && N > 0 ? n / (size_t)N : 0;
	rng_skip(rng, per * (uint64_t)row0);
	be->dropout_forward(n, p, rng, x, y, mask);
	rng_skip(rng, per * (uint64_t)(rows - row0 - N));
}
