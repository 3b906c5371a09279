// The cuBLAS calls of the backend, reached through dlopen (cublas_open.cu
// says why); cublas_open fills them once, before the first is used.
#ifndef CNNPIPE_CUBLAS_OPEN_CUH
#define CNNPIPE_CUBLAS_OPEN_CUH
#include "cuda_common.cuh"

typedef struct {
	decltype(&cublasCreate_v2) create;
	decltype(&cublasDestroy_v2) destroy;
	decltype(&cublasSetMathMode) set_math_mode;
	decltype(&cublasGetStatusString) status_string;
	decltype(&cublasSgemm_v2) sgemm;
} CublasCalls;

extern CublasCalls cublas_calls;

// 0, or -1 with the reason in err (the library or a symbol missing).
int cublas_open(char *err, size_t errlen);

#endif
