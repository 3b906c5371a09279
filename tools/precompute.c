// precompute: images stream -> activations of the frozen body + concat pool
// (eval mode), batch by batch.  See precompute(1).
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/engine/model_file.h"
#include "libcommon/engine/net.h"
#include "libcommon/util/progress.h"
#include "formats/stream.h"
#include "libcommon/util/threads.h"

#define USAGE "precompute -m MODEL [-b batch] [-j threads] [IMAGES] > ACTIVATIONS"

typedef struct {
	char *name;
	int32_t label;
} Meta1;

int main(int argc, char **argv)
{
	prog_init(argc, argv, USAGE);
	const char *model = NULL;
	long batch = 64, threads = num_cores();
	int full = 0;
	enum { O_FULL = 256, O_PROGRESS };
	static const struct option longopts[] = {
		{ "model", required_argument, 0, 'm' },
		{ "batch", required_argument, 0, 'b' },
		{ "threads", required_argument, 0, 'j' },
		// Hidden (see precompute(1), DIAGNOSTICS): the whole network,
		// writing predictions; how an import is checked on photos.
		{ "full", no_argument, 0, O_FULL },
		{ "progress", no_argument, 0, O_PROGRESS },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "m:b:j:", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case 'b': batch = parse_long("-b", optarg, 1, 4096); break;
		case 'j': threads = parse_long("-j", optarg, 1, 256); break;
		case O_FULL: full = 1; break;
		case O_PROGRESS: progress_force(1); break;
		default: die_usage(NULL);
		}
	}
	if (!model)
		die_usage("-m MODEL is required");
	if (argc - optind > 1)
		die_usage("one IMAGES stream at most");
	const char *inpath = optind < argc ? argv[optind] : "-";
	net_set_threads((int)threads);

	Net net;
	model_load(&net, model);
	if (!full && net.head != HEAD_FASTAI)
		die("%s: an ImageNet classifier (pretrained --imagenet) has no fast.ai "
		    "head: make the model with -c or --classes-from", model);

	Stream *in = xstream_open_read(inpath);
	const char *kind = stream_meta_get(in, "kind");
	if (!kind || strcmp(kind, "images"))
		die("%s: not an images stream (kind=%s)", inpath, kind ? kind : "none");
	const char *v = stream_meta_get(in, "size");
	long S = v ? strtol(v, NULL, 10) : -1;
	if (S != net.in_size)
		die("%s: images of size %s, the model %s needs %d", inpath, v ? v : "?",
		    model, net.in_size);
	v = stream_meta_get(in, "channels");
	if (!v || strtol(v, NULL, 10) != net.in_c)
		die("%s: images with %s channels, the model %s needs %d", inpath,
		    v ? v : "?", model, net.in_c);
	v = stream_meta_get(in, "layout");
	if (v && strcmp(v, "HWC"))
		die("%s: layout %s, need HWC", inpath, v);
	v = stream_meta_get(in, "labelled");
	int labelled = !v || strcmp(v, "0");

	int last = full ? net.n - 1 : net.feat;
	int F = net.nodes[last].C;
	Stream *out = xstream_open_write("-");
	stream_meta_set(out, "kind", full ? "predictions" : "activations");
	if (stream_meta_get(in, "classes"))
		stream_meta_set(out, "classes", stream_meta_get(in, "classes"));
	else if (full && net.classes)
		stream_meta_set(out, "classes", net.classes);
	stream_meta_set(out, "labelled", labelled ? "1" : "0");
	stream_meta_setf(out, full ? "num_classes" : "features", "%d", F);
	stream_meta_set(out, "arch", net.arch);
	stream_meta_set(out, "model", model);
	if (full && net.classes)
		stream_meta_set(out, "model_classes", net.classes);
	if (stream_meta_get(in, "source"))
		stream_meta_set(out, "source", stream_meta_get(in, "source"));

	size_t plane = (size_t)S * S, per = plane * 3;
	float *x = xaligned_alloc(64, (size_t)batch * per * sizeof(float));
	Meta1 *meta = xcalloc((size_t)batch, sizeof *meta);
	float scale[3], shift[3];
	for (int k = 0; k < 3; k++) {
		// (v/255 - mean)/std = v*scale + shift
		scale[k] = 1.0f / (255.0f * net.std[k]);
		shift[k] = -net.mean[k] / net.std[k];
	}
	Record r, o;
	record_init(&r);
	record_init(&o);
	Progress pr;
	progress_start(&pr, "precompute", 0);
	uint64_t done = 0;
	for (;;) {
		int n = 0;
		while (n < batch && xstream_read_record(in, &r)) {
			Tensor *im = record_find(&r, "image");
			uint64_t idx = stream_count(in) - 1;
			if (!im || im->dtype != DT_U8 || im->ndim != 3 || im->dims[0] != S ||
			    im->dims[1] != S || im->dims[2] != 3)
				die("%s: record %llu: no u8 image tensor of shape (%ld, %ld, 3)",
				    inpath, (unsigned long long)idx, S, S);
			const uint8_t *p = im->data;
			float *xo = x + (size_t)n * per;
			// HWC u8 -> CHW f32, normalised
			for (size_t q = 0; q < plane; q++)
				for (int k = 0; k < 3; k++)
					xo[k * plane + q] = p[q * 3 + k] * scale[k] + shift[k];
			Tensor *nm = record_find(&r, "name");
			char buf[4096] = "";
			if (nm && nm->dtype == DT_STR)
				tensor_str(nm, buf, sizeof buf);
			free(meta[n].name);
			meta[n].name = nm ? xstrdup(buf) : NULL;
			meta[n].label = -1;
			if (labelled) {
				Tensor *lb = record_find(&r, "label");
				if (!lb || lb->dtype != DT_I32 || tensor_numel(lb) != 1)
					die("%s: record %llu: no i32 label in a labelled stream",
					    inpath, (unsigned long long)idx);
				meta[n].label = *(int32_t *)lb->data;
			}
			n++;
		}
		if (!n)
			break;
		const float *y = net_forward(&net, n, x, 0, last, 0, 0);
		for (int i = 0; i < n; i++) {
			record_clear(&o);
			int64_t d[1] = { F };
			record_add(&o, full ? "logp" : "x", DT_F32, 1, d, y + (size_t)i * F);
			if (full) {
				// logits: the log-softmax's input
				const float *z = net.nodes[net.nodes[last].in].y;
				record_add(&o, "logits", DT_F32, 1, d, z + (size_t)i * F);
			}
			if (labelled)
				record_add(&o, "label", DT_I32, 0, NULL, &meta[i].label);
			if (meta[i].name)
				record_add_str(&o, "name", meta[i].name);
			xstream_write_record(out, &o);
		}
		done += (uint64_t)n;
		progress_update(&pr, done);
		if (n < batch)
			break;
	}
	progress_end(&pr);
	// the input's end chunk (read with its last record) carries `skipped`
	if (stream_meta_get(in, "skipped"))
		stream_meta_set_end(out, "skipped", stream_meta_get(in, "skipped"));
	xstream_finish(out);
	stream_close(in);
	for (long i = 0; i < batch; i++)
		free(meta[i].name);
	free(meta);
	free(x);
	record_free(&r);
	record_free(&o);
	net_free(&net);
	return 0;
}
