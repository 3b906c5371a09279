// The CUDA backend's shared state (cuda_common.cuh): the checks that name a
// failing call, the cuDNN and cuBLAS handles of the one device a process
// uses, and the scratch memory ops borrow.  Its own file so that the ops
// and the table (backend.cu) both call into it and not into each other.
#include <stdlib.h>
#include <string.h>
#include "cublas_open.cuh"

// ---- checks -----------------------------------------------------------------

void cuda_check(cudaError_t e, const char *call, const char *file, int line)
{
	if (e != cudaSuccess)
		die("cuda: %s: %s (%s:%d)", call, cudaGetErrorString(e), file, line);
}

void cudnn_check(cudnnStatus_t s, const char *call, const char *file, int line)
{
	if (s != CUDNN_STATUS_SUCCESS)
		die("cudnn: %s: %s (%s:%d)", call, cudnnGetErrorString(s), file, line);
}

void cublas_check(cublasStatus_t s, const char *call, const char *file, int line)
{
	if (s != CUBLAS_STATUS_SUCCESS)
		die("cublas: %s: %s (%s:%d)", call, cublas_calls.status_string(s), file, line);
}

static int sync_each;   // CNNPIPE_CUDA_SYNC=1: wait for every kernel

void cuda_launch_check(const char *kernel, const char *file, int line)
{
	cudaError_t e = cudaGetLastError();
	if (e == cudaSuccess && sync_each)
		e = cudaDeviceSynchronize();
	if (e != cudaSuccess)
		die("cuda: kernel %s: %s (%s:%d)", kernel, cudaGetErrorString(e), file, line);
}

// ---- the device's handles and scratch -----------------------------------------

static cudnnHandle_t cudnn;
static cublasHandle_t cublas;
static int tf32;
static void *scratch, *workspace;
static size_t scratch_len, workspace_len;

cudnnHandle_t cuda_cudnn(void) { return cudnn; }
cublasHandle_t cuda_cublas(void) { return cublas; }
int cuda_tf32(void) { return tf32; }

static void *grow(void **p, size_t *len, size_t bytes, const char *what)
{
	if (bytes <= *len && *p)
		return *p;
	if (*p)
		CUDA_CHECK(cudaFree(*p));
	*p = NULL;
	*len = 0;
	size_t want = bytes ? bytes : 256;
	cudaError_t e = cudaMalloc(p, want);
	if (e != cudaSuccess)
		die("cuda: cudaMalloc(%zu bytes of %s): %s", want, what, cudaGetErrorString(e));
	*len = want;
	return *p;
}

void *cuda_scratch(size_t bytes)
{
	return grow(&scratch, &scratch_len, bytes, "scratch");
}

void *cuda_workspace(size_t bytes)
{
	return grow(&workspace, &workspace_len, bytes, "cuDNN workspace");
}

int cuda_context_open(char *err, size_t errlen)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess)
		return err_set(err, errlen, "no GPU answers (cudaGetDeviceCount: %s)",
		               cudaGetErrorString(e));
	if (n < 1)
		return err_set(err, errlen, "no GPU answers (cudaGetDeviceCount: 0 devices)");
	if ((e = cudaSetDevice(0)) != cudaSuccess)
		return err_set(err, errlen, "cudaSetDevice(0): %s", cudaGetErrorString(e));
	// cuDNN's major version at run time must be the one compiled against.
	size_t v = cudnnGetVersion();
	if (v / 10000 != CUDNN_VERSION / 10000)
		return err_set(err, errlen, "cuDNN %zu found at run time, built against %d",
		               v, CUDNN_VERSION);
	cudnnStatus_t ds = cudnnCreate(&cudnn);
	if (ds != CUDNN_STATUS_SUCCESS) {
		cudnn = NULL;
		return err_set(err, errlen, "cudnnCreate: %s", cudnnGetErrorString(ds));
	}
	if (cublas_open(err, errlen)) {
		cuda_context_close();
		return -1;
	}
	cublasStatus_t bs = cublas_calls.create(&cublas);
	if (bs != CUBLAS_STATUS_SUCCESS) {
		cublas = NULL;
		cuda_context_close();
		return err_set(err, errlen, "cublasCreate: %s", cublas_calls.status_string(bs));
	}
	const char *t = getenv("CNNPIPE_CUDA_TF32");
	tf32 = t && !strcmp(t, "1");
	const char *s = getenv("CNNPIPE_CUDA_SYNC");
	sync_each = s && !strcmp(s, "1");
	CUBLAS_CHECK(cublas_calls.set_math_mode(cublas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
	                                                         : CUBLAS_DEFAULT_MATH));
	return 0;
}

// Errors are ignored here: the process is ending, maybe because of one.
void cuda_context_close(void)
{
	if (scratch)
		cudaFree(scratch);
	if (workspace)
		cudaFree(workspace);
	scratch = workspace = NULL;
	scratch_len = workspace_len = 0;
	if (cublas)
		cublas_calls.destroy(cublas);
	if (cudnn)
		cudnnDestroy(cudnn);
	cublas = NULL;
	cudnn = NULL;
}
