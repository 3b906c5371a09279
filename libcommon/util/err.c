#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "err.h"

const char *progname = "cnnpipe";
static const char *usage_text = "";

// Set by die() and its kin: the run has failed and said why.
static int failed;

// A failed write to stdout is a failed run: checked once, at exit, so that
// "tool > /dev/full" fails loudly instead of losing the output.  A run that
// died has said so already (often of this very error, which the flush in
// vmsg meets again): one message is enough.
static void check_stdout(void)
{
	errno = 0;
	int flushed = fflush(stdout) == 0;
	if (failed || (flushed && !ferror(stdout)))
		return;
	// EPIPE from a consumer that stopped reading is still a failure.  The
	// reason is known only when this flush failed: an earlier one's errno
	// is long gone.
	if (flushed)
		fprintf(stderr, "%s: write error on standard output\n", progname);
	else
		fprintf(stderr, "%s: write error on standard output: %s\n", progname,
		        strerror(errno));
	_exit(EXIT_FAIL);
}

void prog_init(int argc, char **argv, const char *usage)
{
	(void)argc;
	if (argv && argv[0]) {
		const char *s = strrchr(argv[0], '/');
		progname = s ? s + 1 : argv[0];
		argv[0] = (char *)progname;   // getopt's own messages say "prog: ..."
	}
	usage_text = usage ? usage : "";
	atexit(check_stdout);
	// Every program answers --help alone with its synopsis on stdout.
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		printf("usage: %s\n", usage_text);
		exit(0);
	}
}

static void vmsg(const char *fmt, va_list ap, int err)
{
	fflush(stdout);   // what was written before the message, in order
	fprintf(stderr, "%s: ", progname);
	vfprintf(stderr, fmt, ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
}

void die(const char *fmt, ...)
{
	failed = 1;
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap, 0);
	va_end(ap);
	exit(EXIT_FAIL);
}

void die_errno(const char *fmt, ...)
{
	int e = errno;
	failed = 1;
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap, e);
	va_end(ap);
	exit(EXIT_FAIL);
}

void die_usage(const char *fmt, ...)
{
	failed = 1;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vmsg(fmt, ap, 0);
		va_end(ap);
	}
	fprintf(stderr, "usage: %s\n", usage_text);
	exit(EXIT_USAGE);
}

void warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap, 0);
	va_end(ap);
}

long parse_long(const char *opt, const char *arg, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < lo || v > hi)
		die_usage("%s: '%s' is not a whole number in [%ld, %ld]", opt, arg, lo, hi);
	return v;
}

double parse_double(const char *opt, const char *arg, double lo, double hi)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v >= lo && v <= hi))
		die_usage("%s: '%s' is not a number in [%g, %g]", opt, arg, lo, hi);
	return v;
}

int err_set(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}
