// A whole network on the GPU against the same network on the CPU: ResNet34
// with fast.ai's head (random weights, 64x64 input, batch 4) run forward in
// eval mode (batch norm folded, fused epilogues, as precompute and tta run
// it), then one training step with the whole network unfrozen (train-mode
// batch norm, dropout with the same draws, backward, SGD with momentum), as
// train runs it.  Skips without a GPU (CNNPIPE_GPU_TEST_CPU=1: both sides
// on the CPU, a check of the test itself).
//
// Tolerances, of each tensor's scale (max |CPU value|): FWD_TOL = 1e-4 for
// the activations and log-probabilities, STEP_TOL = 1e-3 for the loss, the
// gradients and the weights after the step.  Each side rounds in f32 in its
// own order (cuDNN's algorithms, the CPU's Winograd and GEMM blocking), some
// 1e-6 per layer, and 36 layers compound it; training-mode batch norm over
// few values per channel at the end of the body (4 samples x 2 x 2)
// amplifies the backward's differences further.  A wrong op is off by
// order 1.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "kernels/backend.h"
#include "libcommon/engine/backbone.h"
#include "libcommon/engine/exec.h"
#include "libcommon/engine/trainer.h"
#include "libcommon/util/rng.h"

#define FWD_TOL 1e-4
#define STEP_TOL 1e-3
#define N 4
#define S 64

// The weights of test_net.c's randomize: Kaiming-like convolutions,
// gammas and variances in [0.5, 1.5), the rest small.
static void randomize(Model *net, uint64_t seed)
{
	Rng r;
	rng_seed(&r, seed, 7);
	for (int i = 0; i < net->params.n; i++) {
		Tensor *t = &net->params.t[i];
		float *p = t->data;
		int var = strstr(t->name, "running_var") != NULL;
		int gam = strstr(t->name, "bn") && strstr(t->name, ".weight");
		double sd = t->ndim >= 2 ? sqrt(2.0 / (double)(tensor_numel(t) / t->dims[0])) : 0.2;
		for (int64_t k = 0; k < tensor_numel(t); k++)
			p[k] = var ? rng_range(&r, 0.5f, 1.5f)
			     : gam ? rng_range(&r, 0.5f, 1.5f)
			     : (float)(rng_normal(&r) * sd);
	}
}

static void build(Model *m)
{
	char err[256];
	ModelSpec spec = { .arch = "resnet34", .head = HEAD_FASTAI, .num_classes = 2,
	                   .in_size = S, .init_head = 1, .seed = 1 };
	if (model_build(m, &spec, err, sizeof err)) {
		fprintf(stderr, "test_cuda_net: model_build: %s\n", err);
		exit(1);
	}
	randomize(m, 5);
}

// max |got - want| <= tol * max |want|
static int close_to(const char *what, const float *got, const float *want, size_t n,
                    double tol)
{
	double maxd = 0, scale = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - want[i]);
		if (!(d <= maxd))
			maxd = d;
		if (fabs(want[i]) > scale)
			scale = fabs(want[i]);
	}
	int ok = maxd <= tol * scale;
	if (!ok)
		fprintf(stderr, "FAIL %s: max err %.3g, scale %.3g\n", what, maxd, scale);
	return ok;
}

// Node `last`'s output for x, eval mode, on the host.
static float *forward(Exec *e, const float *x, int last)
{
	const Backend *be = e->be;
	size_t nin = (size_t)N * 3 * S * S;
	const Node *d = &e->m->nodes[last];
	size_t nout = (size_t)N * d->C * d->H * d->W;
	float *xd = (float *)x;
	if (!be->host_memory) {
		xd = be->alloc(nin * sizeof(float));
		be->to_device(xd, x, nin * sizeof(float));
	}
	const float *y = exec_forward(e, N, xd, 0, last, 0, 0);
	float *out = malloc(nout * sizeof(float));
	be->to_host(out, y, nout * sizeof(float));
	if (!be->host_memory)
		be->free(xd);
	return out;
}

