// libFuzzer harness for the .npy header parser: any input parses or fails
// cleanly; a parsed header formats back into one that parses to the same
// dtype and shape.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "formats/npy.h"
#include "formats/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	NpyHeader h, h2;
	size_t need = 0;
	char err[256];
	int rc = npy_parse(data, size, &h, &need, err, sizeof err);
	if (rc == 1 && (need <= size || need > 12 + NPY_MAX_HEADER))
		abort();
	if (rc != 0)
		return 0;
	if (h.data_offset > size || h.ndim > NPY_MAX_DIMS || !dtype_size(h.dtype))
		abort();
	if (h.ndim > TENSOR_MAX_DIMS + 1)
		return 0;
	unsigned char out[1024];
	size_t n = npy_format_header(out, sizeof out, h.dtype, h.ndim, h.dims, 0);
	if (!n || n % 64)
		abort();
	if (npy_parse(out, n, &h2, &need, err, sizeof err) != 0 || h2.dtype != h.dtype ||
	    h2.ndim != h.ndim || memcmp(h.dims, h2.dims, sizeof(int64_t) * (size_t)h.ndim) ||
	    h2.nbytes != h.nbytes || h2.data_offset != n)
		abort();
	return 0;
}
