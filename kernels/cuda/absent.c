// backend_cuda in a build without the CUDA backend (no nvcc or no cuDNN
// found by the Makefile): the same door, which always says why it is shut,
// so the engine asks for the GPU one way whatever the build.
#include "kernels/backend.h"
#include "libcommon/util/err.h"

const Backend *backend_cuda(char *err, size_t errlen)
{
	err_set(err, errlen, "this build has no GPU support (built without nvcc "
	        "and cuDNN; see README.md, \"The GPU\")");
	return NULL;
}
