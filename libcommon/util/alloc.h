// Checked allocation: every failure is fatal with a clear message.
#ifndef CNNPIPE_ALLOC_H
#define CNNPIPE_ALLOC_H
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);        // overflow-checked
void *xrealloc(void *p, size_t n);
void *xmalloc_array(size_t n, size_t size);  // overflow-checked n*size
void *xaligned_alloc(size_t align, size_t n);  // free() with free()
char *xstrdup(const char *s);
// Overflow-checked multiply/add for sizes read from files: return 0 on overflow.
int size_mul(size_t a, size_t b, size_t *out);
int size_add(size_t a, size_t b, size_t *out);

#endif
