// imgprep: a folder of photos → an images stream (fast.ai's validation
// transform: scale the shorter side to size, centre crop).  See imgprep(1).
#include <dirent.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/image/image_decode.h"
#include "libcommon/image/image_geom.h"
#include "libcommon/util/progress.h"
#include "formats/stream.h"
#include "libcommon/util/threads.h"

#define USAGE "imgprep [-s size] [-j threads] [--shard i/n] [--classes a,b,... | --classes-from STREAM] [--strict] [-o out] DIR"

typedef struct {
	char **v;
	size_t n, cap;
} StrList;

static void sl_push(StrList *l, char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = s;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *a, const char *b)
{
	size_t la = strlen(a);
	while (la > 1 && a[la - 1] == '/')
		la--;
	char *p = xmalloc(la + strlen(b) + 2);
	memcpy(p, a, la);
	p[la] = '/';
	strcpy(p + la + 1, b);
	return p;
}

// Lists dir: regular files into files, folders into dirs (both sorted
// bytewise), skipping names that start with '.'.
static void list_dir(const char *dir, StrList *files, StrList *dirs)
{
	DIR *d = opendir(dir);
	if (!d)
		die_errno("%s", dir);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *p = join(dir, e->d_name);
		struct stat st;
		if (stat(p, &st) != 0) {
			warn("%s: cannot stat (ignored)", p);
		} else if (S_ISDIR(st.st_mode)) {
			if (dirs)
				sl_push(dirs, xstrdup(e->d_name));
			else
				warn("%s: a folder inside a class folder (ignored)", p);
		} else if (S_ISREG(st.st_mode)) {
			sl_push(files, xstrdup(e->d_name));
		} else {
			warn("%s: not a regular file (ignored)", p);
		}
		free(p);
	}
	closedir(d);
	// qsort's array must not be NULL, even for no elements (C11 7.22.5).
	if (files->n)
		qsort(files->v, files->n, sizeof *files->v, cmp_str);
	if (dirs && dirs->n)
		qsort(dirs->v, dirs->n, sizeof *dirs->v, cmp_str);
}

static void check_class_name(const char *c, const char *where)
{
	if (!*c || strchr(c, ',') || strchr(c, '\n'))
		die("%s: class name '%s' is empty or holds ',' or a newline", where, c);
}

// "a,b,c" → list; duplicates and empty names are errors.
static void parse_classes(const char *s, StrList *out, const char *where)
{
	char *dup = xstrdup(s), *save = NULL;
	if (!*s || s[strlen(s) - 1] == ',' || *s == ',' || strstr(s, ",,"))
		die("%s: empty class name in '%s'", where, s);
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		check_class_name(t, where);
		for (size_t i = 0; i < out->n; i++)
			if (strcmp(out->v[i], t) == 0)
				die("%s: class '%s' listed twice", where, t);
		sl_push(out, xstrdup(t));
	}
	free(dup);
}

typedef struct {
	const char *dir;
	char **rel;       // path relative to dir, in output order
	int32_t *label;   // -1 when unlabelled
	size_t n;
} FileSet;

// Finds the images under dir: DIR/<class>/* (labelled) or DIR/* (flat).
// Returns 1 if labelled.  classes: given (fixed order) or filled from the
// sorted folder names.
static int discover(const char *dir, StrList *classes, int classes_given, FileSet *fs)
{
	StrList files = { 0 }, dirs = { 0 };
	list_dir(dir, &files, &dirs);
	StrList rel = { 0 };
	int32_t *lab = NULL;
	size_t labcap = 0;
	int labelled = dirs.n > 0;
	if (dirs.n && files.n)
		die("%s: holds both files (%s) and class folders (%s): give a folder of class "
		    "folders or a flat folder of images", dir, files.v[0], dirs.v[0]);
	if (!dirs.n && !files.n)
		die("%s: no images", dir);
	if (labelled) {
		if (!classes_given) {
			for (size_t i = 0; i < dirs.n; i++) {
				check_class_name(dirs.v[i], dir);
				sl_push(classes, xstrdup(dirs.v[i]));
			}
		}
		for (size_t i = 0; i < dirs.n; i++) {
			int known = 0;
			for (size_t c = 0; c < classes->n; c++)
				known |= strcmp(dirs.v[i], classes->v[c]) == 0;
			if (!known) {
				char *p = join(dir, dirs.v[i]);
				die("%s: class folder not in the class list", p);
			}
		}
		// Records go class by class in label order, files sorted within.
		for (size_t c = 0; c < classes->n; c++) {
			int found = 0;
			for (size_t i = 0; i < dirs.n; i++)
				found |= strcmp(dirs.v[i], classes->v[c]) == 0;
			if (!found)
				continue;    // a class with no folder here: no records of it
			char *cdir = join(dir, classes->v[c]);
			StrList cf = { 0 };
			list_dir(cdir, &cf, NULL);
			if (!cf.n)
				die("%s: no images", cdir);
			for (size_t i = 0; i < cf.n; i++) {
				sl_push(&rel, join(classes->v[c], cf.v[i]));
				if (rel.n > labcap) {
					labcap = rel.cap;
					lab = xrealloc(lab, labcap * sizeof *lab);
				}
				lab[rel.n - 1] = (int32_t)c;
				free(cf.v[i]);
			}
			free(cf.v);
			free(cdir);
		}
	} else {
		for (size_t i = 0; i < files.n; i++) {
			sl_push(&rel, xstrdup(files.v[i]));
			if (rel.n > labcap) {
				labcap = rel.cap;
				lab = xrealloc(lab, labcap * sizeof *lab);
			}
			lab[rel.n - 1] = -1;
		}
	}
	for (size_t i = 0; i < files.n; i++)
		free(files.v[i]);
	for (size_t i = 0; i < dirs.n; i++)
		free(dirs.v[i]);
	free(files.v);
	free(dirs.v);
	fs->dir = dir;
	fs->rel = rel.v;
	fs->label = lab;
	fs->n = rel.n;
	return labelled;
}

