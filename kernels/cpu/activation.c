// Elementwise activations and the residual add.  References (_ref): one
// plain loop each.  Fast paths: the same selections and the same single
// float operation per value (so the same results, bit for bit), 16 values
// at a time where GCC does not vectorise, on threads for large n only (they
// are memory-bound).
//   x, y, dy, dx, a, b: (n); in-place (y == x, dx == dy) allowed.
#include "ops.h"
#include "ops_internal.h"
#include "libcommon/util/threads.h"
#ifdef __AVX512F__
#include <immintrin.h>
// Forward loops 16 values at a time (GCC -O2 vectorises none of them, and
// leaky's compare-and-branch mispredicts on real activations); the same
// selections as the scalar lines, so the same results.
#define VEC_LOOP(i, i1, body) \
	for (; i < i1; i += 16) { \
		__mmask16 k_ = (__mmask16)(i1 - i >= 16 ? 0xFFFF : (1u << (i1 - i)) - 1); \
		body \
	}
#endif

// ---- reference ------------------------------------------------------------

// y = x > 0 ? x : 0 (NaN and -0 give +0)
void relu_forward_ref(size_t n, const float *x, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// dx = y > 0 ? dy : 0
void relu_backward_ref(size_t n, const float *y, const float *dy, float *dx)
{
	for (size_t i = 0; i < n; i++)
		dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// y = x > 0 ? x : x*slope (NaN stays NaN)
void leaky_relu_forward_ref(size_t n, float slope, const float *x, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = x[i] > 0.0f ? x[i] : x[i] * slope;
}

// dx = x > 0 ? dy : dy*slope
void leaky_relu_backward_ref(size_t n, float slope, const float *x,
                             const float *dy, float *dx)
{
	for (size_t i = 0; i < n; i++)
		dx[i] = x[i] > 0.0f ? dy[i] : dy[i] * slope;
}

void add_forward_ref(size_t n, const float *a, const float *b, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = a[i] + b[i];
}

// ---- fast path ------------------------------------------------------------

typedef struct {
	const float *a, *b, *c;
	float *out;
	float slope;
} EwJob;

static int ew_threads(size_t n)
{
	return n >= OPS_PAR_MIN ? ops_threads() : 1;
}

static void relu_f(void *ctx, size_t i0, size_t i1, int t)
{
	(void)t;
	EwJob *j = ctx;
	const float *a = j->a;
	float *out = j->out;
	size_t i = i0;
#ifdef __AVX512F__
	VEC_LOOP(i, i1,
		__m512 v = _mm512_maskz_loadu_ps(k_, a + i);
		__mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
		_mm512_mask_storeu_ps(out + i, k_, _mm512_maskz_mov_ps(pos, v));
	)
#endif
	for (; i < i1; i++)
		out[i] = a[i] > 0.0f ? a[i] : 0.0f;
}

void relu_forward(size_t n, const float *x, float *y)
{
	EwJob j = { .a = x, .out = y };
	parallel_for(n, ew_threads(n), relu_f, &j);
}

static void relu_b(void *ctx, size_t i0, size_t i1, int t)
{
	(void)t;
	EwJob *j = ctx;
	const float *a = j->a, *b = j->b;
	float *out = j->out;
	size_t i = i0;
#ifdef __AVX512F__
	// a select, not a branch: the signs are a coin toss to a predictor
	VEC_LOOP(i, i1,
		__mmask16 pos = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(k_, a + i),
		                                   _mm512_setzero_ps(), _CMP_GT_OQ);
		_mm512_mask_storeu_ps(out + i, k_, _mm512_maskz_loadu_ps(k_ & pos, b + i));
	)
#endif
	for (; i < i1; i++)
		out[i] = a[i] > 0.0f ? b[i] : 0.0f;
}

// y: the forward output; the gradient passes where y > 0 (PyTorch's
// threshold_backward: 0 at x == 0).
void relu_backward(size_t n, const float *y, const float *dy, float *dx)
{
	EwJob j = { .a = y, .b = dy, .out = dx };
	parallel_for(n, ew_threads(n), relu_b, &j);
}

static void leaky_f(void *ctx, size_t i0, size_t i1, int t)
{
	(void)t;
	EwJob *j = ctx;
	const float *a = j->a;
	float *out = j->out;
	const float slope = j->slope;
	size_t i = i0;
#ifdef __AVX512F__
	const __m512 vs = _mm512_set1_ps(slope);
	VEC_LOOP(i, i1,
		__m512 v = _mm512_maskz_loadu_ps(k_, a + i);
		__mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
		_mm512_mask_storeu_ps(out + i, k_,
		                      _mm512_mask_blend_ps(pos, _mm512_mul_ps(v, vs), v));
	)
#endif
	for (; i < i1; i++)
		out[i] = a[i] > 0.0f ? a[i] : a[i] * slope;
}

// y = x for x > 0, slope*x otherwise (darknet's leaky uses slope 0.1).
void leaky_relu_forward(size_t n, float slope, const float *x, float *y)
{
	EwJob j = { .a = x, .out = y, .slope = slope };
	parallel_for(n, ew_threads(n), leaky_f, &j);
}

static void leaky_b(void *ctx, size_t i0, size_t i1, int t)
{
	(void)t;
	EwJob *j = ctx;
	const float *a = j->a, *b = j->b;
	float *out = j->out;
	const float slope = j->slope;
	size_t i = i0;
#ifdef __AVX512F__
	const __m512 vs = _mm512_set1_ps(slope);
	VEC_LOOP(i, i1,
		__mmask16 pos = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(k_, a + i),
		                                   _mm512_setzero_ps(), _CMP_GT_OQ);
		__m512 g = _mm512_maskz_loadu_ps(k_, b + i);
		_mm512_mask_storeu_ps(out + i, k_,
		                      _mm512_mask_blend_ps(pos, _mm512_mul_ps(g, vs), g));
	)
#endif
	for (; i < i1; i++)
		out[i] = a[i] > 0.0f ? b[i] : b[i] * slope;
}

void leaky_relu_backward(size_t n, float slope, const float *x,
                         const float *dy, float *dx)
{
	EwJob j = { .a = x, .b = dy, .out = dx, .slope = slope };
	parallel_for(n, ew_threads(n), leaky_b, &j);
}

static void add_f(void *ctx, size_t i0, size_t i1, int t)
{
	(void)t;
	EwJob *j = ctx;
	const float *a = j->a, *b = j->b;
	float *out = j->out;
	size_t i = i0;
#ifdef __AVX512F__
	VEC_LOOP(i, i1,
		_mm512_mask_storeu_ps(out + i, k_, _mm512_add_ps(_mm512_maskz_loadu_ps(k_, a + i),
		                                                 _mm512_maskz_loadu_ps(k_, b + i)));
	)
#endif
	for (; i < i1; i++)
		out[i] = a[i] + b[i];
}

void add_forward(size_t n, const float *a, const float *b, float *y)
{
	EwJob j = { .a = a, .b = b, .out = y };
	parallel_for(n, ew_threads(n), add_f, &j);
}
