// Micro-benchmark: conv2d_forward over the distinct convolution shapes of
// torchvision ResNet34 (or Tiny Darknet's body) at 224x224, each timed and
// multiplied by how often the network uses it, so the total is the
// convolution time of one whole forward at the given batch.
// Each layer runs reps times; the median wall time is reported, and the
// median process CPU time, which a shared machine disturbs less.
// usage: ops_conv [-b batch] [-t threads] [-r reps] [-n resnet34|darknet]
//                 [-l layer-index] [--uncached] [--backward]
//                 [--epilogue fused|separate] [--bf16]
// --bf16: the Winograd layers' products in bf16 (ops_set_bf16).
// --epilogue: each call also adds a residual and applies ReLU, fused into
// the convolution (conv2d_forward_fused) or as separate passes
// (add_forward, relu_forward), as a ResNet block's second convolution.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "libcommon/util/alloc.h"
#include "kernels/cpu/ops.h"
#include "libcommon/util/rng.h"
#include "libcommon/util/timer.h"

typedef struct { int C, H, K, R, stride, pad, count; const char *what; } Layer;

// torchvision/models/resnet.py resnet34: layers [3, 4, 6, 3], BasicBlock.
static const Layer RESNET34[] = {
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
	{ 0, 0, 0, 0, 0, 0, 0, NULL },
};
// ../shared/models/tinydarknet/tiny.cfg up to the 1000-filter classifier
// (darknet's pad=1 means size/2).
static const Layer DARKNET[] = {
	{ 3, 224, 16, 3, 1, 1, 1, "c1 3x3 3-16" },
	{ 16, 112, 32, 3, 1, 1, 1, "c2 3x3 16-32" },
	{ 32, 56, 16, 1, 1, 0, 1, "c3 1x1 32-16" },
	{ 16, 56, 128, 3, 1, 1, 2, "c4 3x3 16-128" },
	{ 128, 56, 16, 1, 1, 0, 1, "c5 1x1 128-16" },
	{ 128, 28, 32, 1, 1, 0, 1, "c7 1x1 128-32" },
	{ 256, 28, 32, 1, 1, 0, 1, "c9 1x1 256-32" },
	{ 32, 28, 256, 3, 1, 1, 2, "c8 3x3 32-256" },
	{ 256, 14, 64, 1, 1, 0, 1, "c11 1x1 256-64" },
	{ 64, 14, 512, 3, 1, 1, 2, "c12 3x3 64-512" },
	{ 512, 14, 64, 1, 1, 0, 1, "c13 1x1 512-64" },
	{ 512, 14, 128, 1, 1, 0, 1, "c15 1x1 512-128" },
	{ 0, 0, 0, 0, 0, 0, 0, NULL },
};

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv)
{
	int batch = 64, threads = 2, reps = 1, backward = 0, only = -1, cached = 1;
	int epilogue = 0;   // 1 fused, 2 separate
	const Layer *L = RESNET34;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-b") && i + 1 < argc)
			batch = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-t") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-r") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-l") && i + 1 < argc)
			only = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			i++;
			L = !strcmp(argv[i], "darknet") ? DARKNET : RESNET34;
		} else if (!strcmp(argv[i], "--epilogue") && i + 1 < argc) {
			i++;
			epilogue = !strcmp(argv[i], "fused") ? 1 : 2;
		} else if (!strcmp(argv[i], "--uncached"))
			cached = 0;
		else if (!strcmp(argv[i], "--backward"))
			backward = 1;
		else if (!strcmp(argv[i], "--bf16"))
			ops_set_bf16(1);
		else {
			fprintf(stderr, "usage: ops_conv [-b batch] [-t threads] [-r reps] "
			        "[-n resnet34|darknet] [-l layer] [--uncached] [--backward] "
			        "[--epilogue fused|separate] [--bf16]\n");
			return 2;
		}
	}
	if (reps < 1 || reps > 100)
		reps = 1;
	ops_set_threads(threads);
	if (getenv("CNNPIPE_NO_WINOGRAD"))
		ops_set_winograd(0);
	Rng r;
	rng_seed(&r, 1, 1);
	double total = 0, total_cpu = 0, total_flops = 0, total_b = 0;
	double total_bx = 0, total_bw = 0;
	printf("%-20s %6s %9s %9s %9s\n", "layer", "count", "ms", "GFLOP/s", "cpu ms");
	for (int l = 0; L[l].what; l++) {
		const Layer *a = &L[l];
		if (only >= 0 && l != only)
			continue;
		ConvShape s = conv_shape(batch, a->C, a->H, a->H, a->K, a->R, a->R,
		                         a->stride, a->pad);
		size_t nx = (size_t)batch * a->C * a->H * a->H;
		size_t nw = (size_t)a->K * a->C * a->R * a->R;
		size_t ny = (size_t)batch * a->K * s.P * s.Q;
		float *x = xmalloc_array(nx, 4), *w = xmalloc_array(nw, 4);
		float *y = xaligned_alloc(64, ny * 4);   // as the engine's tensors
		for (size_t i = 0; i < nx; i++)
			x[i] = rng_uniform(&r) - 0.5f;
		for (size_t i = 0; i < nw; i++)
			w[i] = rng_uniform(&r) - 0.5f;
		// A network holds one cache per layer; the weights do not change
		// during a forward-only run.
		ConvCache *cache = cached ? conv_cache_new() : NULL;
		float *res = epilogue ? xmalloc_array(ny, 4) : NULL;
		for (size_t i = 0; epilogue && i < ny; i++)
			res[i] = rng_uniform(&r) - 0.5f;
		double wall[100], cpu[100];
		for (int i = -1; i < reps; i++) {   // i = -1: warm-up (pages, threads)
			double t0 = now_seconds(), c0 = cpu_seconds();
			if (epilogue == 1) {
				conv2d_forward_fused(cache, &s, x, w, NULL, res, CONV_ACT_RELU, 0, y);
			} else {
				conv2d_forward_cached(cache, &s, x, w, NULL, y);
				if (epilogue == 2) {
					add_forward(ny, y, res, y);
					relu_forward(ny, y, y);
				}
			}
			if (i < 0)
				continue;
			wall[i] = now_seconds() - t0;
			cpu[i] = cpu_seconds() - c0;
		}
		double dt = median(wall, reps), dc = median(cpu, reps);
		double flops = 2.0 * ny * a->C * a->R * a->R;
		printf("%-20s %6d %9.1f %9.1f %9.1f", a->what, a->count, dt * 1e3,
		       flops / dt * 1e-9, dc * 1e3);
		total += dt * a->count;
		total_cpu += dc * a->count;
		total_flops += flops * a->count;
		if (backward) {
			// dy = y; dx and dw timed apart (the engine asks for no dx of
			// the first layer), each the median of reps after a warm-up
			float *dx = xmalloc_array(nx, 4), *dw = xcalloc(nw, 4);
			double tx[100], tw[100], cx[100], cw[100];
			for (int i = -1; i < reps; i++) {
				double t0 = now_seconds(), c0 = cpu_seconds();
				conv2d_backward(&s, x, w, y, dx, NULL, NULL);
				double t1 = now_seconds(), c1 = cpu_seconds();
				conv2d_backward(&s, x, w, y, NULL, dw, NULL);
				if (i < 0)
					continue;
				tx[i] = t1 - t0;
				tw[i] = now_seconds() - t1;
				cx[i] = c1 - c0;
				cw[i] = cpu_seconds() - c1;
			}
			double bx = median(tx, reps), bw = median(tw, reps);
			printf("  dx %6.1f ms %6.1f GF/s cpu %6.1f  dw %6.1f ms %6.1f GF/s cpu %6.1f",
			       bx * 1e3, flops / bx * 1e-9, median(cx, reps) * 1e3,
			       bw * 1e3, flops / bw * 1e-9, median(cw, reps) * 1e3);
			total_bx += bx * a->count;
			total_bw += bw * a->count;
			if (l > 0)
				total_b += (bx + bw) * a->count;
			else
				total_b += bw * a->count;
			free(dx);
			free(dw);
		}
		printf("\n");
		conv_cache_free(cache);
		free(x); free(w); free(y); free(res);
	}
	printf("total conv forward: %.3f s for %d images = %.1f images/s, %.1f GFLOP/s, cpu %.3f s\n",
	       total, batch, batch / total, total_flops / total * 1e-9, total_cpu);
	if (backward)
		printf("total conv backward (no dx of the first layer): %.3f s = %.1f images/s; "
		       "all dx %.3f s, all dw %.3f s\n", total_b, batch / total_b,
		       total_bx, total_bw);
	return 0;
}
