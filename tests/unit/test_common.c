// libcommon: the RNG against the PCG reference's published demo output,
// its saved state, its ranges; the parallel for (its kept workers: many
// rounds of changing widths, loops nested in a loop, two callers at
// once); option parsing.
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "check.h"
#include "libcommon/util/err.h"
#include "libcommon/util/rng.h"
#include "libcommon/util/threads.h"

static void test_pcg32_reference(void)
{
	// pcg32-demo of the PCG C reference: pcg32_srandom_r(&rng, 42, 54).
	static const uint32_t want[6] = { 0xa15c02b7, 0x7b47f409, 0xba1d3330,
	                                  0x83d2f293, 0xbfa4784b, 0xcbed606e };
	Rng r;
	rng_seed(&r, 42, 54);
	int same = 1;
	for (int i = 0; i < 6; i++)
		same &= rng_u32(&r) == want[i];
	CHECK(same);
}

static void test_state_saves(void)
{
	Rng a, b;
	rng_seed(&a, 7, 1);
	for (int i = 0; i < 100; i++)
		rng_u32(&a);
	b = a;   // the whole state is two integers: a checkpoint is a copy
	int same = 1;
	for (int i = 0; i < 1000; i++)
		same &= rng_normal(&a) == rng_normal(&b) && rng_u32(&a) == rng_u32(&b);
	CHECK(same);
	Rng c;
	rng_seed(&c, 7, 2);   // another stream differs
	rng_seed(&a, 7, 1);
	CHECK(rng_u32(&a) != rng_u32(&c));
}

static void test_ranges(void)
{
	Rng r;
	rng_seed(&r, 1, 1);
	int in = 1, hist[7] = { 0 };
	double s = 0, s2 = 0, u = 0;
	const int n = 200000;
	for (int i = 0; i < n; i++) {
		float f = rng_uniform(&r);
		in &= f >= 0.0f && f < 1.0f;
		u += f;
		float g = rng_range(&r, -10.0f, 10.0f);
		in &= g >= -10.0f && g < 10.0f;
		uint32_t k = rng_below(&r, 7);
		in &= k < 7;
		hist[k < 7 ? k : 0]++;
		double z = rng_normal(&r);
		s += z;
		s2 += z * z;
	}
	CHECK(in);
	CHECK(fabs(u / n - 0.5) < 0.005);
	CHECK(fabs(s / n) < 0.01 && fabs(s2 / n - 1.0) < 0.02);
	int flat = 1;
	for (int k = 0; k < 7; k++)
		flat &= fabs(hist[k] / (double)n - 1.0 / 7) < 0.005;
	CHECK(flat);
}

typedef struct { int seen[1000]; int threads[1000]; } PF;
static void mark(void *ctx, size_t b, size_t e, int t)
{
	PF *p = ctx;
	for (size_t i = b; i < e; i++) {
		p->seen[i]++;
		p->threads[i] = t;
	}
}

static void test_parallel_for(void)
{
	for (int nt = 1; nt <= 3; nt++) {
		static PF p;
		memset(&p, 0, sizeof p);
		parallel_for(1000, nt, mark, &p);
		int once = 1, ordered = 1;
		for (int i = 0; i < 1000; i++) {
			once &= p.seen[i] == 1;
			ordered &= i == 0 || p.threads[i] >= p.threads[i - 1];
		}
		CHECK(once && ordered);
		CHECK(p.threads[999] == nt - 1);   // contiguous slices, all used
	}
	static PF p;
	memset(&p, 0, sizeof p);
	parallel_for(0, 4, mark, &p);   // nothing to do: no call
	CHECK(p.seen[0] == 0);
}

// Each call of a round adds its slice's indices to sum; nested: each
// slice also runs a loop of its own (the pool is busy: it starts threads).
typedef struct { atomic_long sum; int nested; } Sum;
static void add_inner(void *ctx, size_t b, size_t e, int t)
{
	(void)t;
	Sum *s = ctx;
	for (size_t i = b; i < e; i++)
		atomic_fetch_add(&s->sum, (long)i);
}
static void add_outer(void *ctx, size_t b, size_t e, int t)
{
	Sum *s = ctx;
	add_inner(ctx, b, e, t);
	if (s->nested) {
		Sum in = { 0, 0 };
		parallel_for(100, 2, add_inner, &in);
		atomic_fetch_add(&s->sum, atomic_load(&in.sum) == 4950 ? 0 : 1000000);
	}
}

// rounds of parallel_for with 2 to 5 threads over 1 to 300 values;
// returns the rounds whose sum was wrong
static int rounds(int n, int nested)
{
	int bad = 0;
	for (int r = 0; r < n; r++) {
		size_t len = 1 + (size_t)(r * 37) % 300;
		Sum s = { 0, nested };
		parallel_for(len, 2 + r % 4, add_outer, &s);
		bad += atomic_load(&s.sum) != (long)(len * (len - 1) / 2);
	}
	return bad;
}

static void *rounds_thread(void *arg)
{
	*(int *)arg = rounds(3000, 0);
	return NULL;
}

static void test_parallel_for_pool(void)
{
	CHECK(rounds(5000, 0) == 0);
	CHECK(rounds(200, 1) == 0);
	pthread_t t;
	int other = -1;
	CHECK(pthread_create(&t, NULL, rounds_thread, &other) == 0);
	int mine = rounds(3000, 0);
	pthread_join(t, NULL);
	CHECK(mine == 0 && other == 0);
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, "test_common");
	test_pcg32_reference();
	test_state_saves();
	test_ranges();
	test_parallel_for();
	test_parallel_for_pool();
	CHECK(parse_long("-n", "42", 0, 100) == 42);
	CHECK(parse_double("-x", "0.5", 0, 1) == 0.5);
	return check_done("test_common");
}