int main(void)
{
	char err[256];
	const char *on_cpu = getenv("CNNPIPE_GPU_TEST_CPU");
	const Backend *gpu = on_cpu && !strcmp(on_cpu, "1") ? backend_cpu()
	                                                    : backend_cuda(err, sizeof err);
	if (!gpu) {
		printf("test_cuda_net: skipped: %s\n", err);
		return 0;
	}
	const Backend *cpu = backend_cpu();
	cpu->set_threads(4);
	Model a, b;
	build(&a);
	build(&b);
	size_t nin = (size_t)N * 3 * S * S;
	float *x = malloc(nin * sizeof(float));
	Rng r;
	rng_seed(&r, 9, 1);
	for (size_t i = 0; i < nin; i++)
		x[i] = rng_normal(&r);

	// ---- eval forward: the body's features and the log-probabilities
	Exec ea, eb;
	exec_init(&ea, &a, cpu);
	exec_init(&eb, &b, gpu);
	float *fa = forward(&ea, x, a.feat), *fb = forward(&eb, x, b.feat);
	size_t nf = (size_t)N * a.nodes[a.feat].C;
	CHECK(close_to("resnet34 eval features", fb, fa, nf, FWD_TOL));
	float *la = forward(&ea, x, a.n - 1), *lb = forward(&eb, x, b.n - 1);
	CHECK(close_to("resnet34 eval log-probabilities", lb, la, (size_t)N * 2, FWD_TOL));
	exec_free(&ea);
	exec_free(&eb);

	// ---- one training step, unfrozen
	model_freeze_to(&a, 0);
	model_freeze_to(&b, 0);
	Trainer ta, tb;
	trainer_init(&ta, &a, cpu, TRAIN_ALL, N, 0.9f, 0.0f, 3);
	trainer_init(&tb, &b, gpu, TRAIN_ALL, N, 0.9f, 0.0f, 3);
	int32_t y[N] = { 0, 1, 1, 0 };
	double lr[3] = { 1e-2, 1e-2, 1e-2 };
	double loss_a = trainer_step(&ta, N, x, y, lr), loss_b = trainer_step(&tb, N, x, y, lr);
	check_msg(fabs(loss_a - loss_b) <= STEP_TOL * fabs(loss_a),
	          "resnet34 train loss: cpu %.9g gpu %.9g", loss_a, loss_b);
	const Record *ga = exec_grads(&ta.e), *gb = exec_grads(&tb.e);
	int grads_ok = ga->n == gb->n;
	for (int i = 0; grads_ok && i < ga->n; i++) {
		char what[320];
		snprintf(what, sizeof what, "gradient %s", ga->t[i].name);
		grads_ok &= close_to(what, gb->t[i].data, ga->t[i].data,
		                     (size_t)tensor_numel(&ga->t[i]), STEP_TOL);
	}
	check_msg(grads_ok, "resnet34: every gradient within %g of the CPU's", STEP_TOL);
	exec_params_to_host(&tb.e);
	int params_ok = 1;
	for (int i = 0; i < a.params.n; i++) {
		char what[320];
		snprintf(what, sizeof what, "after the step %s", a.params.t[i].name);
		params_ok &= close_to(what, b.params.t[i].data, a.params.t[i].data,
		                      (size_t)tensor_numel(&a.params.t[i]), STEP_TOL);
	}
	check_msg(params_ok, "resnet34: every parameter (and running statistic) after the "
	          "step within %g of the CPU's", STEP_TOL);
	trainer_free(&ta);
	trainer_free(&tb);
	model_free(&a);
	model_free(&b);
	free(x);
	free(fa);
	free(fb);
	free(la);
	free(lb);
	printf("test_cuda_net: on the %s backend\n", gpu->name);
	return check_done("test_cuda_net");
}
