// libFuzzer target: import_safetensors_mem on arbitrary bytes.
#include <stddef.h>
#include <stdint.h>
#include "formats/import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Record r;
	char err[512];
	record_init(&r);
	import_safetensors_mem(data, size, "fuzz.safetensors", &r, err, sizeof err);
	record_free(&r);
	return 0;
}
