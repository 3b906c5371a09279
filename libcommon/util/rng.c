#include <math.h>
#include "rng.h"

void rng_seed(Rng *r, uint64_t seed, uint64_t stream)
{
	r->state = 0;
	r->inc = (stream << 1) | 1u;
	rng_u32(r);
	r->state += seed;
	rng_u32(r);
}

uint32_t rng_u32(Rng *r)
{
	uint64_t old = r->state;
	r->state = old * 6364136223846793005ULL + r->inc;
	uint32_t xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
	uint32_t rot = (uint32_t)(old >> 59);
	return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

float rng_uniform(Rng *r)
{
	return (float)(rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

void rng_uniform_fill(Rng *r, float *u, size_t n)
{
	Rng q = *r;
	for (size_t i = 0; i < n; i++)
		u[i] = rng_uniform(&q);
	*r = q;
}

float rng_range(Rng *r, float lo, float hi)
{
	return lo + (hi - lo) * rng_uniform(r);
}

uint32_t rng_below(Rng *r, uint32_t n)
{
	uint64_t m = (uint64_t)rng_u32(r) * n;
	uint32_t l = (uint32_t)m;
	if (l < n) {
		uint32_t t = (-n) % n;
		while (l < t) {
			m = (uint64_t)rng_u32(r) * n;
			l = (uint32_t)m;
		}
	}
	return (uint32_t)(m >> 32);
}

float rng_normal(Rng *r)
{
	// u1 in (0, 1] so that log never sees 0.
	double u1 = 1.0 - (double)rng_u32(r) * (1.0 / 4294967296.0);
	double u2 = (double)rng_u32(r) * (1.0 / 4294967296.0);
	return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}
