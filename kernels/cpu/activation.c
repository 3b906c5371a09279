// Elementwise activations and the residual add.  Each is a single plain loop
// (reference and fast path at once: the compiler vectorises them, and they
// are memory-bound, so threads only pay off for large n).
//   x, y, dy, dx, a, b: (n); in-place (y == x, dx == dy) allowed.
#include "ops.h"
#include "ops_internal.h"
#include "threads.h"

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
	for (size_t i = i0; i < i1; i++)
		j->out[i] = j->a[i] > 0.0f ? j->a[i] : 0.0f;
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
	for (size_t i = i0; i < i1; i++)
		j->out[i] = j->a[i] > 0.0f ? j->b[i] : 0.0f;
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
	for (size_t i = i0; i < i1; i++)
		j->out[i] = j->a[i] > 0.0f ? j->a[i] : j->a[i] * j->slope;
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
	for (size_t i = i0; i < i1; i++)
		j->out[i] = j->a[i] > 0.0f ? j->b[i] : j->b[i] * j->slope;
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
	for (size_t i = i0; i < i1; i++)
		j->out[i] = j->a[i] + j->b[i];
}

void add_forward(size_t n, const float *a, const float *b, float *y)
{
	EwJob j = { .a = a, .b = b, .out = y };
	parallel_for(n, ew_threads(n), add_f, &j);
}
