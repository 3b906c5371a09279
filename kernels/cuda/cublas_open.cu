// cuBLAS opened at run time (dlopen) when the GPU is picked, not linked:
// loading libcublas and libcublasLt costs a process 0.2-0.4 s at start,
// which every program (imgprep as much as train, CPU runs included) would
// pay on each start.  The few calls the backend makes go through the
// pointers here, under the names cuBLAS gives them.
#include <dlfcn.h>
#include <stdio.h>
#include "cublas_open.cuh"

CublasCalls cublas_calls;

#define STR2(x) #x
#define STR(x) STR2(x)

static int sym(void *lib, const char *name, void **fn, char *err, size_t errlen)
{
	*fn = dlsym(lib, name);
	if (!*fn) {
		err_set(err, errlen, "cuBLAS lacks %s: %s", name, dlerror());
		return -1;
	}
	return 0;
}

int cublas_open(char *err, size_t errlen)
{
	static void *lib;
	if (lib)
		return 0;
	const char *soname = "libcublas.so." STR(CUBLAS_VER_MAJOR);
#ifdef CNNPIPE_CUDA_LIBDIR
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", CNNPIPE_CUDA_LIBDIR, soname);
	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
#endif
	if (!lib)
		lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		err_set(err, errlen, "cannot open cuBLAS (%s): %s", soname, dlerror());
		return -1;
	}
	CublasCalls *c = &cublas_calls;
	if (sym(lib, "cublasCreate_v2", (void **)&c->create, err, errlen) ||
	    sym(lib, "cublasDestroy_v2", (void **)&c->destroy, err, errlen) ||
	    sym(lib, "cublasSetMathMode", (void **)&c->set_math_mode, err, errlen) ||
	    sym(lib, "cublasGetStatusString", (void **)&c->status_string, err, errlen) ||
	    sym(lib, "cublasSgemm_v2", (void **)&c->sgemm, err, errlen)) {
		dlclose(lib);
		lib = NULL;
		return -1;
	}
	return 0;
}
