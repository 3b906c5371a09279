// An ordered parallel map: items lo .. hi-1 are worked on by a pool of
// threads, in any order and each into a result slot of its own, and the
// results are consumed by the calling thread one by one in index order
// (e.g. images decoded in parallel, records written in input order).  At
// most `window` results are worked on or wait to be consumed, so memory is
// bounded whatever the number of items.
#ifndef CNNPIPE_ORDERED_H
#define CNNPIPE_ORDERED_H
#include <stddef.h>

typedef struct {
	// Computes item i into slot, on any thread; state is that thread's own.
	// The slot holds what an earlier item left in it (zeros at first).
	void (*work)(void *ctx, size_t i, void *slot, void *state);
	// Takes item i's result, on the calling thread, i = lo, lo+1, ...
	void (*consume)(void *ctx, size_t i, void *slot);
	void *ctx;
	size_t slot_size;                 // bytes of one result slot
	size_t state_size;                // bytes of a thread's state (zeros at first)
	void (*state_free)(void *state);  // releases what a state holds; may be NULL
} OrderedMap;

// Runs m over [lo, hi) with `workers` threads and `window` slots (at least
// 1).  With workers == 0 the calling thread works on each item itself just
// before consuming it (one slot).  Returns when every item is consumed and
// the threads are gone; dies if a thread cannot start.
void ordered_map(const OrderedMap *m, size_t lo, size_t hi, int workers, size_t window);

#endif
