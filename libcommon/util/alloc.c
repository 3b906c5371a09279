#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "err.h"

static void oom(size_t n)
{
	die("out of memory (allocating %zu bytes)", n);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	size_t t;
	if (!size_mul(n, size, &t))
		die("allocation size overflows: %zu x %zu", n, size);
	void *p = calloc(t ? t : 1, 1);
	if (!p)
		oom(t);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

void *xmalloc_array(size_t n, size_t size)
{
	size_t t;
	if (!size_mul(n, size, &t))
		die("allocation size overflows: %zu x %zu", n, size);
	return xmalloc(t);
}

void *xaligned_alloc(size_t align, size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, align, n ? n : align) != 0)
		oom(n);
	return p;
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

int size_mul(size_t a, size_t b, size_t *out)
{
	if (b && a > SIZE_MAX / b)
		return 0;
	*out = a * b;
	return 1;
}

int size_add(size_t a, size_t b, size_t *out)
{
	if (a > SIZE_MAX - b)
		return 0;
	*out = a + b;
	return 1;
}
