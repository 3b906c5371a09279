// Unnamed temporary files for data that must wait (e.g. a .npy whose header,
// written last, goes first on a pipe).  They live in $TMPDIR, as POSIX and
// the man pages say, not where tmpfile(3) puts them (glibc: always /tmp).
#ifndef CNNPIPE_SCRATCH_FILE_H
#define CNNPIPE_SCRATCH_FILE_H
#include <stdio.h>

// The directory: $TMPDIR when set and not empty, else /tmp.
const char *scratch_dir(void);
// A new empty file opened "w+b" in scratch_dir(), already unlinked, so it
// vanishes when closed or when the process ends however it ends.  Dies
// "<dir>: cannot make a temporary file: <reason>" on failure.
FILE *scratch_file(void);

#endif
