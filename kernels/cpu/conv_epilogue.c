// The fused epilogue of conv2d_forward_fused (ops_internal.h, ConvEpi):
// y = act(y + res) over a range of output pixels.  Its own file so that the
// convolution's algorithms (conv2d.c's column blocks, conv_direct.c) call it
// without calling each other: conv2d.c -> conv_direct.c -> here.
//   y, res: (N, K, P, Q)
#include <stddef.h>
#include "ops.h"
#include "ops_internal.h"

void conv_epilogue_range(const ConvEpi *e, const ConvShape *s, float *y,
                         size_t j0, size_t j1)
{
	const size_t PQ = (size_t)s->P * s->Q, K = (size_t)s->K;
	const float slope = e->slope;
	for (size_t a = j0; a < j1;) {
		size_t n = a / PQ, off = a - n * PQ;
		size_t len = (n + 1) * PQ < j1 ? (n + 1) * PQ - a : j1 - a;
		for (size_t k = 0; k < K; k++) {
			float *yk = y + (n * K + k) * PQ + off;
			const float *rk = e->res ? e->res + (n * K + k) * PQ + off : NULL;
			for (size_t i = 0; i < len; i++) {
				float v = yk[i] + (rk ? rk[i] : 0.0f);
				float sv = v * slope;
				yk[i] = v > sv ? v : sv;
			}
		}
		a += len;
	}
}
