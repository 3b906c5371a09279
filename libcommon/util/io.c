#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "alloc.h"
#include "err.h"
#include "io.h"

FILE *xfopen(const char *path, const char *mode)
{
	if (strcmp(path, "-") == 0)
		return mode[0] == 'r' ? stdin : stdout;
	FILE *f = fopen(path, mode);
	if (!f)
		die_errno("%s", path);
	return f;
}

size_t read_full(FILE *f, void *buf, size_t n, const char *path)
{
	size_t got = 0;
	while (got < n) {
		size_t k = fread((char *)buf + got, 1, n - got, f);
		got += k;
		if (k == 0) {
			if (ferror(f))
				die_errno("%s: read error", path);
			break;
		}
	}
	return got;
}

void write_full(FILE *f, const void *buf, size_t n, const char *path)
{
	if (n && fwrite(buf, 1, n, f) != n)
		die_errno("%s: write error", strcmp(path, "-") ? path : "standard output");
}

void *read_file(const char *path, size_t cap, size_t *len)
{
	FILE *f = xfopen(path, "rb");
	size_t n = 0, sz = 1 << 16;
	char *buf = xmalloc(sz + 1);
	for (;;) {
		if (n == sz) {
			if (sz >= cap)
				die("%s: larger than %zu bytes", path, cap);
			sz = sz * 2 > cap ? cap : sz * 2;
			buf = xrealloc(buf, sz + 1);
		}
		size_t k = fread(buf + n, 1, sz - n, f);
		if (k == 0) {
			if (ferror(f))
				die_errno("%s: read error", path);
			break;
		}
		n += k;
	}
	if (f != stdin)
		fclose(f);
	buf[n] = 0;
	*len = n;
	return buf;
}

int map_file(const char *path, MappedFile *m, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, errlen, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return err_set(err, errlen, "%s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(err, errlen, "%s: not a regular file", path);
	}
	if (st.st_size == 0) {
		close(fd);
		static const unsigned char empty[1];
		m->p = empty;
		return 0;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED)
		return err_set(err, errlen, "%s: %s", path, strerror(e));
	m->map = p;
	m->p = p;
	m->len = (size_t)st.st_size;
	return 0;
}

void unmap_file(MappedFile *m)
{
	if (m->map)
		munmap(m->map, m->len);
	memset(m, 0, sizeof *m);
}

// Every uncommitted temporary output is removed at exit, so a failed run
// leaves nothing half-written behind.
#define MAX_PENDING 64
static AtomicOut *pending[MAX_PENDING];
static int registered;

static void remove_pending(void)
{
	for (int i = 0; i < MAX_PENDING; i++)
		if (pending[i] && pending[i]->tmp)
			unlink(pending[i]->tmp);
}

static void track(AtomicOut *o, int on)
{
	for (int i = 0; i < MAX_PENDING; i++) {
		if (on && !pending[i]) {
			pending[i] = o;
			return;
		}
		if (!on && pending[i] == o) {
			pending[i] = NULL;
			return;
		}
	}
	if (on)
		die("too many open outputs");
}

void atomic_open(AtomicOut *o, const char *path)
{
	memset(o, 0, sizeof *o);
	o->path = xstrdup(path);
	if (strcmp(path, "-") == 0) {
		o->f = stdout;
		return;
	}
	size_t n = strlen(path) + 32;
	o->tmp = xmalloc(n);
	snprintf(o->tmp, n, "%s.tmp.%ld", path, (long)getpid());
	if (!registered) {
		atexit(remove_pending);
		registered = 1;
	}
	o->f = fopen(o->tmp, "wb");
	if (!o->f)
		die_errno("%s", path);
	track(o, 1);
}

void atomic_commit(AtomicOut *o)
{
	if (!o->tmp) {
		if (fflush(o->f) != 0 || ferror(o->f))
			die_errno("standard output: write error");
		free(o->path);
		o->path = NULL;
		return;
	}
	if (fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0) {
		int e = errno;
		fclose(o->f);
		errno = e;
		die_errno("%s: write error", o->path);
	}
	if (fclose(o->f) != 0)
		die_errno("%s: write error", o->path);
	if (rename(o->tmp, o->path) != 0)
		die_errno("%s: cannot rename %s into place", o->path, o->tmp);
	track(o, 0);
	free(o->tmp);
	free(o->path);
	o->tmp = o->path = NULL;
	o->f = NULL;
}

void atomic_abort(AtomicOut *o)
{
	if (o->tmp) {
		if (o->f)
			fclose(o->f);
		unlink(o->tmp);
		track(o, 0);
		free(o->tmp);
	}
	free(o->path);
	o->tmp = o->path = NULL;
	o->f = NULL;
}
