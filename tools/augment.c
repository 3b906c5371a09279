// augment: fast.ai's training augmentation (transforms_side_on with
// max_zoom) of an images stream, in shuffled seeded epochs.  See augment(1);
// the transforms are in libcommon/image/augment.c.
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "formats/stream.h"
#include "formats/stream_shard.h"
#include "libcommon/image/augment.h"
#include "libcommon/util/err.h"
#include "libcommon/util/io.h"
#include "libcommon/util/ordered.h"
#include "libcommon/util/progress.h"
#include "libcommon/util/threads.h"

#define USAGE "augment [-s size] [--zoom 1.1] [--rotate 10] [--lighting 0.05,0.05] [--no-flip] [--top-down] [--epochs N] [--seed N] [-j threads] [--shard i/n] [--params] [IMAGES]"

// One augmented record: the ordered map's result slot.
typedef struct {
	int ok;
	char err[600];
	uint32_t src;   // the source's index
	AugParams p;
	uint8_t px[];   // (size, size, 3)
} Slot;

// A worker's reader and buffers.
typedef struct {
	AugReader rd;
	AugScratch sc;
} State;

typedef struct {
	const AugSources *S;
	const AugConfig *cfg;
	AugOrder order;
	uint64_t seed;
	int params;
	Stream *out;
	Record r;
	Progress pr;
} Job;

// Item k = position k % n of epoch k / n, on a worker thread.
static void work(void *ctx, size_t k, void *slot, void *state)
{
	Job *j = ctx;
	Slot *s = slot;
	State *st = state;
	uint64_t e = k / j->S->n;
	uint32_t i = (uint32_t)(k % j->S->n), src = aug_order_source(&j->order, e, i);
	const AugSource *a = &j->S->src[src];
	s->src = src;
	Rng r;
	aug_record_rng(&r, j->seed, e, i);
	aug_draw(j->cfg, &r, a->h, a->w, &s->p);
	const uint8_t *px = aug_source_pixels(j->S, src, &st->rd, s->err, sizeof s->err);
	s->ok = px != NULL;
	if (px)
		aug_apply(&s->p, j->cfg->size, px, a->h, a->w, s->px, &st->sc);
}

static void free_state(void *state)
{
	State *st = state;
	aug_reader_free(&st->rd);
	aug_scratch_free(&st->sc);
}

// In output order, on the main thread.
static void write_record(void *ctx, size_t k, void *slot)
{
	Job *j = ctx;
	const Slot *s = slot;
	if (!s->ok)
		die("%s", s->err);
	const AugSource *a = &j->S->src[s->src];
	record_clear(&j->r);
	int64_t dims[3] = { j->cfg->size, j->cfg->size, 3 };
	record_add(&j->r, "image", DT_U8, 3, dims, s->px);
	if (j->S->labelled)
		record_add(&j->r, "label", DT_I32, 0, NULL, &a->label);
	if (a->name)
		record_add_str(&j->r, "name", a->name);
	int32_t epoch = (int32_t)(k / j->S->n);
	record_add(&j->r, "epoch", DT_I32, 0, NULL, &epoch);
	if (j->params) {
		const AugParams *p = &s->p;
		float v[9] = { p->mult, (float)p->new_sz, p->deg, p->b, p->c,
		               (float)p->rot90, (float)p->flip, (float)p->y0, (float)p->x0 };
		int64_t d = 9;
		record_add(&j->r, "params", DT_F32, 1, &d, v);
	}
	xstream_write_record(j->out, &j->r);
	progress_update(&j->pr, k + 1);
}

