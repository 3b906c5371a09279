// Registered temporary files (tempfiles.h).
//
// The signal handler may run at any point of the program, in any thread, so
// it reads only fixed storage: each slot's name is written while the slot is
// claimed, and the handler looks only at slots marked live.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include "err.h"
#include "signals.h"
#include "tempfiles.h"

#define MAX_TEMPS 16
enum { FREE, CLAIMED, LIVE };
static char names[MAX_TEMPS][PATH_MAX];
static atomic_int state[MAX_TEMPS];
static atomic_int installed;

static void remove_live(void)
{
	for (int i = 0; i < MAX_TEMPS; i++)
		if (atomic_load(&state[i]) == LIVE)
			unlink(names[i]);
}

static void install(void)
{
	if (atomic_exchange(&installed, 1))
		return;
	atexit(remove_live);
	cleanup_on_fatal_signals(remove_live);
}

int tempfile_create(char *templ, int *slot)
{
	*slot = -1;
	size_t n = strlen(templ);
	if (n >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	install();
	int k = -1;
	for (int i = 0; i < MAX_TEMPS && k < 0; i++) {
		int expect = FREE;
		if (atomic_compare_exchange_strong(&state[i], &expect, CLAIMED))
			k = i;
	}
	if (k < 0)
		die("more than %d outputs open at once", MAX_TEMPS);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int fd = mkostemp(templ, O_CLOEXEC);
	int e = errno;
	if (fd >= 0) {
		memcpy(names[k], templ, n + 1);
		atomic_store(&state[k], LIVE);
		*slot = k;
	} else {
		atomic_store(&state[k], FREE);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return fd;
}

void tempfile_forget(int slot)
{
	if (slot >= 0 && slot < MAX_TEMPS)
		atomic_store(&state[slot], FREE);
}
