// PCG32's step is the affine map s -> a*s + c (mod 2^64); n steps are the
// map s -> A*s + C with A = a^n and C = c*(a^(n-1) + ... + a + 1), built by
// squaring (F. Brown, "Random number generation with arbitrary strides",
// 1994): the map for 2^k steps composes with itself into 2^(k+1).
#include "rng_skip.h"

void rng_skip(Rng *r, uint64_t n)
{
	uint64_t step_mul = 6364136223846793005ULL, step_add = r->inc;
	uint64_t mul = 1, add = 0;   // the map of the steps taken so far
	while (n) {
		if (n & 1) {
			mul *= step_mul;
			add = add * step_mul + step_add;
		}
		step_add = (step_mul + 1) * step_add;
		step_mul *= step_mul;
		n >>= 1;
	}
	r->state = mul * r->state + add;
}
