// libFuzzer target: import_pth_mem on arbitrary bytes (zip and legacy
// layouts, the unpickler).  Must return, never crash or die.
#include <stddef.h>
#include <stdint.h>
#include "formats/import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Record r;
	char err[512];
	record_init(&r);
	import_pth_mem(data, size, "fuzz.pth", &r, err, sizeof err);
	record_free(&r);
	return 0;
}
