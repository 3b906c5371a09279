// Jumping a PCG32 stream ahead: what n calls of rng_u32 would leave, in
// O(log n) steps, so that a process can draw its own part of a longer
// sequence (a data-parallel rank's rows of a batch's dropout masks) and
// then stand where the whole sequence would have left it.
#ifndef CNNPIPE_RNG_SKIP_H
#define CNNPIPE_RNG_SKIP_H
#include <stdint.h>
#include "rng.h"

// r as after n calls of rng_u32 (rng_uniform draws one each).
void rng_skip(Rng *r, uint64_t n);

#endif
