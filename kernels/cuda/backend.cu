// The CUDA backend: the table of kernels/backend.h filled with the ops of
// this folder (ops_cuda.cuh); device memory from plain cudaMalloc, copies
// through cudaMemcpy on the default stream (synchronous for the host, so a
// host buffer may be reused as soon as a copy returns).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops_cuda.cuh"

// ---- memory -------------------------------------------------------------------

static void *cu_alloc(size_t bytes)
{
	void *p = NULL;
	size_t want = bytes ? bytes : 64;
	cudaError_t e = cudaMalloc(&p, want);   // 256-byte aligned
	if (e != cudaSuccess)
		die("cuda: cudaMalloc(%zu bytes): %s", want, cudaGetErrorString(e));
	return p;
}

static void cu_free(void *p)
{
	if (p)
		CUDA_CHECK(cudaFree(p));
}

static void cu_to_device(void *dst, const void *host, size_t bytes)
{
	if (bytes)
		CUDA_CHECK(cudaMemcpy(dst, host, bytes, cudaMemcpyHostToDevice));
}

static void cu_to_host(void *host, const void *src, size_t bytes)
{
	if (bytes)
		CUDA_CHECK(cudaMemcpy(host, src, bytes, cudaMemcpyDeviceToHost));
}

static void cu_copy(void *dst, const void *src, size_t bytes)
{
	if (bytes && dst != src)
		CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}

static void cu_zero(void *p, size_t bytes)
{
	if (bytes)
		CUDA_CHECK(cudaMemset(p, 0, bytes));
}

static void cu_set_threads(int n)
{
	(void)n;   // the host does no numeric work here
}

// ---- the table ----------------------------------------------------------------

static Backend table;

static void fill_table(Backend *t)
{
	memset(t, 0, sizeof *t);
	t->name = "cuda";
	t->host_memory = 0;
	t->alloc = cu_alloc;
	t->free = cu_free;
	t->to_device = cu_to_device;
	t->to_host = cu_to_host;
	t->copy = cu_copy;
	t->zero = cu_zero;
	t->set_threads = cu_set_threads;
	t->conv_cache_new = cu_conv_cache_new;
	t->conv_cache_free = cu_conv_cache_free;
	t->conv_cache_invalidate = cu_conv_cache_invalidate;
	t->conv2d_forward = cu_conv2d_forward;
	t->conv2d_forward_fused = cu_conv2d_forward_fused;
	t->conv2d_backward = cu_conv2d_backward;
	t->conv_fold_batchnorm = cu_conv_fold_batchnorm;
	t->batchnorm_forward_train = cu_batchnorm_forward_train;
	t->batchnorm_forward_eval = cu_batchnorm_forward_eval;
	t->batchnorm_backward_train = cu_batchnorm_backward_train;
	t->batchnorm_backward_eval = cu_batchnorm_backward_eval;
	t->relu_forward = cu_relu_forward;
	t->relu_backward = cu_relu_backward;
	t->leaky_relu_forward = cu_leaky_relu_forward;
	t->leaky_relu_backward = cu_leaky_relu_backward;
	t->add_forward = cu_add_forward;
	t->shortcut_forward = cu_shortcut_forward;
	t->shortcut_backward = cu_shortcut_backward;
	t->dropout_forward = cu_dropout_forward;
	t->dropout_backward = cu_dropout_backward;
	t->maxpool2d_forward = cu_maxpool2d_forward;
	t->maxpool2d_backward = cu_maxpool2d_backward;
	t->avgpool2d_forward = cu_avgpool2d_forward;
	t->avgpool2d_backward = cu_avgpool2d_backward;
	t->concat_pool_forward = cu_concat_pool_forward;
	t->concat_pool_backward = cu_concat_pool_backward;
	t->global_avgpool_forward = cu_global_avgpool_forward;
	t->global_avgpool_backward = cu_global_avgpool_backward;
	t->linear_forward = cu_linear_forward;
	// cuBLAS's order does not change with the batch for one shape's calls;
	// no claim beyond that is tested (no GPU here)
	t->linear_forward_fixed = cu_linear_forward;
	t->linear_backward = cu_linear_backward;
	t->log_softmax_forward = cu_log_softmax_forward;
	t->log_softmax_backward = cu_log_softmax_backward;
	t->nll_loss_forward = cu_nll_loss_forward;
	t->nll_loss_backward = cu_nll_loss_backward;
	t->sgd_momentum_update = cu_sgd_momentum_update;
}

// At exit (also after die): what the backend holds, errors ignored.
static void teardown(void)
{
	cu_conv_plans_free();
	cu_dropout_free();
	cuda_context_close();
}

extern "C" const Backend *backend_cuda(char *err, size_t errlen)
{
	static int ready;
	if (ready)
		return &table;
	if (cuda_context_open(err, errlen))
		return NULL;
	atexit(teardown);
	fill_table(&table);
	ready = 1;
	return &table;
}
