// Stop requests and fatal-signal cleanup (signals.h).
#include <errno.h>
#include <signal.h>
#include <string.h>
#include "signals.h"

static volatile sig_atomic_t requested;

static void on_stop(int sig)
{
	requested = sig;
}

void stop_on_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;   // reads and writes carry on; the loop checks
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int stop_requested(void)
{
	return requested;
}

// The signals whose default action ends the program.  Not the real-time
// ones (the C library uses some) and not SIGTRAP (debuggers).
static const int FATAL[] = {
	SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGSEGV,
	SIGPIPE, SIGALRM, SIGTERM, SIGUSR1, SIGUSR2, SIGXCPU, SIGXFSZ,
	SIGVTALRM, SIGPROF, SIGSYS,
};

static void (*volatile cleanup_fn)(void);

// SA_RESETHAND has put the default action back and SA_NODEFER leaves the
// signal unblocked, so raising it again ends the program at once with the
// status a parent expects.  A fault (SIGSEGV) raised by the hardware ends
// it the same way, or by faulting again on return.
static void on_fatal(int sig)
{
	int e = errno;
	void (*fn)(void) = cleanup_fn;
	if (fn)
		fn();
	raise(sig);
	errno = e;
}

void cleanup_on_fatal_signals(void (*cleanup)(void))
{
	cleanup_fn = cleanup;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	for (size_t i = 0; i < sizeof FATAL / sizeof FATAL[0]; i++) {
		struct sigaction old;
		if (sigaction(FATAL[i], NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
		    old.sa_handler != SIG_DFL)
			continue;
		// the others wait (one cleanup at a time); this one must not
		sigfillset(&sa.sa_mask);
		sigdelset(&sa.sa_mask, FATAL[i]);
		sigaction(FATAL[i], &sa, NULL);
	}
}
