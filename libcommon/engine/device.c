// The device a tool runs on, picked once (exec.h: device_pick).
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "exec.h"
#include "libcommon/util/err.h"

// A backend whose table lacks an operation the CPU's has (an entry added
// to backend.h and not yet written for it) is refused here, naming how many,
// rather than crashing on the NULL when the engine first calls it.  The
// table after host_memory is function pointers only.  Optional entries,
// which the engine checks before it calls them, do not count.
static int missing_ops(const Backend *be)
{
	typedef void (*Fn)(void);
	const Backend *cpu = backend_cpu();
	int missing = 0;
	for (size_t off = offsetof(Backend, alloc); off + sizeof(Fn) <= sizeof(Backend);
	     off += sizeof(Fn)) {
		if (off == offsetof(Backend, conv2d_forward_fused_maxpool2) ||
		    off == offsetof(Backend, conv2d_forward_fused_pointwise) ||
		    off == offsetof(Backend, batchnorm_forward_train_act) ||
		    off == offsetof(Backend, batchnorm_act_maxpool2_forward_train) ||
		    off == offsetof(Backend, batchnorm_act_maxpool2_backward_train))
			continue;
		Fn a, b;
		memcpy(&a, (const char *)cpu + off, sizeof a);
		memcpy(&b, (const char *)be + off, sizeof b);
		missing += a && !b;
	}
	return missing;
}

const Backend *device_pick(const char *name)
{
	const char *from = name ? "--device" : "CNNPIPE_DEVICE";
	if (!name)
		name = getenv("CNNPIPE_DEVICE");
	if (!name || !*name || !strcmp(name, "cpu"))
		return backend_cpu();
	if (!strcmp(name, "cuda")) {
		char err[256];
		const Backend *be = backend_cuda(err, sizeof err);
		if (!be)
			die("%s=cuda: %s", from, err);
		int k = missing_ops(be);
		if (k)
			die("%s=cuda: the CUDA backend lacks %d of the CPU's operations "
			    "(kernels/backend.h)", from, k);
		return be;
	}
	die("%s=%s: unknown device (cpu, cuda)", from, name);
}
