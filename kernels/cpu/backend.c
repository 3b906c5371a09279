// The CPU backend: the table of kernels/backend.h filled with the CPU ops
// (ops.h).  Device memory is host memory.
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"
#include "libcommon/util/alloc.h"
#include "ops.h"

static void *cpu_alloc(size_t bytes)
{
	return xaligned_alloc(64, bytes ? bytes : 64);
}

static void cpu_free(void *p)
{
	free(p);
}

static void cpu_copy(void *dst, const void *src, size_t bytes)
{
	if (bytes && dst != src)
		memcpy(dst, src, bytes);
}

static void cpu_zero(void *p, size_t bytes)
{
	if (bytes)
		memset(p, 0, bytes);
}

static const Backend CPU = {
	.name = "cpu",
	.host_memory = 1,
	.alloc = cpu_alloc,
	.free = cpu_free,
	.to_device = cpu_copy,
	.to_host = cpu_copy,
	.copy = cpu_copy,
	.zero = cpu_zero,
	.set_threads = ops_set_threads,
	.set_bf16 = ops_set_bf16,
	.conv_cache_new = conv_cache_new,
	.conv_cache_free = conv_cache_free,
	.conv_cache_invalidate = conv_cache_invalidate,
	.conv2d_forward = conv2d_forward_cached,
	.conv2d_forward_fused = conv2d_forward_fused,
	.conv2d_forward_fused_maxpool2 = conv2d_forward_fused_maxpool2,
	.conv2d_forward_fused_pointwise = conv2d_forward_fused_pointwise,
	.conv2d_backward = conv2d_backward,
	.conv_fold_batchnorm = conv_fold_batchnorm,
	.batchnorm_forward_train = batchnorm_forward_train,
	.batchnorm_forward_train_act = batchnorm_forward_train_act,
	.batchnorm_act_maxpool2_forward_train = batchnorm_act_maxpool2_forward_train,
	.batchnorm_act_maxpool2_backward_train = batchnorm_act_maxpool2_backward_train,
	.batchnorm_forward_eval = batchnorm_forward_eval,
	.batchnorm_backward_train = batchnorm_backward_train,
	.batchnorm_backward_train_act = batchnorm_backward_train_act,
	.batchnorm_backward_eval = batchnorm_backward_eval,
	.relu_forward = relu_forward,
	.relu_backward = relu_backward,
	.leaky_relu_forward = leaky_relu_forward,
	.leaky_relu_backward = leaky_relu_backward,
	.add_forward = add_forward,
	.shortcut_forward = shortcut_forward,
	.shortcut_backward = shortcut_backward,
	.dropout_forward = dropout_forward,
	.dropout_backward = dropout_backward,
	.maxpool2d_forward = maxpool2d_forward,
	.maxpool2d_backward = maxpool2d_backward,
	.avgpool2d_forward = avgpool2d_forward,
	.avgpool2d_backward = avgpool2d_backward,
	.concat_pool_forward = concat_pool_forward,
	.concat_pool_backward = concat_pool_backward,
	.global_avgpool_forward = global_avgpool_forward,
	.global_avgpool_backward = global_avgpool_backward,
	.linear_forward = linear_forward,
	.linear_forward_fixed = linear_forward_fixed,
	.linear_backward = linear_backward,
	.log_softmax_forward = log_softmax_forward,
	.log_softmax_backward = log_softmax_backward,
	.nll_loss_forward = nll_loss_forward,
	.nll_loss_backward = nll_loss_backward,
	.sgd_momentum_update = sgd_momentum_update,
};

const Backend *backend_cpu(void)
{
	return &CPU;
}
