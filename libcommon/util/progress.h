// A progress bar on stderr.  Shown only when stderr is a terminal, or when
// forced (progress_force(1), e.g. by a tool's --progress, or the environment
// variable CNNPIPE_PROGRESS=1); never written into pipes otherwise.
#ifndef CNNPIPE_PROGRESS_H
#define CNNPIPE_PROGRESS_H
#include <stdint.h>

typedef struct {
	const char *label;
	uint64_t total;   // 0 when unknown
	uint64_t done;
	double t0, last;
	int on;
} Progress;

void progress_force(int on);
void progress_start(Progress *p, const char *label, uint64_t total);
void progress_update(Progress *p, uint64_t done);
void progress_end(Progress *p);

#endif
