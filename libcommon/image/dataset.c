// Folder and class discovery (dataset.h).
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/util/escape.h"
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

// A folder's entry: a regular file (why NULL) or one that is no image.
typedef struct {
	char *name, *why;
} Entry;

typedef struct {
	Entry *v;
	size_t n, cap, files;   // files: how many are regular files
} Entries;

static void entries_push(Entries *l, const char *name, char *why)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = (Entry){ xstrdup(name), why };
	l->files += why == NULL;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const Entry *)a)->name, ((const Entry *)b)->name);
}

// "dir/name: what", the path escaped.
static _Noreturn void die_at(const char *dir, const char *name, const char *what)
{
	char *p = join(dir, name), *e = text_escape(p, 0);
	free(p);
	die("%s: %s", e, what);
}

// Why path, which stat could not follow, is no image (malloc'd).
static char *unstattable(const char *path, int e)
{
	struct stat l;
	if (e == ELOOP)
		return xstrdup("a symbolic link loop");
	if (e == ENOENT && lstat(path, &l) == 0 && S_ISLNK(l.st_mode))
		return xstrdup("a dangling symbolic link");
	const char *m = strerror(e);
	char *w = xmalloc(strlen(m) + 16);
	sprintf(w, "cannot stat: %s", m);
	return w;
}

// Lists dir, sorted bytewise: folders into dirs (dirs NULL: a folder is an
// entry that is no image, as in a class folder), everything else into
// entries.
static void list_dir(const char *dir, Entries *entries, Names *dirs)
{
	DIR *d = opendir(dir);
	if (!d)
		die_errno("%s", text_escape(dir, 0));
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *p = join(dir, e->d_name);
		struct stat st;
		if (stat(p, &st) != 0)
			entries_push(entries, e->d_name, unstattable(p, errno));
		else if (S_ISDIR(st.st_mode) && dirs)
			names_push(dirs, xstrdup(e->d_name));
		else if (S_ISDIR(st.st_mode))
			entries_push(entries, e->d_name, xstrdup("a folder inside a class folder"));
		else if (S_ISREG(st.st_mode))
			entries_push(entries, e->d_name, NULL);
		else
			entries_push(entries, e->d_name, xstrdup("not a regular file"));
		free(p);
		errno = 0;
	}
	if (errno)
		die_errno("%s: cannot list", text_escape(dir, 0));
	closedir(d);
	// qsort's array must not be NULL, even for no elements (C11 7.22.5).
	if (entries->n)
		qsort(entries->v, entries->n, sizeof *entries->v, cmp_entry);
	if (dirs && dirs->n)
		qsort(dirs->v, dirs->n, sizeof *dirs->v, cmp_str);
}

static void add_entry(Dataset *ds, size_t *cap, char *rel, char *why, int32_t label)
{
	if (ds->n == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		ds->rel = xrealloc(ds->rel, *cap * sizeof *ds->rel);
		ds->label = xrealloc(ds->label, *cap * sizeof *ds->label);
		ds->why = xrealloc(ds->why, *cap * sizeof *ds->why);
	}
	ds->rel[ds->n] = rel;
	ds->why[ds->n] = why;
	ds->label[ds->n++] = label;
}

static void entries_free(Entries *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);   // the reasons went to the dataset
	free(l->v);
}

void dataset_scan(Dataset *ds, const char *dir, ClassList *classes)
{
	memset(ds, 0, sizeof *ds);
	ds->dir = xstrdup(dir);
	size_t cap = 0;
	Entries top = { 0 };
	Names dirs = { 0 };
	list_dir(dir, &top, &dirs);
	if (dirs.n && top.files) {
		const char *f = NULL;
		for (size_t i = 0; !f; i++)
			f = top.v[i].why ? NULL : top.v[i].name;
		die("%s: holds both files (%s) and class folders (%s): give a folder of class "
		    "folders or a flat folder of images", text_escape(dir, 0), text_escape(f, 0),
		    text_escape(dirs.v[0], 0));
	}
	if (dirs.n && top.n) {   // no class to put it under
		char *what = xmalloc(strlen(top.v[0].why) + 32);
		sprintf(what, "%s, in a folder of class folders", top.v[0].why);
		die_at(dir, top.v[0].name, what);
	}
	if (!dirs.n && !top.files)
		die("%s: no images", text_escape(dir, 0));
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
				die_at(dir, dirs.v[i], "class folder not in the class list");
		for (size_t c = 0; c < classes->n; c++) {
			int found = 0;
			for (size_t i = 0; i < dirs.n; i++)
				found |= strcmp(dirs.v[i], classes->v[c]) == 0;
			if (!found)
				continue;    // a class with no folder here: no images of it
			char *cdir = join(dir, classes->v[c]);
			Entries cf = { 0 };
			list_dir(cdir, &cf, NULL);
			if (!cf.files)
				die_at(dir, classes->v[c], "no images");
			for (size_t i = 0; i < cf.n; i++)
				add_entry(ds, &cap, join(classes->v[c], cf.v[i].name), cf.v[i].why,
				          (int32_t)c);
			entries_free(&cf);
			free(cdir);
		}
	} else {
		for (size_t i = 0; i < top.n; i++)
			add_entry(ds, &cap, xstrdup(top.v[i].name), top.v[i].why, -1);
	}
	entries_free(&top);
	names_free(&dirs);
}

char *dataset_path(const Dataset *ds, size_t i)
{
	return join(ds->dir, ds->rel[i]);
}

void dataset_free(Dataset *ds)
{
	for (size_t i = 0; i < ds->n; i++) {
		free(ds->rel[i]);
		free(ds->why[i]);
	}
	free(ds->rel);
	free(ds->why);
	free(ds->label);
	free(ds->dir);
	memset(ds, 0, sizeof *ds);
}
