// The device a tool runs on, picked once (exec.h: device_pick).
#include <stdlib.h>
#include <string.h>
#include "exec.h"
#include "libcommon/util/err.h"

const Backend *device_pick(const char *name)
{
	const char *from = name ? "--device" : "CNNPIPE_DEVICE";
	if (!name)
		name = getenv("CNNPIPE_DEVICE");
	if (!name || !*name || !strcmp(name, "cpu"))
		return backend_cpu();
	if (!strcmp(name, "cuda"))
		die("%s=cuda: this build has no CUDA backend (planned)", from);
	die("%s=%s: unknown device (cpu)", from, name);
}
