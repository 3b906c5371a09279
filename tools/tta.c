// tta: predictions of a model in eval mode — plain (fast.ai's
// learn.predict()) on images or activations, or with test-time
// augmentation (learn.TTA(n_aug)) on scaled photos.  See tta(1); the views
// are libcommon/image/tta_views.c, the network and the stream
// libcommon/engine/predict.c.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "formats/stream_shard.h"
#include "libcommon/engine/feature_batches.h"
#include "libcommon/engine/image_batches.h"
#include "libcommon/engine/model_file.h"
#include "libcommon/engine/predict.h"
#include "libcommon/engine/record_meta.h"
#include "libcommon/image/tta_views.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/util/io.h"
#include "libcommon/util/progress.h"
#include "libcommon/util/threads.h"

#define USAGE "tta -m MODEL [-n 4] [--seed N] [--zoom 1.1] [--rotate 10] " \
              "[--lighting 0.05,0.05] [--no-flip] [--top-down] [--all] [-b 64] " \
              "[--shard i/n] [-j threads] [STREAM] > PREDICTIONS"

// One pass's views of a batch of photos, on parallel_for's threads.
typedef struct {
	const PhotoBatches *pb;
	const Model *m;
	const AugConfig *cfg;
	uint64_t seed;
	int pass;
	float *x;              // (n, 3, S, S): the network's batch
	uint8_t **view;        // a (S, S, 3) view per thread
	AugScratch *sc;        // per thread
} Views;

static void make_views(void *ctx, size_t lo, size_t hi, int t)
{
	const Views *v = ctx;
	const PhotoBatches *pb = v->pb;
	int S = v->m->in_size;
	for (size_t i = lo; i < hi; i++) {
		if (v->pass == 0)
			tta_view_valid(pb->px[i], pb->h[i], pb->w[i], S, v->view[t]);
		else
			tta_view_aug(v->cfg, v->seed, v->pass, pb->first + i, pb->px[i],
			             pb->h[i], pb->w[i], v->view[t], &v->sc[t], NULL);
		image_normalise(v->m, v->view[t], v->x + i * (size_t)3 * S * S);
	}
}

