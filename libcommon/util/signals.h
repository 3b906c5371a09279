// A stop request by SIGINT or SIGTERM, honoured at a safe point (train
// finishes its batch and writes a checkpoint).  The handlers are installed
// explicitly: a non-interactive shell starts background jobs with SIGINT
// ignored, and only a program that installs its own handler hears it.
#ifndef CNNPIPE_SIGNALS_H
#define CNNPIPE_SIGNALS_H

void stop_on_signals(void);
// 0, or the signal that asked to stop.
int stop_requested(void);

#endif
