// imgprep: a folder of photos → an images stream (fast.ai's validation
// transform: scale the shorter side to size, centre crop; or, --scale, the
// sources of augmentation: the shorter side scaled, no crop).  See imgprep(1).
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/classes.h"
#include "libcommon/util/err.h"
#include "libcommon/util/escape.h"
#include "libcommon/util/ordered.h"
#include "libcommon/util/progress.h"
#include "libcommon/util/threads.h"
#include "libcommon/image/dataset.h"
#include "libcommon/image/image_decode.h"
#include "formats/stream.h"
#include "formats/stream_shard.h"
#include "formats/stream_classes.h"

#define USAGE "imgprep [-s size | --scale side [--no-enlarge]] [-j threads] [--shard i/n] [--classes a,b,... | --classes-from STREAM] [--strict] [--accept-warnings] [-o out] DIR"

// One decoded image: the ordered map's result slot.
typedef struct {
	int ok, warned;       // warned: used, with libjpeg's warning in err
	char err[300];
	ScaledImage sc;       // --scale: (h, w, 3), the slot's buffer, reused
	unsigned char px[];   // -s: (size, size, 3)
} Slot;

typedef struct {
	const Dataset *ds;
	int size, scale, strict, accept_warnings;   // scale: 1 = size is --scale's side
	int enlarge;          // --scale: a photo smaller than the side is scaled up
	size_t lo;
	Stream *out;
	Record r;
	Progress pr;
	uint64_t written, skipped;
	// --scale: each slot's last buffer (at most one per slot), freed at the end.
	struct { const void *slot; unsigned char *px; } *bufs;
	size_t nbufs;
} Job;

// On a worker thread; state: its ImageScratch, reused from image to image.
static void decode(void *ctx, size_t i, void *slot, void *state)
{
	const Job *j = ctx;
	Slot *s = slot;
	ImageScratch *sc = state;
	s->warned = 0;
	if (j->ds->why[i]) {     // a folder, a dangling link ...: no image
		s->ok = 0;
		snprintf(s->err, sizeof s->err, "%s", j->ds->why[i]);
		return;
	}
	char *path = dataset_path(j->ds, i);
	sc->accept_warnings = j->accept_warnings;
	if (j->scale)
		s->ok = image_load_scale(path, j->size, j->enlarge, &s->sc, sc, s->err, sizeof s->err) == 0;
	else
		s->ok = image_load_crop(path, j->size, s->px, sc, s->err, sizeof s->err) == 0;
	if (s->ok && sc->warnings) {
		s->warned = 1;
		snprintf(s->err, sizeof s->err, "bad JPEG: %s", sc->warning);
	}
	free(path);
}

static void free_scratch(void *sc)
{
	image_scratch_free(sc);
}

// The consumer sees every item's slot after its worker: the buffer a slot
// holds now is the one it ends with unless a later item grows it.
static void keep_buffer(Job *j, const Slot *s)
{
	size_t k = 0;
	while (k < j->nbufs && j->bufs[k].slot != s)
		k++;
	if (k == j->nbufs) {
		j->bufs = xrealloc(j->bufs, (k + 1) * sizeof *j->bufs);
		j->bufs[j->nbufs++].slot = s;
	}
	j->bufs[k].px = s->sc.px;
}

