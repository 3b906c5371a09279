// What signals do to a running program.
//
// Stop requests: SIGINT or SIGTERM honoured at a safe point (train finishes
// its batch and writes a checkpoint).  The handlers are installed
// explicitly: a non-interactive shell starts background jobs with SIGINT
// ignored, and only a program that installs its own handler hears it.
//
// Fatal signals: a signal whose default action ends the program first runs
// a cleanup (tempfiles.c removes unfinished outputs), then ends it by that
// same signal, so that the parent still sees "killed by SIGTERM".
#ifndef CNNPIPE_SIGNALS_H
#define CNNPIPE_SIGNALS_H

void stop_on_signals(void);
// 0, or the signal that asked to stop.
int stop_requested(void);

// Installs `cleanup` (it must be async-signal-safe: unlink and the like) on
// every signal whose default action ends the program (SIGHUP, SIGINT,
// SIGTERM, SIGPIPE, SIGXFSZ, ...).  A signal that is ignored (nohup, a
// background job's SIGINT) stays ignored, and one that already has a
// handler (stop_on_signals, a sanitizer's) keeps it: that handler's program
// ends through exit(), where the cleanup runs too.  Safe to call again.
void cleanup_on_fatal_signals(void (*cleanup)(void));

#endif
