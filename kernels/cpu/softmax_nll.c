// Log-softmax along the last axis and the negative log-likelihood loss
// (torch.nn.functional.log_softmax / nll_loss with reduction='mean'; fastai
// 0.7's classifier head ends in LogSoftmax and trains with F.nll_loss).
//   x, y, dy, dx: (N, K); target: (N)
#include <math.h>
#include "libcommon/util/err.h"
#include "ops.h"

// ---- reference ------------------------------------------------------------
// Row by row in double (rounded to float once, when stored).

static void check_target(int K, int32_t t);

// y = x - lse, lse = m + log(sum exp(x - m)), m the row's max (any finite
// shift gives the same value; the max keeps exp finite)
void log_softmax_forward_ref(int N, int K, const float *x, float *y)
{
	for (int n = 0; n < N; n++) {
		const float *xp = x + (size_t)n * K;
		double m = -INFINITY, sum = 0.0;
		for (int k = 0; k < K; k++)
			if (xp[k] > m)
				m = xp[k];
		for (int k = 0; k < K; k++)
			sum += exp((double)xp[k] - m);
		double lse = m + log(sum);
		for (int k = 0; k < K; k++)
			y[(size_t)n * K + k] = (float)((double)xp[k] - lse);
	}
}

// dx = dy - softmax(x) * sum_k dy, softmax(x) = exp(y)
void log_softmax_backward_ref(int N, int K, const float *y, const float *dy,
                              float *dx)
{
	for (int n = 0; n < N; n++) {
		double sum = 0.0;
		for (int k = 0; k < K; k++)
			sum += dy[(size_t)n * K + k];
		for (int k = 0; k < K; k++) {
			size_t i = (size_t)n * K + k;
			dx[i] = (float)(dy[i] - exp((double)y[i]) * sum);
		}
	}
}

// -(1/N) sum_n logp[n, target[n]]; NaN for N = 0; a target outside [0, K)
// is fatal
float nll_loss_forward_ref(int N, int K, const float *logp, const int32_t *target)
{
	if (N <= 0)
		return NAN;
	double sum = 0.0;
	for (int n = 0; n < N; n++) {
		check_target(K, target[n]);
		sum += logp[(size_t)n * K + target[n]];
	}
	return (float)(-sum / N);
}

// dlogp[n, k] (=) = -dloss/N where k = target[n], 0 elsewhere
void nll_loss_backward_ref(int N, int K, const int32_t *target, float dloss,
                           float *dlogp)
{
	for (int n = 0; n < N; n++) {
		check_target(K, target[n]);
		for (int k = 0; k < K; k++)
			dlogp[(size_t)n * K + k] = k == target[n] ? -dloss / (float)N : 0.0f;
	}
}

// ---- fast path ------------------------------------------------------------

// y = x - max - log(sum exp(x - max)): the max shift keeps exp finite.
void log_softmax_forward(int N, int K, const float *x, float *y)
{
	for (int n = 0; n < N; n++) {
		const float *xp = x + (size_t)n * K;
		float *yp = y + (size_t)n * K;
		float m = -INFINITY;
		for (int k = 0; k < K; k++)
			if (xp[k] > m)
				m = xp[k];
		double sum = 0.0;
		for (int k = 0; k < K; k++)
			sum += exp((double)xp[k] - m);
		float lse = (float)(m + log(sum));
		for (int k = 0; k < K; k++)
			yp[k] = xp[k] - lse;
	}
}

void log_softmax_backward(int N, int K, const float *y, const float *dy,
                          float *dx)
{
	for (int n = 0; n < N; n++) {
		const float *yp = y + (size_t)n * K, *gp = dy + (size_t)n * K;
		float *dp = dx + (size_t)n * K;
		double sum = 0.0;
		for (int k = 0; k < K; k++)
			sum += gp[k];
		for (int k = 0; k < K; k++)
			dp[k] = gp[k] - expf(yp[k]) * (float)sum;
	}
}

static void check_target(int K, int32_t t)
{
	if (t < 0 || t >= K)
		die("nll_loss: target %d outside [0, %d)", (int)t, K);
}

float nll_loss_forward(int N, int K, const float *logp, const int32_t *target)
{
	if (N <= 0)
		return NAN;   // PyTorch: mean over an empty batch is nan
	double sum = 0.0;
	for (int n = 0; n < N; n++) {
		check_target(K, target[n]);
		sum -= logp[(size_t)n * K + target[n]];
	}
	return (float)(sum / N);
}

void nll_loss_backward(int N, int K, const int32_t *target, float dloss,
                       float *dlogp)
{
	for (size_t i = 0; i < (size_t)N * K; i++)
		dlogp[i] = 0.0f;
	for (int n = 0; n < N; n++) {
		check_target(K, target[n]);
		dlogp[(size_t)n * K + target[n]] = -dloss / (float)N;
	}
}
