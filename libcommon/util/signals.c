// Stop requests (signals.h).
#include <signal.h>
#include <string.h>
#include "signals.h"

static volatile sig_atomic_t requested;

static void on_signal(int sig)
{
	requested = sig;
}

void stop_on_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;   // reads and writes carry on; the loop checks
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int stop_requested(void)
{
	return requested;
}
