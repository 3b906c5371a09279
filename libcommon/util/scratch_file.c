// Unnamed temporary files in $TMPDIR (scratch_file.h).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "alloc.h"
#include "err.h"
#include "scratch_file.h"

const char *scratch_dir(void)
{
	const char *d = getenv("TMPDIR");
	return d && *d ? d : "/tmp";
}

FILE *scratch_file(void)
{
	const char *dir = scratch_dir();
	size_t n = strlen(dir) + sizeof "/cnnpipe.XXXXXX";
	char *name = xmalloc(n);
	snprintf(name, n, "%s/cnnpipe.XXXXXX", dir);
	int fd = mkstemp(name);
	if (fd < 0)
		die_errno("%s: cannot make a temporary file", dir);
	// Unlinked at once: nothing is left behind, even after a crash.
	unlink(name);
	free(name);
	FILE *f = fdopen(fd, "w+b");
	if (!f)
		die_errno("%s: cannot make a temporary file", dir);
	return f;
}
