// The statistics of one training batch-norm channel from its sums, shared
// by the channel path (batchnorm.c) and the rows path (batchnorm1d.c), so
// that both finish a channel with the same operations and bits.
#include <math.h>
#include "ops_internal.h"

void bn_finish_channel(int c, double M, double k, double s1, double s2,
                       const float *gamma, const float *beta, float *running_mean,
                       float *running_var, float momentum, float eps,
                       float *save_mean, float *save_invstd, float *scale,
                       float *shift)
{
	double mean = k + s1 / M, ss = s2 - s1 * s1 / M;
	if (ss < 0)
		ss = 0;
	double var = ss / M;
	double invstd = 1.0 / sqrt(var + eps);
	// PyTorch refuses M == 1 in training; we keep the biased value there.
	double uvar = M > 1 ? ss / (M - 1) : var;
	if (running_mean)
		running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mean);
	if (running_var)
		running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * uvar);
	if (save_mean)
		save_mean[c] = (float)mean;
	if (save_invstd)
		save_invstd[c] = (float)invstd;
	float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
	*scale = (float)(g * invstd);
	*shift = (float)(b - mean * g * invstd);
}
