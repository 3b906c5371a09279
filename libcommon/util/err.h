// Errors and exit codes shared by every cnnpipe program.
//
// Convention: messages go to stderr as "prog: context: reason"; exit 1 for a
// failed run, 2 for a usage error.  A failed write to stdout is a failed run
// (checked at exit by prog_init's handler).
#ifndef CNNPIPE_ERR_H
#define CNNPIPE_ERR_H
#include <stdarg.h>
#include <stddef.h>

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };

extern const char *progname;

// Sets progname from argv[0] and the one-line usage text (equal to the man
// page SYNOPSIS, without the leading "usage: "); registers the stdout check.
// A lone --help argument prints the usage on stdout and exits 0.
void prog_init(int argc, char **argv, const char *usage);

// "prog: <fmt>\n" on stderr, then exit(1).
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// As die(), with ": strerror(errno)" appended.
_Noreturn void die_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// "prog: <fmt>\n" (when fmt is not NULL) and "usage: <usage>\n", exit(2);
// the usage text begins with the program name, as the SYNOPSIS does.
_Noreturn void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// "prog: <fmt>\n" on stderr; carries on.
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// For functions that report into a caller's buffer instead of dying:
// vsnprintf into err (errlen may be 0), returns -1 ("return err_set(...)").
int err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

// Parse helpers for option arguments: die_usage on anything but a whole
// number/float in [lo, hi].
long   parse_long(const char *opt, const char *arg, long lo, long hi);
double parse_double(const char *opt, const char *arg, double lo, double hi);

#endif