// --lighting B,C
static void parse_lighting(const char *arg, AugConfig *c)
{
	char b[64];
	size_t k = strcspn(arg, ",");
	if (!arg[k] || k >= sizeof b)
		die_usage("--lighting: B,C expected, not '%s'", arg);
	memcpy(b, arg, k);
	b[k] = 0;
	c->b = parse_double("--lighting B", b, 0, 1);
	c->c = parse_double("--lighting C", arg + k + 1, 0, 1);
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, USAGE);
	const char *model = NULL;
	long naug = 4, batch = 64, threads = num_cores(), seed = 0, shard_i = 1, shard_n = 1;
	int all = 0, no_flip = 0, top_down = 0;
	AugConfig cfg;
	aug_config_default(&cfg, 1);
	enum { O_SEED = 256, O_ZOOM, O_ROTATE, O_LIGHTING, O_NO_FLIP, O_TOP_DOWN,
	       O_ALL, O_PROGRESS, O_SHARD };
	static const struct option lo[] = {
		{ "model", required_argument, 0, 'm' },
		{ "batch", required_argument, 0, 'b' },
		{ "threads", required_argument, 0, 'j' },
		{ "seed", required_argument, 0, O_SEED },
		{ "zoom", required_argument, 0, O_ZOOM },
		{ "rotate", required_argument, 0, O_ROTATE },
		{ "lighting", required_argument, 0, O_LIGHTING },
		{ "no-flip", no_argument, 0, O_NO_FLIP },
		{ "top-down", no_argument, 0, O_TOP_DOWN },
		{ "all", no_argument, 0, O_ALL },
		{ "progress", no_argument, 0, O_PROGRESS },
		{ "shard", required_argument, 0, O_SHARD },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "m:n:b:j:", lo, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case 'n': naug = parse_long("-n", optarg, 0, 1000); break;
		case 'b': batch = parse_long("-b", optarg, 1, 4096); break;
		case 'j': threads = parse_long("-j", optarg, 1, 256); break;
		case O_SEED: seed = parse_long("--seed", optarg, 0, INT64_MAX); break;
		case O_ZOOM: cfg.max_zoom = parse_double("--zoom", optarg, 1, 10); break;
		case O_ROTATE: cfg.deg = parse_double("--rotate", optarg, 0, 180); break;
		case O_LIGHTING: parse_lighting(optarg, &cfg); break;
		case O_NO_FLIP: no_flip = 1; break;
		case O_TOP_DOWN: top_down = 1; break;
		case O_ALL: all = 1; break;
		case O_PROGRESS: progress_force(1); break;
		case O_SHARD: shard_option(optarg, &shard_i, &shard_n); break;
		default: die_usage(NULL);
		}
	}
	if (!model)
		die_usage("-m MODEL is required");
	if (argc - optind > 1)
		die_usage("one STREAM at most");
	if (no_flip && top_down)
		die_usage("--no-flip and --top-down exclude each other");
	cfg.flip = top_down ? AUG_TOP_DOWN : no_flip ? AUG_NO_FLIP : AUG_SIDE_ON;
	refuse_terminal_stdout();   // before the work, not after it
	const char *path = optind < argc ? argv[optind] : "-";
	const Backend *be = device_pick(NULL);
	be->set_threads((int)threads);

	Model m;
	model_load(&m, model);
	cfg.size = m.in_size;
	Stream *in = xstream_open_read(path);
	uint64_t s_lo = 0, hi = 0, total = 0;
	if (shard_n > 1 && stream_shard(in, shard_i, shard_n, &s_lo, &hi, &total) < 0)
		die("--shard %ld/%ld: %s", shard_i, shard_n, stream_error(in));
	const char *kind = stream_meta_get(in, "kind");
	int feats = kind && !strcmp(kind, "activations");
	ImageBatches ib;
	FeatureBatches fb;
	PhotoBatches pb;
	int labelled;
	if (naug > 0) {
		if (feats)
			die("%s: activations: test-time augmentation views photos "
			    "(imgprep --scale); -n 0 predicts on activations", path);
		photo_batches_open_stream(&pb, in, path, (int)batch, m.in_size, cfg.max_zoom);
		if (m.head == HEAD_FASTAI)
			stream_check_classes(in, path, &m, model);
		labelled = pb.labelled;
	} else if (feats) {
		feature_batches_open_stream(&fb, in, path, &m, model, (int)batch);
		labelled = fb.labelled;
	} else {
		if (kind && !strcmp(kind, "images") && stream_meta_get(in, "scale"))
			die("%s: scaled photos of varying size (imgprep --scale): -n 0 "
			    "predicts on images of the model's size %d (imgprep -s %d); "
			    "-n N > 0 takes these", path, m.in_size, m.in_size);
		image_batches_open_stream(&ib, in, path, &m, model, (int)batch);
		image_batches_threads(&ib, (int)threads);
		labelled = ib.labelled;
	}

	Predictor pr;
	predictor_init(&pr, &m, be, feats ? PREDICT_FEATURES : PREDICT_IMAGES, (int)batch);
	int K = pr.K, P = (int)naug + 1, w0 = (int)(naug + 3) / 4;
	char desc[160] = "";
	if (naug > 0)
		snprintf(desc, sizeof desc, "zoom=%g rotate=%g lighting=%g,%g flip=%s",
		         cfg.max_zoom, cfg.deg, cfg.b, cfg.c,
		         cfg.flip == AUG_TOP_DOWN ? "top-down" :
		         cfg.flip == AUG_NO_FLIP ? "none" : "side-on");
	PredSpec spec = { .model_path = model, .labelled = labelled, .tta = (int)naug,
	                  .seed = (uint64_t)seed, .passes = all,
	                  .augment = naug > 0 ? desc : NULL, .in = in,
	                  .shard_before_end = shard_n > 1 && hi < total };
	PredWriter w;
	pred_writer_open(&w, &m, &spec);

	Progress prog;
	progress_start(&prog, "tta", 0);
	uint64_t done = 0;
	int n;
	if (naug == 0) {   // learn.predict(): one pass, the input as it is
		for (;;) {
			n = feats ? feature_batches_next(&fb) : image_batches_next(&ib);
			if (!n)
				break;
			const float *lp = predictor_run(&pr, n, feats ? fb.x : ib.x);
			for (int i = 0; i < n; i++)
				pred_writer_put(&w, lp + (size_t)i * K, lp + (size_t)i * K,
				                feats ? fb.label[i] : ib.label[i],
				                feats ? fb.name[i] : ib.name[i], path,
				                (feats ? fb.first : ib.first) + i);
			done += (uint64_t)n;
			progress_update(&prog, done);
		}
	} else {           // learn.TTA(): the validation view, then naug augmented
		size_t per = (size_t)3 * m.in_size * m.in_size;
		int nt = (int)threads;
		Views v = { .pb = &pb, .m = &m, .cfg = &cfg, .seed = (uint64_t)seed,
		            .x = xaligned_alloc(64, (size_t)batch * per * sizeof(float)),
		            .view = xcalloc((size_t)nt, sizeof(uint8_t *)),
		            .sc = xcalloc((size_t)nt, sizeof(AugScratch)) };
		for (int t = 0; t < nt; t++)
			v.view[t] = xmalloc(per);
		float *passes = xmalloc_array((size_t)batch * P, (size_t)K * sizeof(float));
		float *mean = xmalloc_array((size_t)K, sizeof(float));
		while ((n = photo_batches_next(&pb)) > 0) {
			for (int p = 0; p < P; p++) {
				v.pass = p;
				parallel_for((size_t)n, nt, make_views, &v);
				const float *lp = predictor_run(&pr, n, v.x);
				for (int i = 0; i < n; i++)
					memcpy(passes + ((size_t)i * P + p) * K, lp + (size_t)i * K,
					       (size_t)K * sizeof(float));
			}
			for (int i = 0; i < n; i++) {
				const float *pi = passes + (size_t)i * P * K;
				predict_mean_logp(P, K, pi, w0, mean);
				pred_writer_put(&w, mean, pi, pb.label[i], pb.name[i], path,
				                pb.first + i);
			}
			done += (uint64_t)n;
			progress_update(&prog, done);
		}
		for (int t = 0; t < nt; t++) {
			free(v.view[t]);
			aug_scratch_free(&v.sc[t]);
		}
		free(v.view);
		free(v.sc);
		free(v.x);
		free(passes);
		free(mean);
	}
	progress_end(&prog);
	pred_writer_finish(&w, in);
	if (naug > 0)
		photo_batches_close(&pb);
	else if (feats)
		feature_batches_close(&fb);
	else
		image_batches_close(&ib);
	predictor_free(&pr);
	model_free(&m);
	return 0;
}
