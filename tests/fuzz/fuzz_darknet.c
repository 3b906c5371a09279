// libFuzzer target: a darknet cfg, a NUL byte, then .weights bytes; the cfg
// is parsed and, if valid, the weights are loaded for it.
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "formats/import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t cl = nul ? (size_t)(nul - data) : size;
	DarknetNet net;
	char err[512];
	if (darknet_parse_cfg_mem((const char *)data, cl, "fuzz.cfg", &net, err,
	                          sizeof err))
		return 0;
	if (nul) {
		Record r;
		record_init(&r);
		darknet_load_weights_mem(nul + 1, size - cl - 1, "fuzz.weights", &net,
		                         &r, err, sizeof err);
		record_free(&r);
	}
	darknet_free(&net);
	return 0;
}
