// libFuzzer harness for a darknet cfg all the way to a model: parsed, built
// (a fast.ai head, or the ImageNet classifier when the first byte is odd)
// with its parameters capped at FUZZ_MAX_PARAM_BYTES, as pretrained builds
// it under the size of its weights.  A network that builds must pass the
// writer's check, and the model file written from it must be read back
// (pretrained writes nothing precompute refuses).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "formats/import.h"
#include "formats/stream.h"
#include "libcommon/engine/backbone.h"
#include "libcommon/engine/model_check.h"
#include "libcommon/engine/model_file.h"

#define FUZZ_MAX_PARAM_BYTES ((size_t)64 << 20)

static void round_trip(const Model *m)
{
	static char path[64];
	if (!path[0])
		snprintf(path, sizeof path, "/tmp/fuzz_darknet_cfg.%d.model", (int)getpid());
	model_save(m, path);
	Stream *s = stream_open_read(path);
	if (!s)
		abort();
	Model back;
	char err[1024];
	if (model_read(&back, s, "model", err, sizeof err) < 0) {
		fprintf(stderr, "written but not read back: %s\n", err);
		abort();
	}
	if (back.n != m->n || back.params.n != m->params.n ||
	    model_param_bytes(&back) != model_param_bytes(m))
		abort();
	model_free(&back);
	stream_close(s);
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	int imagenet = data[0] & 1;
	DarknetNet net;
	char err[1024];
	if (darknet_parse_cfg_mem((const char *)data + 1, size - 1, "fuzz.cfg", &net,
	                          err, sizeof err))
		return 0;
	ModelSpec spec = { .arch = "darknet", .head = imagenet ? HEAD_IMAGENET : HEAD_FASTAI,
	                   .num_classes = 2, .cfg_text = (const char *)data + 1,
	                   .cfg_len = size - 1, .darknet = &net, .init_head = 1,
	                   .seed = 1, .max_param_bytes = FUZZ_MAX_PARAM_BYTES,
	                   .max_param_what = "the fuzzer's cap" };
	Model m;
	if (model_build(&m, &spec, err, sizeof err) == 0) {
		if (model_check(&m, err, sizeof err) < 0) {
			fprintf(stderr, "built but refused by model_check: %s\n", err);
			abort();
		}
		round_trip(&m);
	}
	model_free(&m);
	darknet_free(&net);
	return 0;
}
