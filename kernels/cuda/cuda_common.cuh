// What every file of the CUDA backend shares: the C headers it includes,
// the checks that name a failing call, the library handles, scratch memory
// and the launch shape of elementwise kernels.  Each op is in its own .cu
// file; ops_cuda.cuh declares them and backend.cu puts them in the table.
#ifndef CNNPIPE_CUDA_COMMON_CUH
#define CNNPIPE_CUDA_COMMON_CUH
#include <stddef.h>
#include <stdint.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <cublas_v2.h>

// err.h declares die() _Noreturn, a C11 keyword that C++ lacks.
#ifndef _Noreturn
#define _Noreturn __attribute__((noreturn))
#endif
extern "C" {
#include "kernels/backend.h"
#include "libcommon/util/err.h"
}

// The checks: a failure dies with the call's own text, e.g.
//   train: cuda: cudaMalloc(&p, bytes): out of memory (kernels/cuda/backend.cu:31)
#define CUDA_CHECK(call)   cuda_check((call), #call, __FILE__, __LINE__)
#define CUDNN_CHECK(call)  cudnn_check((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) cublas_check((call), #call, __FILE__, __LINE__)
// After a kernel launch: the launch error (bad configuration), and with
// CNNPIPE_CUDA_SYNC=1 the kernel's own, synchronously, naming the kernel.
#define LAUNCH_CHECK(kernel) cuda_launch_check(#kernel, __FILE__, __LINE__)

void cuda_check(cudaError_t e, const char *call, const char *file, int line);
void cudnn_check(cudnnStatus_t s, const char *call, const char *file, int line);
void cublas_check(cublasStatus_t s, const char *call, const char *file, int line);
void cuda_launch_check(const char *kernel, const char *file, int line);

// The handles of the one device the process uses, set up by
// cuda_context_open (backend_cuda, before any op can run): 0, or -1 with
// the reason in err; cuda_context_close frees them and the scratch.
int cuda_context_open(char *err, size_t errlen);
void cuda_context_close(void);
cudnnHandle_t cuda_cudnn(void);
cublasHandle_t cuda_cublas(void);
// Tensor-core TF32 for f32 convolutions and GEMMs (CNNPIPE_CUDA_TF32=1);
// off by default, so results stay within f32 rounding of the references.
int cuda_tf32(void);

// Device scratch of at least `bytes`, valid until the next call of the same
// function (ops use one at a time, within one call).  The convolution's
// cuDNN workspace is the other one, so that an op may hold both.
void *cuda_scratch(size_t bytes);
void *cuda_workspace(size_t bytes);

// Grid of a grid-stride loop over n items, THREADS per block.
#define THREADS 256
static inline unsigned grid_for(size_t n)
{
	size_t b = (n + THREADS - 1) / THREADS;
	return (unsigned)(b < 1 ? 1 : b > 65535 ? 65535 : b);
}
#define GRID_STRIDE(i, n) \
	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
	     i += (size_t)blockDim.x * gridDim.x)

#endif
