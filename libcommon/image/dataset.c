// Folder and class discovery (dataset.h).
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "dataset.h"

typedef struct {
	char **v;
	size_t n, cap;
} Names;

static void names_push(Names *l, char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = s;
}

static void names_free(Names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

// a/b, without a's trailing slashes (but "/" stays).
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
// bytewise; dirs NULL: a folder is warned about and skipped).
static void list_dir(const char *dir, Names *files, Names *dirs)
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
				names_push(dirs, xstrdup(e->d_name));
			else
				warn("%s: a folder inside a class folder (ignored)", p);
		} else if (S_ISREG(st.st_mode)) {
			names_push(files, xstrdup(e->d_name));
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

static void add_image(Dataset *ds, size_t *cap, char *rel, int32_t label)
{
	if (ds->n == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		ds->rel = xrealloc(ds->rel, *cap * sizeof *ds->rel);
		ds->label = xrealloc(ds->label, *cap * sizeof *ds->label);
	}
	ds->rel[ds->n] = rel;
	ds->label[ds->n++] = label;
}

void dataset_scan(Dataset *ds, const char *dir, ClassList *classes)
{
	memset(ds, 0, sizeof *ds);
	ds->dir = xstrdup(dir);
	size_t cap = 0;
	Names files = { 0 }, dirs = { 0 };
	list_dir(dir, &files, &dirs);
	if (dirs.n && files.n)
		die("%s: holds both files (%s) and class folders (%s): give a folder of class "
		    "folders or a flat folder of images", dir, files.v[0], dirs.v[0]);
	if (!dirs.n && !files.n)
		die("%s: no images", dir);
	ds->labelled = dirs.n > 0;
	if (ds->labelled) {
		if (!classes->n) {
			for (size_t i = 0; i < dirs.n; i++) {
				classes_check_name(dirs.v[i], dir);
				classes_push(classes, dirs.v[i]);
			}
		}
		for (size_t i = 0; i < dirs.n; i++)
			if (classes_find(classes, dirs.v[i]) < 0)
				die("%s: class folder not in the class list", join(dir, dirs.v[i]));
		for (size_t c = 0; c < classes->n; c++) {
			int found = 0;
			for (size_t i = 0; i < dirs.n; i++)
				found |= strcmp(dirs.v[i], classes->v[c]) == 0;
			if (!found)
				continue;    // a class with no folder here: no images of it
			char *cdir = join(dir, classes->v[c]);
			Names cf = { 0 };
			list_dir(cdir, &cf, NULL);
			if (!cf.n)
				die("%s: no images", cdir);
			for (size_t i = 0; i < cf.n; i++)
				add_image(ds, &cap, join(classes->v[c], cf.v[i]), (int32_t)c);
			names_free(&cf);
			free(cdir);
		}
	} else {
		for (size_t i = 0; i < files.n; i++)
			add_image(ds, &cap, xstrdup(files.v[i]), -1);
	}
	names_free(&files);
	names_free(&dirs);
}

char *dataset_path(const Dataset *ds, size_t i)
{
	return join(ds->dir, ds->rel[i]);
}

void dataset_free(Dataset *ds)
{
	for (size_t i = 0; i < ds->n; i++)
		free(ds->rel[i]);
	free(ds->rel);
	free(ds->label);
	free(ds->dir);
	memset(ds, 0, sizeof *ds);
}
