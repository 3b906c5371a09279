// The unit tests' helpers.  CHECK is the one assertion: it counts, reports
// the failed expression with its place, and goes on.  Each test's main ends
// with
//   return check_done("test_x");
#ifndef CNNPIPE_CHECK_H
#define CNNPIPE_CHECK_H
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed, failed;
#define CHECK(c) do { if (c) passed++; else { failed++; \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); } } while (0)

// CHECK with a message: the figures of a comparison go with its failure.
static inline void check_msg(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void check_msg(int cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (cond) {
		passed++;
	} else {
		failed++;
		fprintf(stderr, "FAIL: ");
		vfprintf(stderr, fmt, ap);
		fprintf(stderr, "\n");
	}
	va_end(ap);
}

// max |a - b| / max(1, max |b|) over n values (NaN counts as infinite);
// the largest |a - b| in *absd when absd is not NULL.
static inline double check_rel_diff(const float *a, const float *b, size_t n, double *absd)
{
	double m = 0, s = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - b[i]);
		if (d > m || isnan(d))
			m = isnan(d) ? INFINITY : d;
		if (fabs(b[i]) > s)
			s = fabs(b[i]);
	}
	if (absd)
		*absd = m;
	return m / (s > 1 ? s : 1);
}

// Prints "test_x: N passed, M failed" and returns main's exit status.
static inline int check_done(const char *test)
{
	printf("%s: %d passed, %d failed\n", test, passed, failed);
	return failed != 0;
}

// The cap for read_file of a test's inputs and outputs: a whole file, or the
// test dies naming it (the tests run from the repo root).
#define CHECK_FILE_CAP ((size_t)1 << 30)

// A scratch file name of this process, "/tmp/<name>.<pid>" (malloc'd); the
// test removes the file and frees the name.
static inline char *check_tmp(const char *name)
{
	size_t n = strlen(name) + 32;
	char *p = malloc(n);
	if (!p)
		abort();
	snprintf(p, n, "/tmp/%s.%ld", name, (long)getpid());
	return p;
}

// Writes n bytes to path, replacing it; aborts the test on failure.
static inline void check_write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "%s: cannot write the test file\n", path);
		abort();
	}
}

// Runs fn(arg) in a child process: 1 when it exits with `status` and its
// standard error contains `msg`, else 0 (and what it wrote is shown).  For
// the functions that die.
static inline int check_dies(void (*fn)(void *), void *arg, int status, const char *msg)
{
	int fd[2];
	if (pipe(fd) != 0)
		abort();
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		close(fd[0]);
		dup2(fd[1], 2);
		fn(arg);
		fflush(stderr);
		_exit(0);
	}
	close(fd[1]);
	char buf[4096], part[512];
	size_t n = 0;
	ssize_t k;
	while ((k = read(fd[0], part, sizeof part)) > 0)
		for (ssize_t i = 0; i < k && n + 1 < sizeof buf; i++)
			buf[n++] = part[i];   // the rest is read and dropped
	buf[n] = 0;
	close(fd[0]);
	int ws;
	if (waitpid(pid, &ws, 0) != pid)
		abort();
	int ok = WIFEXITED(ws) && WEXITSTATUS(ws) == status && strstr(buf, msg);
	if (!ok)
		fprintf(stderr, "  expected exit %d with '%s', got %d with '%s'\n", status, msg,
		        WIFEXITED(ws) ? WEXITSTATUS(ws) : -1, buf);
	return ok;
}

#endif
