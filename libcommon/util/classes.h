// Class lists: the comma-separated class names, in label order, that a
// stream's 'classes' metadata and the tools' --classes options carry
// ("cats,dogs").  A list holds at least one name; a name is not empty and
// holds no ',' and no newline.
#ifndef CNNPIPE_CLASSES_H
#define CNNPIPE_CLASSES_H
#include <stddef.h>

// Checks a list and returns its number of names.  Dies "<what>: empty class
// list", "<what>: a class name may not contain a newline" or "<what>: empty
// class name in '<list>'" (the first fault from the left).
int classes_count(const char *list, const char *what);
// Checks one name: dies "<what>: class name '<name>' is empty or holds ','
// or a newline".
void classes_check_name(const char *name, const char *what);

// Names in label order (each malloc'd).
typedef struct {
	char **v;
	size_t n, cap;
} ClassList;

// Appends the names of `list` (checked as by classes_count) to l; dies
// "<what>: class '<name>' listed twice" on a name already in l.
void classes_split(ClassList *l, const char *list, const char *what);
// Appends a copy of one name (unchecked).
void classes_push(ClassList *l, const char *name);
// The index of name in l, or -1.
long classes_find(const ClassList *l, const char *name);
// "a,b,c" (malloc'd; "" for no names).
char *classes_join(const ClassList *l);
void classes_free(ClassList *l);

#endif
