// Class lists (classes.h).
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "classes.h"
#include "err.h"
#include "escape.h"

int classes_count(const char *list, const char *what)
{
	int n = 1;
	if (!*list)
		die("%s: empty class list", what);
	for (const char *p = list; *p; p++) {
		if (*p == '\n')
			die("%s: a class name may not contain a newline", what);
		if (*p == ',') {
			if (p == list || p[1] == ',' || !p[1])
				die("%s: empty class name in '%s'", what, text_escape(list, 0));
			n++;
		}
	}
	return n;
}

void classes_check_name(const char *name, const char *what)
{
	if (!*name || strchr(name, ',') || strchr(name, '\n'))
		die("%s: class name '%s' is empty or holds ',' or a newline", text_escape(what, 0),
		    text_escape(name, 0));
}

void classes_push(ClassList *l, const char *name)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = xstrdup(name);
}

long classes_find(const ClassList *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], name) == 0)
			return (long)i;
	return -1;
}

void classes_split(ClassList *l, const char *list, const char *what)
{
	classes_count(list, what);
	char *dup = xstrdup(list), *save = NULL;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (classes_find(l, t) >= 0)
			die("%s: class '%s' listed twice", what, text_escape(t, 0));
		classes_push(l, t);
	}
	free(dup);
}

char *classes_join(const ClassList *l)
{
	size_t len = 1;
	for (size_t i = 0; i < l->n; i++)
		len += strlen(l->v[i]) + 1;
	char *s = xmalloc(len), *p = s;
	for (size_t i = 0; i < l->n; i++) {
		size_t k = strlen(l->v[i]);
		if (i)
			*p++ = ',';
		memcpy(p, l->v[i], k);
		p += k;
	}
	*p = 0;
	return s;
}

void classes_free(ClassList *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}
