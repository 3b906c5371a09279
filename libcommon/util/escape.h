// Text from files (file names, metadata values) made safe to print on a
// terminal or in a one-line message: a newline, carriage return or escape
// sequence in a name must not forge a line of its own or reprogram the
// terminal.
#ifndef CNNPIPE_ESCAPE_H
#define CNNPIPE_ESCAPE_H
#include <stddef.h>

// s with \n, \t, \r and \\ written as those two characters, every other
// control byte (C0, DEL), C1 control (U+0080..U+009F) and byte that is not
// part of well-formed UTF-8 written as \xNN, one per byte; the rest
// (printable ASCII and well-formed UTF-8) as it is.  At most `max` bytes of
// s (0 = all), then " ... (N bytes)" when s was longer.  Malloc'd.
char *text_escape(const char *s, size_t max);

#endif
