// Micro-benchmark: conv2d_forward (and optionally backward) over the
// distinct convolution shapes of torchvision ResNet34 at 224x224, each timed
// and multiplied by how often the network uses it, so the total is the
// convolution time of one whole ResNet34 forward at the given batch.
// usage: ops_conv [-b batch] [-t threads] [-r reps] [--backward]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "ops.h"
#include "rng.h"
#include "timer.h"

typedef struct { int C, H, K, R, stride, pad, count; const char *what; } Layer;

// torchvision/models/resnet.py resnet34: layers [3, 4, 6, 3], BasicBlock.
static const Layer L[] = {
	{ 3, 224, 64, 7, 2, 3, 1, "conv1 7x7/2" },
	{ 64, 56, 64, 3, 1, 1, 6, "layer1 3x3" },
	{ 64, 56, 128, 3, 2, 1, 1, "layer2.0 3x3/2" },
	{ 64, 56, 128, 1, 2, 0, 1, "layer2.0 ds 1x1/2" },
	{ 128, 28, 128, 3, 1, 1, 7, "layer2 3x3" },
	{ 128, 28, 256, 3, 2, 1, 1, "layer3.0 3x3/2" },
	{ 128, 28, 256, 1, 2, 0, 1, "layer3.0 ds 1x1/2" },
	{ 256, 14, 256, 3, 1, 1, 11, "layer3 3x3" },
	{ 256, 14, 512, 3, 2, 1, 1, "layer4.0 3x3/2" },
	{ 256, 14, 512, 1, 2, 0, 1, "layer4.0 ds 1x1/2" },
	{ 512, 7, 512, 3, 1, 1, 5, "layer4 3x3" },
};

int main(int argc, char **argv)
{
	int batch = 64, threads = 2, reps = 1, backward = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-b") && i + 1 < argc)
			batch = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-t") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-r") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--backward"))
			backward = 1;
		else {
			fprintf(stderr, "usage: ops_conv [-b batch] [-t threads] [-r reps] [--backward]\n");
			return 2;
		}
	}
	ops_set_threads(threads);
	if (getenv("CNNPIPE_NO_WINOGRAD"))
		ops_set_winograd(0);
	Rng r;
	rng_seed(&r, 1, 1);
	double total = 0, total_flops = 0, total_b = 0;
	printf("%-20s %6s %9s %9s\n", "layer", "count", "ms", "GFLOP/s");
	for (size_t l = 0; l < sizeof L / sizeof L[0]; l++) {
		const Layer *a = &L[l];
		ConvShape s = conv_shape(batch, a->C, a->H, a->H, a->K, a->R, a->R,
		                         a->stride, a->pad);
		size_t nx = (size_t)batch * a->C * a->H * a->H;
		size_t nw = (size_t)a->K * a->C * a->R * a->R;
		size_t ny = (size_t)batch * a->K * s.P * s.Q;
		float *x = xmalloc_array(nx, 4), *w = xmalloc_array(nw, 4);
		float *y = xmalloc_array(ny, 4);
		for (size_t i = 0; i < nx; i++)
			x[i] = rng_uniform(&r) - 0.5f;
		for (size_t i = 0; i < nw; i++)
			w[i] = rng_uniform(&r) - 0.5f;
		conv2d_forward(&s, x, w, NULL, y);   // warm-up (pages, threads)
		double t0 = now_seconds();
		for (int i = 0; i < reps; i++)
			conv2d_forward(&s, x, w, NULL, y);
		double dt = (now_seconds() - t0) / reps;
		double flops = 2.0 * ny * a->C * a->R * a->R;
		printf("%-20s %6d %9.1f %9.1f", a->what, a->count, dt * 1e3, flops / dt * 1e-9);
		total += dt * a->count;
		total_flops += flops * a->count;
		if (backward) {
			float *dx = xmalloc_array(nx, 4), *dw = xcalloc(nw, 4);
			t0 = now_seconds();
			conv2d_backward(&s, x, w, y, dx, dw, NULL);
			double db = now_seconds() - t0;
			printf("   bwd %9.1f ms %7.1f GFLOP/s", db * 1e3, 2 * flops / db * 1e-9);
			total_b += db * a->count;
			free(dx);
			free(dw);
		}
		printf("\n");
		free(x); free(w); free(y);
	}
	printf("total conv forward: %.3f s for %d images = %.1f images/s, %.1f GFLOP/s\n",
	       total, batch, batch / total, total_flops / total * 1e-9);
	if (backward)
		printf("total conv backward: %.3f s = %.1f images/s, %.1f GFLOP/s\n",
		       total_b, batch / total_b, 2 * total_flops / total_b * 1e-9);
	return 0;
}
