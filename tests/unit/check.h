// The unit tests' one assertion: counts, reports the failed expression with
// its place, and goes on.  Each test ends with
//   printf("test_x: %d passed, %d failed\n", passed, failed);
#ifndef CNNPIPE_CHECK_H
#define CNNPIPE_CHECK_H
#include <stdio.h>

static int passed, failed;
#define CHECK(c) do { if (c) passed++; else { failed++; \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); } } while (0)

#endif