// In input order, on the main thread.
static void write_record(void *ctx, size_t i, void *slot)
{
	Job *j = ctx;
	const Slot *s = slot;
	if (j->scale)
		keep_buffer(j, s);
	if (!s->ok || s->warned) {
		// Names as text_escape writes them: a newline in one must not
		// forge a line of its own.
		char *path = dataset_path(j->ds, i), *name = text_escape(path, 0);
		if (!s->ok && j->strict)
			die("%s: %s", name, s->err);
		warn("%s: %s (%s)", name, s->err, s->ok ? "used: --accept-warnings" : "skipped");
		free(name);
		free(path);
		j->skipped += !s->ok;
	}
	if (s->ok) {
		record_clear(&j->r);
		int64_t dims[3] = { j->size, j->size, 3 };
		if (j->scale) {
			dims[0] = s->sc.h;
			dims[1] = s->sc.w;
		}
		record_add(&j->r, "image", DT_U8, 3, dims, j->scale ? s->sc.px : s->px);
		if (j->ds->labelled)
			record_add(&j->r, "label", DT_I32, 0, NULL, &j->ds->label[i]);
		record_add_str(&j->r, "name", j->ds->rel[i]);
		xstream_write_record(j->out, &j->r);
		j->written++;
	}
	progress_update(&j->pr, i + 1 - j->lo);
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, USAGE);
	long size = 224, threads = num_cores(), shard_i = 1, shard_n = 1;
	const char *out = "-", *classes_arg = NULL, *classes_from = NULL;
	int strict = 0, size_given = 0, scale = 0, accept_warnings = 0, enlarge = 1;
	enum { O_SHARD = 256, O_CLASSES, O_CLASSES_FROM, O_STRICT, O_SCALE, O_ACCEPT_WARNINGS,
	       O_NO_ENLARGE };
	static const struct option lo[] = {
		{ "size", required_argument, 0, 's' },
		{ "scale", required_argument, 0, O_SCALE },
		{ "no-enlarge", no_argument, 0, O_NO_ENLARGE },
		{ "threads", required_argument, 0, 'j' },
		{ "output", required_argument, 0, 'o' },
		{ "shard", required_argument, 0, O_SHARD },
		{ "classes", required_argument, 0, O_CLASSES },
		{ "classes-from", required_argument, 0, O_CLASSES_FROM },
		{ "strict", no_argument, 0, O_STRICT },
		{ "accept-warnings", no_argument, 0, O_ACCEPT_WARNINGS },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "s:j:o:", lo, NULL)) != -1) {
		switch (c) {
		case 's': size = parse_long("-s", optarg, 1, 8192); size_given = 1; break;
		case O_SCALE: size = parse_long("--scale", optarg, 1, 8192); scale = 1; break;
		case 'j': threads = parse_long("-j", optarg, 1, 256); break;
		case 'o': out = optarg; break;
		case O_SHARD: shard_option(optarg, &shard_i, &shard_n); break;
		case O_CLASSES: classes_arg = optarg; break;
		case O_CLASSES_FROM: classes_from = optarg; break;
		case O_STRICT: strict = 1; break;
		case O_NO_ENLARGE: enlarge = 0; break;
		case O_ACCEPT_WARNINGS: accept_warnings = 1; break;
		default: die_usage(NULL);
		}
	}
	if (argc - optind != 1)
		die_usage(argc - optind ? "one DIR, please" : "no DIR given");
	if (classes_arg && classes_from)
		die_usage("--classes and --classes-from exclude each other");
	if (size_given && scale)
		die_usage("-s and --scale exclude each other");
	if (!enlarge && !scale)
		die_usage("--no-enlarge goes with --scale");
	const char *dir = argv[optind];

	ClassList classes = { 0 };   // empty: from the folder names
	if (classes_arg) {
		classes_split(&classes, classes_arg, "--classes");
	} else if (classes_from) {
		char *list = stream_read_classes(classes_from);
		classes_split(&classes, list, classes_from);
		free(list);
	}
	Dataset ds;
	dataset_scan(&ds, dir, &classes);
	// Shard i of n: the i-th contiguous slice of the sorted list.
	size_t lo_i = (size_t)((uint64_t)ds.n * (shard_i - 1) / shard_n);
	size_t hi_i = (size_t)((uint64_t)ds.n * shard_i / shard_n);

	Stream *s = xstream_open_write(out);
	// Header metadata must be the same for every shard (tensor cat).
	stream_meta_set(s, "kind", "images");
	if (classes.n) {
		char *cl = classes_join(&classes);
		stream_meta_set(s, "classes", cl);
		free(cl);
	}
	stream_meta_set(s, "labelled", ds.labelled ? "1" : "0");
	// --scale: `scale` instead of `size`, so that a consumer needing
	// fixed-size images (it checks size) refuses these.
	stream_meta_setf(s, scale ? "scale" : "size", "%ld", size);
	stream_meta_set(s, "channels", "3");
	stream_meta_set(s, "layout", "HWC");
	stream_meta_set(s, "source", dir);

	Job job = { .ds = &ds, .size = (int)size, .scale = scale, .enlarge = enlarge, .strict = strict,
	            .accept_warnings = accept_warnings, .lo = lo_i, .out = s };
	record_init(&job.r);
	int nworkers = threads > 1 ? (int)threads : 0;
	OrderedMap m = { .work = decode, .consume = write_record, .ctx = &job,
	                 .slot_size = sizeof(Slot) + (scale ? 0 : (size_t)size * (size_t)size * 3),
	                 .state_size = sizeof(ImageScratch), .state_free = free_scratch };
	progress_start(&job.pr, "imgprep", hi_i - lo_i);
	ordered_map(&m, lo_i, hi_i, nworkers, 4 * (size_t)nworkers);
	progress_end(&job.pr);
	char *dir_name = text_escape(dir, 0);
	// A stream of none of the images it was given is no result (an empty
	// shard, given none, is).
	if (hi_i > lo_i && job.written == 0)
		die("%s: no image could be used (%llu skipped)", dir_name,
		    (unsigned long long)job.skipped);
	// After the first record this lands in the end chunk; a shard's count
	// is its own, and tensor cat sums them.
	char nskip[32];
	snprintf(nskip, sizeof nskip, "%llu", (unsigned long long)job.skipped);
	stream_meta_set_end(s, "skipped", nskip);
	xstream_finish(s);
	fprintf(stderr, "%s: %s: %llu images, %llu skipped\n", progname, dir_name,
	        (unsigned long long)job.written, (unsigned long long)job.skipped);
	free(dir_name);
	record_free(&job.r);
	for (size_t k = 0; k < job.nbufs; k++)
		free(job.bufs[k].px);
	free(job.bufs);
	dataset_free(&ds);
	classes_free(&classes);
	return 0;
}
