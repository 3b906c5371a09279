// Checked I/O: "-" names the standard streams; outputs appear whole or not at
// all (written to a temporary name beside the target and renamed on commit).
#ifndef CNNPIPE_IO_H
#define CNNPIPE_IO_H
#include <stdio.h>
#include <stddef.h>

// fopen, with "-" = stdin (mode "r...") or stdout (mode "w..."); dies on failure.
FILE *xfopen(const char *path, const char *mode);
// Reads up to n bytes, retrying short reads; returns bytes read (< n only at
// EOF); dies naming `path` on a read error.
size_t read_full(FILE *f, void *buf, size_t n, const char *path);
// Writes all n bytes or dies naming `path`.
void write_full(FILE *f, const void *buf, size_t n, const char *path);
// Reads a whole file ("-" = stdin) into memory, refusing more than `cap`
// bytes.  Returns a malloc'd buffer (NUL-terminated beyond *len); dies on error.
void *read_file(const char *path, size_t cap, size_t *len);

// A whole file, mapped read-only (for parsers that want the bytes at hand).
typedef struct {
	const unsigned char *p;   // the bytes (a valid pointer even when len is 0)
	size_t len;
	void *map;                // what unmap_file releases; NULL for an empty file
} MappedFile;
// Maps a regular file.  Returns 0, or -1 with "<path>: <reason>" in err
// (errlen may be 0); never dies.
int map_file(const char *path, MappedFile *m, char *err, size_t errlen);
void unmap_file(MappedFile *m);

// An output that appears whole or not at all.  For "-" it is stdout.
//
// A regular file (or one reached through a symbolic link) is written to a
// new temporary ".cnnpipe.XXXXXX" in the file's own directory (created with
// O_EXCL, so nothing is overwritten, and short, so any legal name fits),
// given the old file's mode and, where it may, its owner, and renamed over
// it on commit.  A character device or a FIFO (/dev/null, a named pipe) is
// written straight through, as the shell's ">" would: not atomically.  A
// directory, a block device, a dangling link or a terminal is refused.  A
// temporary is removed on every failure, at exit and on a fatal signal
// (tempfiles.h); only SIGKILL can leave one behind.
typedef struct {
	FILE *f;
	char *path;     // the name given (for messages)
	char *dest;     // what the temporary becomes: path, or a link's target
	char *tmp;      // the temporary; NULL when written straight through
	int slot;       // the temporary's registration (tempfiles.h)
} AtomicOut;
void atomic_open(AtomicOut *o, const char *path);
// Flushes, fsyncs and renames into place; dies naming the path on failure.
void atomic_commit(AtomicOut *o);
// Removes the temporary file (also done at exit for every uncommitted output).
void atomic_abort(AtomicOut *o);

// Dies if standard output is a terminal: binary data there helps no one.
// atomic_open("-") checks it; a tool may ask first, before its real work.
void refuse_terminal_stdout(void);

#endif