// --lighting B,C
static void parse_lighting(const char *arg, AugConfig *c)
{
	const char *comma = strchr(arg, ',');
	if (!comma)
		die_usage("--lighting: expected B,C, got '%s'", arg);
	char b[64];
	snprintf(b, sizeof b, "%.*s", (int)(comma - arg < 63 ? comma - arg : 63), arg);
	c->b = parse_double("--lighting B", b, 0, 1);
	c->c = parse_double("--lighting C", comma + 1, 0, 1);
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, USAGE);
	AugConfig cfg;
	aug_config_default(&cfg, 224);
	long threads = num_cores(), epochs = 1, seed = 0, shard_i = 1, shard_n = 1;
	int no_flip = 0, top_down = 0, params = 0;
	enum { O_ZOOM = 256, O_ROTATE, O_LIGHTING, O_NO_FLIP, O_TOP_DOWN, O_EPOCHS,
	       O_SEED, O_PARAMS, O_SHARD };
	static const struct option lo[] = {
		{ "size", required_argument, 0, 's' },
		{ "threads", required_argument, 0, 'j' },
		{ "zoom", required_argument, 0, O_ZOOM },
		{ "rotate", required_argument, 0, O_ROTATE },
		{ "lighting", required_argument, 0, O_LIGHTING },
		{ "no-flip", no_argument, 0, O_NO_FLIP },
		{ "top-down", no_argument, 0, O_TOP_DOWN },
		{ "epochs", required_argument, 0, O_EPOCHS },
		{ "seed", required_argument, 0, O_SEED },
		{ "params", no_argument, 0, O_PARAMS },
		{ "shard", required_argument, 0, O_SHARD },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "s:j:", lo, NULL)) != -1) {
		switch (c) {
		case 's': cfg.size = (int)parse_long("-s", optarg, 1, 8192); break;
		case 'j': threads = parse_long("-j", optarg, 1, 256); break;
		case O_ZOOM: cfg.max_zoom = parse_double("--zoom", optarg, 1, 10); break;
		case O_ROTATE: cfg.deg = parse_double("--rotate", optarg, 0, 180); break;
		case O_LIGHTING: parse_lighting(optarg, &cfg); break;
		case O_NO_FLIP: no_flip = 1; break;
		case O_TOP_DOWN: top_down = 1; break;
		case O_EPOCHS: epochs = parse_long("--epochs", optarg, 1, 1000000); break;
		case O_SEED: seed = parse_long("--seed", optarg, 0, INT64_MAX); break;
		case O_PARAMS: params = 1; break;
		case O_SHARD: shard_option(optarg, &shard_i, &shard_n); break;
		default: die_usage(NULL);
		}
	}
	if (argc - optind > 1)
		die_usage("one IMAGES stream, please");
	if (no_flip && top_down)
		die_usage("--no-flip and --top-down exclude each other");
	cfg.flip = top_down ? AUG_TOP_DOWN : no_flip ? AUG_NO_FLIP : AUG_SIDE_ON;
	refuse_terminal_stdout();   // before the work, not after it
	const char *path = optind < argc ? argv[optind] : "-";

	AugSources S;
	aug_sources_read(&S, path, cfg.size);
	if ((uint64_t)S.n * (uint64_t)epochs > (uint64_t)SIZE_MAX / 2)
		die("%s: %u records × %ld epochs is too many", stream_path(S.in), S.n, epochs);
	Stream *out = xstream_open_write("-");
	stream_meta_set(out, "kind", "images");
	const char *v = stream_meta_get(S.in, "classes");
	if (v)
		stream_meta_set(out, "classes", v);
	stream_meta_set(out, "labelled", S.labelled ? "1" : "0");
	stream_meta_setf(out, "size", "%d", cfg.size);
	stream_meta_set(out, "channels", "3");
	stream_meta_set(out, "layout", "HWC");
	if ((v = stream_meta_get(S.in, "source")))
		stream_meta_set(out, "source", v);
	stream_meta_setf(out, "epochs", "%ld", epochs);
	stream_meta_setf(out, "epoch_size", "%u", S.n);

	Job job = { .S = &S, .cfg = &cfg, .seed = (uint64_t)seed, .params = params, .out = out };
	aug_order_init(&job.order, S.n, job.seed);
	record_init(&job.r);
	int nworkers = threads > 1 ? (int)threads : 0;
	OrderedMap m = { .work = work, .consume = write_record, .ctx = &job,
	                 .slot_size = sizeof(Slot) + (size_t)cfg.size * cfg.size * 3,
	                 .state_size = sizeof(State), .state_free = free_state };
	// Record k of the output is a function of (seed, k) alone, so shard i/n
	// is the records [T(i-1)/n, Ti/n) of the T = epochs x n, and the shards
	// joined are the whole.
	size_t total = (size_t)S.n * (size_t)epochs;
	size_t k0 = (size_t)((unsigned __int128)total * (shard_i - 1) / shard_n);
	size_t k1 = (size_t)((unsigned __int128)total * shard_i / shard_n);
	progress_start(&job.pr, "augment", k1 - k0);
	xstream_write_header(out);
	ordered_map(&m, k0, k1, nworkers, 4 * (size_t)nworkers);
	progress_end(&job.pr);
	xstream_finish(out);
	record_free(&job.r);
	aug_order_free(&job.order);
	aug_sources_free(&S);
	return 0;
}
