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
#include "tempfiles.h"

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

void refuse_terminal_stdout(void)
{
	if (isatty(STDOUT_FILENO))
		die("standard output is a terminal: redirect it to a file or a pipe");
}

// The file creation mask, which mkostemp ignores (it makes 0600).
static mode_t current_umask(void)
{
	mode_t u = umask(022);
	umask(u);
	return u;
}

// A device or FIFO, written through.  The type is checked again on the
// open descriptor: the name may have changed in between.
static void open_through(AtomicOut *o)
{
	int fd = open(o->path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		die_errno("%s", o->path);
	if (!S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode))
		die("%s: changed while being opened", o->path);
	if (isatty(fd))
		die("%s: is a terminal: name a file, a pipe or /dev/null", o->path);
	o->f = fdopen(fd, "wb");
	if (!o->f)
		die_errno("%s", o->path);
}

// A regular file (old or new): a temporary beside it takes its place.
static void open_temporary(AtomicOut *o, const struct stat *old)
{
	if (old && faccessat(AT_FDCWD, o->dest, W_OK, AT_EACCESS) != 0)
		die_errno("%s", o->path);
	const char *slash = strrchr(o->dest, '/');
	size_t dl = slash ? (size_t)(slash - o->dest) + 1 : 0;
	static const char NAME[] = ".cnnpipe.XXXXXX";
	o->tmp = xmalloc(dl + sizeof NAME);
	memcpy(o->tmp, o->dest, dl);
	memcpy(o->tmp + dl, NAME, sizeof NAME);
	int fd = tempfile_create(o->tmp, &o->slot);
	if (fd < 0)
		die_errno("%s: cannot create a temporary file beside it", o->path);
	mode_t mode = 0666 & ~current_umask();
	if (old) {
		mode = old->st_mode & 07777;
		// The owner where we may (root may).  Where we may not, the
		// group if we are in it, and no set-id bit: it would be ours.
		if ((old->st_uid != geteuid() || old->st_gid != getegid()) &&
		    fchown(fd, old->st_uid, old->st_gid) != 0) {
			mode &= ~(mode_t)(S_ISUID | S_ISGID);
			int group_kept = fchown(fd, (uid_t)-1, old->st_gid) == 0;
			(void)group_kept;   // either way the file is ours to write
		}
	}
	if (fchmod(fd, mode) != 0)
		die_errno("%s: cannot set the mode of %s", o->path, o->tmp);
	o->f = fdopen(fd, "wb");
	if (!o->f)
		die_errno("%s", o->path);
}

void atomic_open(AtomicOut *o, const char *path)
{
	memset(o, 0, sizeof *o);
	o->slot = -1;
	o->path = xstrdup(path);
	if (strcmp(path, "-") == 0) {
		refuse_terminal_stdout();
		o->f = stdout;
		return;
	}
	struct stat st, lst;
	if (stat(path, &st) != 0) {
		if (errno != ENOENT)
			die_errno("%s", path);
		if (lstat(path, &lst) == 0)
			die("%s: a symbolic link to nothing: will not guess where to write",
			    path);
		o->dest = xstrdup(path);   // a new file (or a missing folder: said below)
		open_temporary(o, NULL);
		return;
	}
	if (S_ISDIR(st.st_mode))
		die("%s: is a directory", path);
	if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
		open_through(o);
		return;
	}
	if (!S_ISREG(st.st_mode))
		die("%s: not a regular file, a character device or a FIFO", path);
	// Through a link, the file it names is replaced and the link kept.
	if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
		o->dest = realpath(path, NULL);
		if (!o->dest)
			die_errno("%s", path);
	} else {
		o->dest = xstrdup(path);
	}
	open_temporary(o, &st);
}

static void release(AtomicOut *o)
{
	free(o->tmp);
	free(o->dest);
	free(o->path);
	o->tmp = o->dest = o->path = NULL;
	o->f = NULL;
	o->slot = -1;
}

void atomic_commit(AtomicOut *o)
{
	const char *name = o->f == stdout ? "standard output" : o->path;
	if (!o->tmp) {
		if (fflush(o->f) != 0 || ferror(o->f))
			die_errno("%s: write error", name);
		if (o->f != stdout && fclose(o->f) != 0)
			die_errno("%s: write error", name);
		release(o);
		return;
	}
	// On failure the temporary stays registered: exit removes it.
	if (fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0) {
		int e = errno;
		fclose(o->f);
		o->f = NULL;
		errno = e;
		die_errno("%s: write error", o->path);
	}
	int rc = fclose(o->f);
	o->f = NULL;
	if (rc != 0)
		die_errno("%s: write error", o->path);
	if (rename(o->tmp, o->dest) != 0)
		die_errno("%s: cannot rename %s into place", o->path, o->tmp);
	tempfile_forget(o->slot);
	release(o);
}

void atomic_abort(AtomicOut *o)
{
	if (o->f && o->f != stdout)
		fclose(o->f);
	if (o->tmp) {
		unlink(o->tmp);
		tempfile_forget(o->slot);
	}
	release(o);
}
