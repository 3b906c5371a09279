// The one random number generator of cnnpipe: PCG32 (O'Neill, "PCG: A family
// of simple fast space-efficient statistically good algorithms", XSH-RR
// output, 64-bit LCG state, multiplier 6364136223846793005).  Its whole
// state is two uint64s, so it can be saved in a checkpoint and resumed.
#ifndef CNNPIPE_RNG_H
#define CNNPIPE_RNG_H
#include <stddef.h>
#include <stdint.h>

typedef struct { uint64_t state, inc; } Rng;

// Seeds like pcg32_srandom_r(seed, stream).
void rng_seed(Rng *r, uint64_t seed, uint64_t stream);
uint32_t rng_u32(Rng *r);
// Uniform in [0, 1) with 24 bits: (rng_u32 >> 8) * 2^-24.
float rng_uniform(Rng *r);
// n of them into u, the values n calls of rng_uniform give, in order (one
// call: the state stays in registers).
void rng_uniform_fill(Rng *r, float *u, size_t n);
// Uniform in [lo, hi).
float rng_range(Rng *r, float lo, float hi);
// Unbiased integer in [0, n), n > 0 (Lemire's rejection).
uint32_t rng_below(Rng *r, uint32_t n);
// Standard normal, Box-Muller on two uniforms (no cached second value, so
// the state alone determines what comes next).
float rng_normal(Rng *r);

#endif