// --- decoding in parallel, writing in order ---------------------------------

typedef struct {
	int done, ok;
	char err[300];
	unsigned char *px;    // (size, size, 3)
} Slot;

typedef struct {
	const FileSet *fs;
	size_t lo, hi;        // this shard's slice of fs
	int size;
	Slot *slot;
	size_t window;        // decoded-but-unwritten images at most
	size_t next_claim, next_write;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
} Pipe;

// sc: this thread's buffers, reused from image to image.
static void process(const Pipe *p, size_t i, Slot *s, ImageScratch *sc)
{
	char *path = join(p->fs->dir, p->fs->rel[i]);
	s->ok = image_load_crop(path, p->size, s->px, sc, s->err, sizeof s->err) == 0;
	free(path);
}

static void *worker(void *arg)
{
	Pipe *p = arg;
	ImageScratch sc = { 0 };
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->next_claim < p->hi && p->next_claim >= p->next_write + p->window)
			pthread_cond_wait(&p->cv_work, &p->mu);
		if (p->next_claim >= p->hi) {
			pthread_mutex_unlock(&p->mu);
			image_scratch_free(&sc);
			return NULL;
		}
		size_t i = p->next_claim++;
		pthread_mutex_unlock(&p->mu);
		// Slot i % window was released by the writer for image i - window.
		Slot *s = &p->slot[(i - p->lo) % p->window];
		process(p, i, s, &sc);
		pthread_mutex_lock(&p->mu);
		s->done = 1;
		pthread_cond_broadcast(&p->cv_done);
		pthread_mutex_unlock(&p->mu);
	}
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, USAGE);
	long size = 224, threads = num_cores(), shard_i = 1, shard_n = 1;
	const char *out = "-", *classes_arg = NULL, *classes_from = NULL;
	int strict = 0;
	enum { O_SHARD = 256, O_CLASSES, O_CLASSES_FROM, O_STRICT };
	static const struct option lo[] = {
		{ "size", required_argument, 0, 's' },
		{ "threads", required_argument, 0, 'j' },
		{ "output", required_argument, 0, 'o' },
		{ "shard", required_argument, 0, O_SHARD },
		{ "classes", required_argument, 0, O_CLASSES },
		{ "classes-from", required_argument, 0, O_CLASSES_FROM },
		{ "strict", no_argument, 0, O_STRICT },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "s:j:o:", lo, NULL)) != -1) {
		switch (c) {
		case 's': size = parse_long("-s", optarg, 1, 8192); break;
		case 'j': threads = parse_long("-j", optarg, 1, 256); break;
		case 'o': out = optarg; break;
		case O_SHARD: {
			char *slash = strchr(optarg, '/');
			if (!slash)
				die_usage("--shard: expected i/n, got '%s'", optarg);
			*slash = 0;
			shard_n = parse_long("--shard n", slash + 1, 1, 1000000);
			shard_i = parse_long("--shard i", optarg, 1, shard_n);
			break;
		}
		case O_CLASSES: classes_arg = optarg; break;
		case O_CLASSES_FROM: classes_from = optarg; break;
		case O_STRICT: strict = 1; break;
		default: die_usage(NULL);
		}
	}
	if (argc - optind != 1)
		die_usage(argc - optind ? "one DIR, please" : "no DIR given");
	if (classes_arg && classes_from)
		die_usage("--classes and --classes-from exclude each other");
	const char *dir = argv[optind];

	StrList classes = { 0 };
	int classes_given = 0;
	if (classes_arg) {
		parse_classes(classes_arg, &classes, "--classes");
		classes_given = 1;
	} else if (classes_from) {
		Stream *cs = xstream_open_read(classes_from);
		const char *v = stream_meta_get(cs, "classes");
		if (!v || !*v)
			die("%s: no 'classes' in its metadata", classes_from);
		parse_classes(v, &classes, classes_from);
		stream_close(cs);
		classes_given = 1;
	}

	FileSet fs;
	int labelled = discover(dir, &classes, classes_given, &fs);
	// Shard i of n: the i-th contiguous slice of the sorted list.
	size_t lo_i = (size_t)((uint64_t)fs.n * (shard_i - 1) / shard_n);
	size_t hi_i = (size_t)((uint64_t)fs.n * shard_i / shard_n);

	Stream *s = xstream_open_write(out);
	// Header metadata must be the same for every shard (tensor cat).
	stream_meta_set(s, "kind", "images");
	if (classes.n) {
		size_t len = 1;
		for (size_t i = 0; i < classes.n; i++)
			len += strlen(classes.v[i]) + 1;
		char *cl = xmalloc(len);
		cl[0] = 0;
		for (size_t i = 0; i < classes.n; i++) {
			if (i)
				strcat(cl, ",");
			strcat(cl, classes.v[i]);
		}
		stream_meta_set(s, "classes", cl);
		free(cl);
	}
	stream_meta_set(s, "labelled", labelled ? "1" : "0");
	stream_meta_setf(s, "size", "%ld", size);
	stream_meta_set(s, "channels", "3");
	stream_meta_set(s, "layout", "HWC");
	stream_meta_set(s, "source", dir);

	Pipe p = { .fs = &fs, .lo = lo_i, .hi = hi_i, .size = (int)size,
	           .next_claim = lo_i, .next_write = lo_i };
	int nworkers = threads > 1 ? (int)threads : 0;
	p.window = nworkers ? 4 * (size_t)nworkers : 1;
	p.slot = xcalloc(p.window, sizeof *p.slot);
	for (size_t k = 0; k < p.window; k++)
		p.slot[k].px = xmalloc_array((size_t)size * size, 3);
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv_work, NULL);
	pthread_cond_init(&p.cv_done, NULL);
	pthread_t *tid = xcalloc(nworkers ? (size_t)nworkers : 1, sizeof *tid);
	for (int t = 0; t < nworkers; t++)
		if (pthread_create(&tid[t], NULL, worker, &p) != 0)
			die("cannot start a thread");

	ImageScratch sc = { 0 };   // for -j 1, where this thread decodes
	Record r;
	record_init(&r);
	Progress pr;
	progress_start(&pr, "imgprep", hi_i - lo_i);
	uint64_t written = 0, skipped = 0;
	for (size_t i = lo_i; i < hi_i; i++) {
		Slot *sl = &p.slot[(i - lo_i) % p.window];
		if (nworkers) {
			pthread_mutex_lock(&p.mu);
			while (!sl->done)
				pthread_cond_wait(&p.cv_done, &p.mu);
			pthread_mutex_unlock(&p.mu);
		} else {
			process(&p, i, sl, &sc);
		}
		char *path = join(dir, fs.rel[i]);
		if (!sl->ok) {
			if (strict)
				die("%s: %s", path, sl->err);
			warn("%s: %s (skipped)", path, sl->err);
			skipped++;
		} else {
			record_clear(&r);
			int64_t dims[3] = { size, size, 3 };
			record_add(&r, "image", DT_U8, 3, dims, sl->px);
			if (labelled)
				record_add(&r, "label", DT_I32, 0, NULL, &fs.label[i]);
			record_add_str(&r, "name", fs.rel[i]);
			xstream_write_record(s, &r);
			written++;
		}
		free(path);
		if (nworkers) {
			pthread_mutex_lock(&p.mu);
			sl->done = 0;
			p.next_write = i + 1;
			pthread_cond_broadcast(&p.cv_work);
			pthread_mutex_unlock(&p.mu);
		}
		progress_update(&pr, i + 1 - lo_i);
	}
	progress_end(&pr);
	for (int t = 0; t < nworkers; t++)
		pthread_join(tid[t], NULL);
	// After the first record this lands in the end chunk; a shard's count
	// is its own, and tensor cat sums them.
	char nskip[32];
	snprintf(nskip, sizeof nskip, "%llu", (unsigned long long)skipped);
	stream_meta_set_end(s, "skipped", nskip);
	xstream_finish(s);
	fprintf(stderr, "%s: %s: %llu images, %llu skipped\n", progname, dir,
	        (unsigned long long)written, (unsigned long long)skipped);
	record_free(&r);
	image_scratch_free(&sc);
	for (size_t k = 0; k < p.window; k++)
		free(p.slot[k].px);
	free(p.slot);
	free(tid);
	for (size_t i = 0; i < fs.n; i++)
		free(fs.rel[i]);
	free(fs.rel);
	free(fs.label);
	for (size_t i = 0; i < classes.n; i++)
		free(classes.v[i]);
	free(classes.v);
	return 0;
}
