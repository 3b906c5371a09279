// precompute: images stream -> activations of the frozen body + concat pool
// (eval mode), batch by batch; with --full, the whole network's
// predictions.  See precompute(1).
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "formats/stream_shard.h"
#include "libcommon/engine/exec.h"
#include "libcommon/engine/image_batches.h"
#include "libcommon/engine/model_file.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/util/io.h"
#include "libcommon/util/progress.h"
#include "libcommon/util/threads.h"

#define USAGE "precompute -m MODEL [-b batch] [-j threads] [--full] [--shard i/n] [IMAGES] > ACTIVATIONS"

int main(int argc, char **argv)
{
	prog_init(argc, argv, USAGE);
	const char *model = NULL;
	long batch = 64, threads = num_cores(), shard_i = 1, shard_n = 1;
	int full = 0;
	enum { O_FULL = 256, O_PROGRESS, O_SHARD };
	static const struct option longopts[] = {
		{ "model", required_argument, 0, 'm' },
		{ "batch", required_argument, 0, 'b' },
		{ "threads", required_argument, 0, 'j' },
		{ "full", no_argument, 0, O_FULL },
		{ "progress", no_argument, 0, O_PROGRESS },
		{ "shard", required_argument, 0, O_SHARD },
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
		case O_SHARD: shard_option(optarg, &shard_i, &shard_n); break;
		default: die_usage(NULL);
		}
	}
	if (!model)
		die_usage("-m MODEL is required");
	if (argc - optind > 1)
		die_usage("one IMAGES stream at most");
	const char *inpath = optind < argc ? argv[optind] : "-";
	refuse_terminal_stdout();   // before the work, not after it
	const Backend *be = device_pick(NULL);
	be->set_threads((int)threads);

	Model m;
	model_load(&m, model);
	if (!full && m.head != HEAD_FASTAI)
		die("%s: an ImageNet classifier (pretrained --imagenet) has no fast.ai "
		    "head: make the model with -c or --classes-from", model);
	ImageBatches in;
	Stream *is = xstream_open_read(inpath);
	uint64_t lo = 0, hi = 0, total = 0;
	if (shard_n > 1 && stream_shard(is, shard_i, shard_n, &lo, &hi, &total) < 0)
		die("--shard %ld/%ld: %s", shard_i, shard_n, stream_error(is));
	image_batches_open_stream(&in, is, inpath, &m, model, (int)batch);
	image_batches_threads(&in, (int)threads);

	int last = full ? m.n - 1 : m.feat;
	int F = m.nodes[last].C;
	Stream *out = xstream_open_write("-");
	stream_meta_set(out, "kind", full ? "predictions" : "activations");
	if (stream_meta_get(in.in, "classes"))
		stream_meta_set(out, "classes", stream_meta_get(in.in, "classes"));
	else if (full && m.classes)
		stream_meta_set(out, "classes", m.classes);
	stream_meta_set(out, "labelled", in.labelled ? "1" : "0");
	stream_meta_setf(out, full ? "num_classes" : "features", "%d", F);
	stream_meta_set(out, "arch", m.arch);
	stream_meta_set(out, "model", model);
	if (full && m.classes)
		stream_meta_set(out, "model_classes", m.classes);
	if (stream_meta_get(in.in, "source"))
		stream_meta_set(out, "source", stream_meta_get(in.in, "source"));

	Exec ex;
	exec_init(&ex, &m, be);
	size_t per = (size_t)in.S * (size_t)in.S * 3;
	float *xdev = be->host_memory ? in.x : be->alloc((size_t)batch * per * sizeof(float));
	float *y = xmalloc_array((size_t)batch * (size_t)F * 2, sizeof(float));
	Record o;
	record_init(&o);
	Progress pr;
	progress_start(&pr, "precompute", 0);
	uint64_t done = 0;
	int n;
	while ((n = image_batches_next(&in)) > 0) {
		be->to_device(xdev, in.x, (size_t)n * per * sizeof(float));
		const float *yd = exec_forward(&ex, n, xdev, 0, last, 0, 0);
		be->to_host(y, yd, (size_t)n * F * sizeof(float));
		if (full)   // logits: the log-softmax's input
			be->to_host(y + (size_t)batch * F, ex.run[m.nodes[last].in].y,
			            (size_t)n * F * sizeof(float));
		for (int i = 0; i < n; i++) {
			record_clear(&o);
			int64_t d[1] = { F };
			record_add(&o, full ? "logp" : "x", DT_F32, 1, d, y + (size_t)i * F);
			if (full)
				record_add(&o, "logits", DT_F32, 1, d,
				           y + (size_t)batch * F + (size_t)i * F);
			if (in.labelled)
				record_add(&o, "label", DT_I32, 0, NULL, &in.label[i]);
			if (in.name[i])
				record_add_str(&o, "name", in.name[i]);
			xstream_write_record(out, &o);
		}
		done += (uint64_t)n;
		progress_update(&pr, done);
	}
	progress_end(&pr);
	// the input's end chunk (read with its last record) carries `skipped`
	stream_shard_counter(out, in.in, "skipped", shard_n == 1 || hi >= total);
	xstream_finish(out);
	image_batches_close(&in);
	if (!be->host_memory)
		be->free(xdev);
	free(y);
	record_free(&o);
	exec_free(&ex);
	model_free(&m);
	return 0;
}
