#ifndef CNNPIPE_TIMER_H
#define CNNPIPE_TIMER_H
// Monotonic seconds.
double now_seconds(void);
#endif
