// The optimiser step: SGD with momentum and weight decay as torch.optim.SGD
// takes it (dampening 0, no Nesterov; fast.ai 0.7's learners use it so):
//   d = g + wd*p   (skipped when wd == 0, as PyTorch does)
//   v = momentum*v + d
//   p = p - lr*v
//   p, g, v: (n)
// The fast path shares the values among threads and runs 16 at a time
// (AVX-512); it does exactly the reference's float operations in
// the same order, each rounded on its own, so the two agree bit for bit.
// No fused multiply-add may creep in (wd*p + g contracted would round once
// instead of twice): see the pragmas below.
#include <stddef.h>
#include "ops.h"
#include "ops_internal.h"
#include "libcommon/util/threads.h"
#ifdef __AVX512F__
#include <immintrin.h>
#endif

// No contraction in this file whatever the flags (GCC contracts with
// -std=gnu11 or -ffp-contract=fast, clang by default within an expression).
#if defined __GNUC__ && !defined __clang__
#pragma GCC optimize("fp-contract=off")
#endif
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

// ---- reference ------------------------------------------------------------

void sgd_momentum_update_ref(size_t n, float lr, float momentum, float wd,
                             float *p, const float *g, float *v)
{
	for (size_t i = 0; i < n; i++) {
		float d = g[i];
		if (wd != 0.0f) {
			float decay = wd * p[i];
			d = d + decay;
		}
		float kept = momentum * v[i];
		v[i] = kept + d;
		float step = lr * v[i];
		p[i] = p[i] - step;
	}
}

// ---- fast path ------------------------------------------------------------

typedef struct {
	float lr, momentum, wd;
	float *p, *v;
	const float *g;
} SgdJob;

// 16 values at a time (GCC -O2 does not vectorise the plain loop); the
// tail, and machines without AVX-512, by the scalar lines: the same
// operations either way, separate multiplies and adds.
static void sgd_range(size_t n, float lr, float momentum, float wd,
                      float *p, const float *g, float *v)
{
	size_t i = 0;
	const int decay = wd != 0.0f;
#ifdef __AVX512F__
	const __m512 vlr = _mm512_set1_ps(lr), vmom = _mm512_set1_ps(momentum);
	const __m512 vwd = _mm512_set1_ps(wd);
	for (; i + 16 <= n; i += 16) {
		__m512 pi = _mm512_loadu_ps(p + i), d = _mm512_loadu_ps(g + i);
		if (decay)
			d = _mm512_add_ps(d, _mm512_mul_ps(vwd, pi));
		__m512 vi = _mm512_add_ps(_mm512_mul_ps(vmom, _mm512_loadu_ps(v + i)), d);
		_mm512_storeu_ps(v + i, vi);
		_mm512_storeu_ps(p + i, _mm512_sub_ps(pi, _mm512_mul_ps(vlr, vi)));
	}
#endif
	for (; i < n; i++) {
		float d = g[i];
		if (decay) {
			float dec = wd * p[i];
			d = d + dec;
		}
		float kept = momentum * v[i];
		float vi = kept + d;
		float step = lr * vi;
		v[i] = vi;
		p[i] = p[i] - step;
	}
}

static void sgd_slice(void *ctx, size_t i0, size_t i1, int thread)
{
	(void)thread;
	SgdJob *j = ctx;
	sgd_range(i1 - i0, j->lr, j->momentum, j->wd, j->p + i0, j->g + i0, j->v + i0);
}

void sgd_momentum_update(size_t n, float lr, float momentum, float wd,
                         float *p, const float *g, float *v)
{
	SgdJob j = { .lr = lr, .momentum = momentum, .wd = wd, .p = p, .g = g, .v = v };
	parallel_for(n, n >= OPS_PAR_MIN ? ops_threads() : 1, sgd_slice, &j);
}
