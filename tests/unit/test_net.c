// Tests of the engine: the model graph and its execution state
// (libcommon/engine: graph, plan, forward, backward, load, backbone, model_file).
//
// Without arguments: self-contained checks — gradients of a small residual
// graph (with the fast.ai head) against central differences, buffer reuse
// (inference with shared buffers = with every activation kept), freezing,
// the head's Kaiming init, a model file round trip.
// With --golden FILE (made by tests/gen_golden_net.py; tests/net.bats runs
// both when torch is present): a whole torchvision ResNet18 forward (eval
// and train) and backward against PyTorch.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "libcommon/util/alloc.h"
#include "libcommon/engine/backbone.h"
#include "libcommon/engine/model_file.h"
#include "libcommon/engine/exec.h"
#include "libcommon/engine/model.h"
#include "libcommon/util/rng.h"
#include "formats/stream.h"


// model_build with the fast.ai head's seeded init.
static int build(Model *m, const char *arch, int head, int classes, int size,
                 uint64_t seed, char *err, size_t errlen)
{
	ModelSpec spec = { .arch = arch, .head = head, .num_classes = classes,
	                   .in_size = size, .init_head = 1, .seed = seed };
	return model_build(m, &spec, err, errlen);
}


// max |a - b| / max(1, max |b|)

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

// A small graph with every op of the engine: conv, bn, relu, leaky,
// maxpool, residual add, avgpool, concat pool, flatten, bn1d, dropout,
// linear, log-softmax.
static void build_small(Model *net)
{
	model_init(net);
	snprintf(net->arch, sizeof net->arch, "test");
	net->in_c = 3;
	net->in_size = 8;
	net->ngroups = 1;
	int x = graph_conv(net, "c1", -1, 4, 3, 1, 1, 0);
	x = graph_bn(net, "b1", x, 1e-5f);
	x = graph_relu(net, "r1", x);
	x = graph_maxpool(net, "mp", x, 2, 2, 0, 0, 0);
	net->ngroups = 2;
	int y = graph_conv(net, "c2", x, 4, 3, 1, 1, 1);
	y = graph_leaky(net, "l2", y, 0.1f);
	y = graph_bn(net, "b2", y, 1e-5f);
	x = graph_add2(net, "add", y, x);
	x = graph_relu(net, "r2", x);
	// darknet's downsampling shortcut: (4, 4, 4) added onto a (6, 2, 2) map
	int z = graph_conv(net, "c3", x, 6, 3, 2, 1, 1);
	x = graph_shortcut(net, "sc", z, x);
	net->body_end = net->n;
	net->ngroups = 3;
	x = graph_concatpool(net, "head.pool", x);
	net->feat = x;
	x = graph_flatten(net, "head.flat", x);
	x = graph_bn1d(net, "head.bn", x, 1e-5f);
	x = graph_dropout(net, "head.drop", x, 0.5f);
	x = graph_linear(net, "head.fc", x, 3);
	graph_logsoftmax(net, "head.ls", x);
	net->num_classes = 3;
	model_finish(net);
}

// loss = sum(out * g) for a fixed g; dropout mask fixed by reseeding.
static double small_loss(Exec *e, int N, const float *x, const float *g,
                         int train)
{
	rng_seed(&e->rng, 5, 5);
	float *y = exec_forward(e, N, x, 0, e->m->n - 1, train, 1);
	double s = 0;
	for (int i = 0; i < N * 3; i++)
		s += (double)y[i] * g[i];
	return s;
}

static void test_gradients(int train)
{
	Model net;
	Exec ex;
	build_small(&net);
	randomize(&net, 11);
	exec_init(&ex, &net, backend_cpu());
	int N = 4, nx = N * 3 * 8 * 8;
	float *x = xmalloc(nx * sizeof(float)), g[12];
	Rng r;
	rng_seed(&r, 3, 3);
	for (int i = 0; i < nx; i++)
		x[i] = rng_normal(&r);
	for (int i = 0; i < 12; i++)
		g[i] = rng_normal(&r);
	// Running statistics change in train mode: save and restore them so
	// every evaluation sees the same parameters.
	Record saved;
	record_init(&saved);
	for (int i = 0; i < net.params.n; i++)
		record_add(&saved, net.params.t[i].name, DT_F32, net.params.t[i].ndim,
		           net.params.t[i].dims, net.params.t[i].data);
#define RESTORE() do { \
		for (int i_ = 0; i_ < net.params.n; i_++) \
			memcpy(net.params.t[i_].data, saved.t[i_].data, saved.t[i_].nbytes); \
		exec_params_to_device(&ex); \
	} while (0)
	exec_zero_grad(&ex);
	small_loss(&ex, N, x, g, train);
	float *dx = exec_backward(&ex, g, 1);
	float *dxc = xmalloc(nx * sizeof(float));
	memcpy(dxc, dx, nx * sizeof(float));
	RESTORE();
	const double h = 1e-3;
	double worst = 0;
	int nchk = 0, nbad = 0;
	// input gradient, a sample of positions
	for (int i = 0; i < nx; i += 7) {
		float keep = x[i];
		x[i] = keep + (float)h;
		double lp = small_loss(&ex, N, x, g, train);
		RESTORE();
		x[i] = keep - (float)h;
		double lm = small_loss(&ex, N, x, g, train);
		RESTORE();
		x[i] = keep;
		double fd = (lp - lm) / (2 * h);
		double e = fabs(fd - dxc[i]) / (1 + fabs(fd));
		if (e > worst)
			worst = e;
		nchk++;
		nbad += e > 1e-2;
	}
	// ReLU, leaky ReLU and max pool have kinks a finite step may cross:
	// a few entries may differ, an indexing bug would spoil most.
	check_msg(nbad * 10 <= nchk, "%s: dx vs central differences: %d of %d off by > 1e-2 (worst %.3g)",
	   train ? "train" : "eval", nbad, nchk, worst);
	nchk = nbad = 0;
	// parameter gradients: every learnable tensor, a few entries each
	worst = 0;
	const char *worst_name = "";
	for (int t = 0; t < ex.grads.n; t++) {
		Tensor *gt = &ex.grads.t[t];
		Tensor *pt = record_find(&net.params, gt->name);
		float *p = pt->data, *gg = gt->data;
		int64_t n = tensor_numel(gt);
		for (int64_t i = 0; i < n; i += (n > 16 ? n / 9 : 1)) {
			int si = (int)(pt - net.params.t);
			float keep = ((float *)saved.t[si].data)[i];
			p[i] = keep + (float)h;
			((float *)saved.t[si].data)[i] = p[i];
			exec_params_to_device(&ex);
			double lp = small_loss(&ex, N, x, g, train);
			RESTORE();
			p[i] = keep - (float)h;
			((float *)saved.t[si].data)[i] = p[i];
			exec_params_to_device(&ex);
			double lm = small_loss(&ex, N, x, g, train);
			((float *)saved.t[si].data)[i] = keep;
			RESTORE();
			double fd = (lp - lm) / (2 * h);
			double e = fabs(fd - gg[i]) / (1 + fabs(fd));
			if (e > worst) {
				worst = e;
				worst_name = gt->name;
			}
			nchk++;
			nbad += e > 1e-2;
		}
	}
	check_msg(nbad * 10 <= nchk && nchk > 40,
	   "%s: parameter gradients vs central differences: %d of %d off by > 1e-2 (worst %.3g, %s)",
	   train ? "train" : "eval", nbad, nchk, worst, worst_name);
	free(x);
	free(dxc);
	record_free(&saved);
	exec_free(&ex);
	model_free(&net);
}

// Inference with shared buffers must give exactly what keeping every
// activation gives; a second call with another batch size too.
static void test_buffer_reuse(void)
{
	Model net;
	Exec ex;
	char err[256];
	int rc = build(&net, "resnet18", HEAD_FASTAI, 2, 32, 1, err, sizeof err);
	check_msg(rc == 0, "build resnet18: %s", rc ? err : "");
	randomize(&net, 5);
	exec_init(&ex, &net, backend_cpu());
	int N = 3, nx = N * 3 * 32 * 32;
	float *x = xmalloc(nx * sizeof(float));
	Rng r;
	rng_seed(&r, 1, 1);
	for (int i = 0; i < nx; i++)
		x[i] = rng_normal(&r);
	float a[6], b[6];
	memcpy(a, exec_forward(&ex, N, x, 0, net.n - 1, 0, 1), sizeof a);
	memcpy(b, exec_forward(&ex, N, x, 0, net.n - 1, 0, 0), sizeof b);
	// (inference also folds batch norms into convolutions: rounding only)
	check_msg(check_rel_diff(b, a, 6, NULL) < 1e-5, "inference with reused buffers = with kept activations");
	size_t kept = ex.arena_len;
	// body + pool then head from the features: the same
	int C2 = net.nodes[net.feat].C;
	float *f = xmalloc((size_t)N * C2 * sizeof(float));
	memcpy(f, exec_forward(&ex, N, x, 0, net.feat, 0, 0), (size_t)N * C2 * sizeof(float));
	memcpy(b, exec_forward(&ex, N, f, net.feat + 1, net.n - 1, 0, 0), sizeof b);
	check_msg(check_rel_diff(b, a, 6, NULL) < 1e-5, "body+pool then head = whole net");
	check_msg(kept > 0, "arena used");
	exec_free(&ex);
	model_free(&net);
	free(x);
	free(f);
}

// A darknet-like body: conv+bn+leaky+maxpool (fused, the pool too), conv
// with bias + leaky (3x3, run with the 1x1 after it: its maps unstored),
// conv+bn+relu, a shortcut add + leaky (darknet's: not fusable, the
// activation sits between conv and add), conv+bn (no activation), then a
// residual add of a conv with bias, and a global average pool.
static void build_darkish(Model *net)
{
	model_init(net);
	snprintf(net->arch, sizeof net->arch, "test");
	net->in_c = 3;
	net->in_size = 20;
	net->ngroups = 1;
	int x = graph_conv(net, "l0.conv", -1, 16, 3, 1, 1, 0);
	x = graph_bn(net, "l0.bn", x, 1e-5f);
	x = graph_leaky(net, "l0.act", x, 0.1f);
	x = graph_maxpool(net, "l1.mp", x, 2, 2, 0, 0, 0);
	int a = graph_conv(net, "l2.conv", x, 16, 3, 1, 1, 1);
	a = graph_leaky(net, "l2.act", a, 0.1f);
	int b = graph_conv(net, "l3.conv", a, 16, 1, 1, 0, 0);
	b = graph_bn(net, "l3.bn", b, 1e-5f);
	b = graph_relu(net, "l3.act", b);
	x = graph_add2(net, "l4.shortcut", b, x);
	x = graph_leaky(net, "l4.act", x, 0.1f);
	int c = graph_conv(net, "l5.conv", x, 32, 3, 2, 1, 0);
	c = graph_bn(net, "l5.bn", c, 1e-5f);
	int d = graph_conv(net, "l6.conv", x, 32, 1, 2, 0, 1);
	x = graph_add2(net, "l7.add", d, c);
	x = graph_gap(net, "l8.gap", x);
	net->body_end = net->n;
	model_finish(net);
}

static int fused_nodes(const Exec *e, int first, int last)
{
	int n = 0;
	for (int i = first; i <= last; i++)
		n += e->run[i].y == NULL;
	return n;
}

// Inference runs conv [-> bn] [-> add] [-> relu/leaky] [-> 2x2 maxpool] as one fused
// convolution; it must give what the unfused forward with every activation
// kept gives, on the whole body and on a range whose residual is the
// range's input.
static void fused_case(Model *net, Exec *ex, const char *what, int first, int last,
                       int N, int expect_fused)
{
	const Node *in = first ? &net->nodes[first - 1] : NULL;
	size_t nx = (size_t)N * (in ? (size_t)in->C * in->H * in->W
	                            : (size_t)net->in_c * net->in_size * net->in_size);
	size_t ny = (size_t)N * net->nodes[last].C * net->nodes[last].H * net->nodes[last].W;
	float *x = xmalloc(nx * sizeof(float)), *a = xmalloc(ny * sizeof(float));
	Rng r;
	rng_seed(&r, 3, 3);
	for (size_t i = 0; i < nx; i++)
		x[i] = rng_normal(&r);
	memcpy(a, exec_forward(ex, N, x, first, last, 0, 1), ny * sizeof(float));
	check_msg(fused_nodes(ex, first, last) == 0, "%s: keep: no node fused", what);
	const float *b = exec_forward(ex, N, x, first, last, 0, 0);
	int nf = fused_nodes(ex, first, last);
	check_msg(nf == expect_fused, "%s: %d nodes fused away, expected %d", what, nf,
	   expect_fused);
	double ad, rd = check_rel_diff(b, a, ny, &ad);
	check_msg(rd < 1e-5, "%s: fused inference = unfused with kept activations (rel %.3g, abs %.3g)",
	   what, rd, ad);
	free(x);
	free(a);
}

static void test_fused_inference(void)
{
	Model net;
	Exec ex;
	char err[256];
	int rc = build(&net, "resnet18", HEAD_NONE, 0, 32, 1, err, sizeof err);
	check_msg(rc == 0, "build resnet18: %s", rc ? err : "");
	randomize(&net, 9);
	exec_init(&ex, &net, backend_cpu());
	// stem conv+bn+relu: 2; per block conv1+bn1+relu1: 2, conv2+bn2+add+relu:
	// 3, downsample conv+bn (layers 2-4): 1
	fused_case(&net, &ex, "resnet18 body", 0, net.body_end - 1, 2, 2 + 8 * 5 + 3);
	int b = -1;   // layer1.1: an identity block, its residual is the input
	for (int i = 0; i < net.n && b < 0; i++)
		if (!strcmp(net.nodes[i].name, "layer1.1.conv1"))
			b = i;
	check_msg(b > 0, "layer1.1.conv1 found");
	if (b > 0)
		fused_case(&net, &ex, "resnet18 from layer1.1", b, net.body_end - 1, 2, 7 * 5 + 3);
	exec_free(&ex);
	model_free(&net);
	rc = build(&net, "resnet50", HEAD_NONE, 0, 32, 1, err, sizeof err);
	check_msg(rc == 0, "build resnet50: %s", rc ? err : "");
	randomize(&net, 10);
	exec_init(&ex, &net, backend_cpu());
	// bottleneck: 2 + 2 + 3, downsample 1 in all four layers
	fused_case(&net, &ex, "resnet50 body", 0, net.body_end - 1, 1, 2 + 16 * 7 + 4);
	exec_free(&ex);
	model_free(&net);
	build_darkish(&net);
	randomize(&net, 11);
	exec_init(&ex, &net, backend_cpu());
	// l0: 2, l2: 1, l3: 2, l5: conv+bn with the add (res = l6.conv): 2
	fused_case(&net, &ex, "darknet-like", 0, net.body_end - 1, 3, 9);
	exec_free(&ex);
	model_free(&net);
}

// Work done once: an inference keeps each conv's folded weights and cache
// across calls (the same numbers), and exec_params_changed makes the next
// forward see new weights exactly as a fresh execution state does.
// Training runs a batch norm, its activation and a 2x2 max pool after it
// as one pass each way (batchnorm_act_maxpool2_*): the same outputs, input
// gradient and parameter gradients as the three run one after the other
// (a backend without the fused entries), and the same running statistics.
static void test_fused_training(void)
{
	Model net[2];
	Exec ex[2];
	Backend unfused = *backend_cpu();
	unfused.batchnorm_act_maxpool2_forward_train = NULL;
	unfused.batchnorm_act_maxpool2_backward_train = NULL;
	const int N = 3;
	int bn = -1;
	for (int v = 0; v < 2; v++) {
		build_darkish(&net[v]);
		randomize(&net[v], 12);
		exec_init(&ex[v], &net[v], v ? &unfused : backend_cpu());
	}
	for (int i = 0; i < net[0].n && bn < 0; i++)
		if (!strcmp(net[0].nodes[i].name, "l0.bn"))
			bn = i;
	const int last = net[0].body_end - 1;
	const Node *o = &net[0].nodes[last];
	size_t nx = (size_t)N * 3 * 20 * 20, ny = (size_t)N * o->C * o->H * o->W;
	float *x = xmalloc(nx * sizeof(float)), *dy = xmalloc(ny * sizeof(float));
	float *y[2], *dx[2];
	Rng r;
	rng_seed(&r, 5, 5);
	for (size_t i = 0; i < nx; i++)
		x[i] = rng_normal(&r);
	for (size_t i = 0; i < ny; i++)
		dy[i] = rng_normal(&r);
	for (int v = 0; v < 2; v++) {
		exec_zero_grad(&ex[v]);
		y[v] = exec_forward(&ex[v], N, x, 0, last, 1, 1);
		dx[v] = exec_backward(&ex[v], dy, 1);
	}
	check_msg(bn >= 0 && ex[0].run[bn].pool_fused && !ex[1].run[bn].pool_fused,
	          "fused training: l0.bn ran with its pool (and not without the entries)");
	check_msg(!memcmp(y[0], y[1], ny * sizeof(float)),
	          "fused training: the forward's outputs, bit for bit");
	double ad, rd = check_rel_diff(dx[0], dx[1], nx, &ad);
	check_msg(rd < 1e-6, "fused training: dx (rel %.3g, abs %.3g)", rd, ad);
	for (int t = 0; t < ex[0].grads.n; t++) {
		const Tensor *a = &ex[0].grads.t[t], *b = &ex[1].grads.t[t];
		rd = check_rel_diff(a->data, b->data, (size_t)tensor_numel(a), &ad);
		check_msg(rd < 1e-6, "fused training: gradient of %s (rel %.3g, abs %.3g)",
		          a->name, rd, ad);
	}
	for (int t = 0; t < net[0].params.n; t++)
		check_msg(!memcmp(net[0].params.t[t].data, net[1].params.t[t].data,
		                  net[0].params.t[t].nbytes),
		          "fused training: %s after the forward, bit for bit",
		          net[0].params.t[t].name);
	for (int v = 0; v < 2; v++) {
		exec_free(&ex[v]);
		model_free(&net[v]);
	}
	free(x);
	free(dy);
}

static void test_cached_work(void)
{
	Model net;
	Exec ex, fresh;
	char err[256];
	int rc = build(&net, "resnet18", HEAD_FASTAI, 2, 32, 1, err, sizeof err);
	check_msg(rc == 0, "build resnet18: %s", rc ? err : "");
	randomize(&net, 21);
	exec_init(&ex, &net, backend_cpu());
	int N = 2, nx = N * 3 * 32 * 32, F = net.nodes[net.feat].C;
	float *x = xmalloc(nx * sizeof(float));
	float *a = xmalloc((size_t)N * F * sizeof(float)), *b = xmalloc((size_t)N * F * sizeof(float));
	Rng r;
	rng_seed(&r, 4, 4);
	for (int i = 0; i < nx; i++)
		x[i] = rng_normal(&r);
	memcpy(a, exec_forward(&ex, N, x, 0, net.feat, 0, 0), (size_t)N * F * sizeof(float));
	int folds = 0, conv1 = -1;
	for (int i = 0; i < net.n; i++) {
		folds += ex.run[i].fold_ok;
		if (!strcmp(net.nodes[i].name, "conv1"))
			conv1 = i;
	}
	check_msg(folds == 20, "resnet18: %d convolutions keep folded weights (want 20)", folds);
	const float *fold = ex.run[conv1].fold;
	memcpy(b, exec_forward(&ex, N, x, 0, net.feat, 0, 0), (size_t)N * F * sizeof(float));
	check_msg(!memcmp(a, b, (size_t)N * F * sizeof(float)) && ex.run[conv1].fold == fold,
	   "second forward: the kept folds and caches give the same bytes");
	// new weights for the stem and a 3x3 (Winograd-cached) layer
	float *w = record_find(&net.params, "conv1.weight")->data;
	float *w2 = record_find(&net.params, "layer1.0.conv1.weight")->data;
	for (int i = 0; i < 64 * 3 * 7 * 7; i++)
		w[i] *= -1.5f;
	for (int i = 0; i < 64 * 64 * 9; i++)
		w2[i] = -w2[i];
	exec_params_to_device(&ex);
	check_msg(!ex.run[conv1].fold_ok, "exec_params_changed drops the folded weights");
	memcpy(b, exec_forward(&ex, N, x, 0, net.feat, 0, 0), (size_t)N * F * sizeof(float));
	exec_init(&fresh, &net, backend_cpu());
	const float *c = exec_forward(&fresh, N, x, 0, net.feat, 0, 0);
	check_msg(!memcmp(b, c, (size_t)N * F * sizeof(float)),
	   "after exec_params_changed: the same bytes as a fresh execution state");
	check_msg(memcmp(a, b, (size_t)N * F * sizeof(float)) != 0, "and not the old output");
	exec_free(&fresh);
	exec_free(&ex);
	model_free(&net);
	free(x);
	free(a);
	free(b);
}

// model_adopt_params: the source record becomes the parameters (reordered,
// f64 narrowed in place, num_batches_tracked dropped); a bad source is
// refused with its first fault named and left as it was.
static void test_adopt(void)
{
	Model m;
	char err[256];
	int rc = build(&m, "resnet18", HEAD_IMAGENET, 1000, 32, 0, err, sizeof err);
	check_msg(rc == 0, "build resnet18: %s", rc ? err : "");
	randomize(&m, 8);
	Record src;
	record_init(&src);
	for (int i = m.params.n - 1; i >= 0; i--) {   // reversed order
		const Tensor *t = &m.params.t[i];
		if (i == 0) {   // conv1.weight as f64
			double *d = record_add(&src, t->name, DT_F64, t->ndim, t->dims, NULL);
			for (int64_t k = 0; k < tensor_numel(t); k++)
				d[k] = ((const float *)t->data)[k];
		} else {
			record_add(&src, t->name, DT_F32, t->ndim, t->dims, t->data);
		}
		if (!strcmp(t->name + strlen(t->name) - 12, "running_mean")) {
			char nb[300];
			snprintf(nb, sizeof nb, "%.*s.num_batches_tracked",
			         (int)strlen(t->name) - 13, t->name);
			int64_t one = 7;
			record_add(&src, nb, DT_I64, 0, NULL, &one);
		}
	}
	Record want;
	record_init(&want);
	for (int i = 0; i < m.params.n; i++)
		record_add(&want, m.params.t[i].name, DT_F32, m.params.t[i].ndim,
		           m.params.t[i].dims, m.params.t[i].data);
	// a wrong shape first: refused, src untouched
	Tensor *fc = record_find(&src, "fc.bias");
	int64_t keep = fc->dims[0];
	fc->dims[0] = 999;
	rc = model_adopt_params(&m, &src, "src", err, sizeof err);
	check_msg(rc < 0 && strstr(err, "fc.bias has shape (999), expected (1000)"),
	   "adopt: wrong shape refused: %s", err);
	check_msg(src.n > 0 && src.buf, "adopt: a refused source stays as it was");
	fc->dims[0] = keep;
	unsigned char *buf = src.buf;
	rc = model_adopt_params(&m, &src, "src", err, sizeof err);
	check_msg(rc == 0, "adopt: %s", rc ? err : "ok");
	check_msg(m.params.buf == buf && src.n == 0 && !src.buf,
	   "adopt: the model took the source's memory (no copy)");
	int same = m.params.n == want.n;
	for (int i = 0; same && i < want.n; i++)
		same = !strcmp(m.params.t[i].name, want.t[i].name) &&
		       m.params.t[i].dtype == DT_F32 &&
		       !memcmp(m.params.t[i].data, want.t[i].data, want.t[i].nbytes);
	check_msg(same, "adopt: every tensor in the model's order, f32, values kept");
	record_free(&want);
	record_free(&src);
	model_free(&m);
}

static void test_freeze(void)
{
	Model net;
	Exec ex;
	char err[256];
	int rc = build(&net, "resnet18", HEAD_FASTAI, 2, 32, 1, err, sizeof err);
	check_msg(rc == 0, "build: %s", rc ? err : "");
	check_msg(net.ngroups == 3, "resnet18 has 3 layer groups (%d)", net.ngroups);
	int g0 = -1, g1 = -1, g2 = -1;
	for (int i = 0; i < net.n; i++) {
		if (!strcmp(net.nodes[i].name, "layer2.1.conv2")) g0 = net.nodes[i].group;
		if (!strcmp(net.nodes[i].name, "layer3.0.conv1")) g1 = net.nodes[i].group;
		if (!strcmp(net.nodes[i].name, "head.fc2")) g2 = net.nodes[i].group;
	}
	check_msg(g0 == 0 && g1 == 1 && g2 == 2, "groups: layer2 %d, layer3 %d, head %d", g0, g1, g2);
	randomize(&net, 9);
	exec_init(&ex, &net, backend_cpu());
	model_freeze_to(&net, 2);
	int N = 4, nx = N * 3 * 32 * 32;
	float *x = xmalloc(nx * sizeof(float));
	Rng r;
	rng_seed(&r, 2, 2);
	for (int i = 0; i < nx; i++)
		x[i] = rng_normal(&r);
	Tensor *rm = record_find(&net.params, "layer1.0.bn1.running_mean");
	Tensor *hrm = record_find(&net.params, "head.bn1.running_mean");
	float rm0 = ((float *)rm->data)[0], hrm0 = ((float *)hrm->data)[0];
	exec_zero_grad(&ex);
	exec_forward(&ex, N, x, 0, net.n - 1, 1, 1);
	check_msg(((float *)rm->data)[0] == rm0, "frozen body BN: running stats unchanged");
	check_msg(((float *)hrm->data)[0] != hrm0, "head BN (train): running stats updated");
	float dy[8] = { 1, -1, 0.5f, 0, -0.25f, 1, 2, -2 };
	exec_backward(&ex, dy, 0);
	double sb = 0, sh = 0;
	for (int i = 0; i < ex.grads.n; i++) {
		Tensor *t = &ex.grads.t[i];
		double s = 0;
		for (int64_t k = 0; k < tensor_numel(t); k++)
			s += fabs(((float *)t->data)[k]);
		if (!strncmp(t->name, "head.", 5))
			sh += s;
		else
			sb += s;
	}
	check_msg(sb == 0 && sh > 0, "frozen: body grads %g (want 0), head grads %g", sb, sh);
	model_freeze_to(&net, 0);
	exec_zero_grad(&ex);
	exec_forward(&ex, N, x, 0, net.n - 1, 1, 1);
	exec_backward(&ex, dy, 0);
	Tensor *gc = record_find(&ex.grads, "conv1.weight");
	double s = 0;
	for (int64_t k = 0; k < tensor_numel(gc); k++)
		s += fabs(((float *)gc->data)[k]);
	check_msg(s > 0, "unfrozen: conv1 gets a gradient");
	free(x);
	exec_free(&ex);
	model_free(&net);
}

static void test_head_init_and_file(void)
{
	Model a, b;
	char err[256];
	build(&a, "resnet18", HEAD_FASTAI, 2, 32, 42, err, sizeof err);
	build(&b, "resnet18", HEAD_FASTAI, 2, 32, 42, err, sizeof err);
	Tensor *w = record_find(&a.params, "head.fc1.weight");
	check_msg(w && w->dims[0] == 512 && w->dims[1] == 1024, "head.fc1 is (512, 1024)");
	double s = 0, s2 = 0;
	int64_t n = tensor_numel(w);
	for (int64_t i = 0; i < n; i++) {
		double v = ((float *)w->data)[i];
		s += v;
		s2 += v * v;
	}
	double sd = sqrt(s2 / n - (s / n) * (s / n)), want = sqrt(2.0 / 1024);
	check_msg(fabs(sd / want - 1) < 0.02, "Kaiming normal std %.5f, want %.5f", sd, want);
	check_msg(!memcmp(w->data, record_find(&b.params, "head.fc1.weight")->data, w->nbytes),
	   "same seed, same head");
	Tensor *bias = record_find(&a.params, "head.fc2.bias");
	check_msg(bias && ((float *)bias->data)[0] == 0 && ((float *)bias->data)[1] == 0, "biases 0");
	model_free(&b);
	build(&b, "resnet18", HEAD_FASTAI, 2, 32, 43, err, sizeof err);
	check_msg(memcmp(w->data, record_find(&b.params, "head.fc1.weight")->data, w->nbytes) != 0,
	   "another seed, another head");
	model_free(&b);
	randomize(&a, 3);
	a.classes = xstrdup("cats,dogs");
	char path[] = "/tmp/test_net_model_XXXXXX";
	int fd = mkstemp(path);
	close(fd);
	model_save(&a, path);
	model_load(&b, path);
	unlink(path);
	check_msg(b.params.n == a.params.n, "round trip: %d tensors", b.params.n);
	int same = b.params.n == a.params.n;
	for (int i = 0; same && i < a.params.n; i++)
		same = !strcmp(a.params.t[i].name, b.params.t[i].name) &&
		       !memcmp(a.params.t[i].data, b.params.t[i].data, a.params.t[i].nbytes);
	check_msg(same, "round trip: every tensor identical");
	check_msg(b.classes && !strcmp(b.classes, "cats,dogs"), "round trip: classes");
	check_msg(fabs(b.mean[0] - 0.485f) < 1e-7 && fabs(b.std[2] - 0.225f) < 1e-7,
	   "round trip: ImageNet normalisation");
	model_free(&a);
	model_free(&b);
}

static Tensor *need(const Record *r, const char *name)
{
	Tensor *t = record_find(r, name);
	if (!t) {
		fprintf(stderr, "golden: no tensor %s\n", name);
		exit(1);
	}
	return t;
}

static void golden(const char *path)
{
	Stream *s = stream_open_read(path);
	if (!s) {
		fprintf(stderr, "%s\n", stream_last_error());
		exit(1);
	}
	Record sd, g;
	record_init(&sd);
	record_init(&g);
	if (stream_read_record(s, &sd) != 1 || stream_read_record(s, &g) != 1) {
		fprintf(stderr, "%s: %s\n", path, stream_error(s));
		exit(1);
	}
	int size = atoi(stream_meta_get(s, "size"));
	Model net;
	Exec ex;
	char err[512];
	if (build(&net, "resnet18", HEAD_IMAGENET, 1000, size, 0, err, sizeof err) < 0 ||
	    model_load_tensors(&net, &sd, 0, 1, path, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	exec_init(&ex, &net, backend_cpu());
	Tensor *x = need(&g, "x"), *gy = need(&g, "g");
	int N = (int)x->dims[0];
	int logits = net.n - 2;   // before the log-softmax
	double ad;
	float *y = exec_forward(&ex, N, x->data, 0, logits, 0, 0);
	double e = check_rel_diff(y, need(&g, "eval_logits")->data, (size_t)N * 1000, &ad);
	printf("resnet18 %dx3x%dx%d eval logits: max abs diff %.3g\n", N, size, size, ad);
	check_msg(e < 1e-4, "eval logits: scaled diff %.3g", e);
	exec_zero_grad(&ex);
	y = exec_forward(&ex, N, x->data, 0, logits, 1, 1);
	e = check_rel_diff(y, need(&g, "train_logits")->data, (size_t)N * 1000, &ad);
	printf("resnet18 train logits: max abs diff %.3g\n", ad);
	check_msg(e < 1e-4, "train logits: scaled diff %.3g", e);
	float *dx = exec_backward(&ex, gy->data, 1);
	e = check_rel_diff(dx, need(&g, "dx")->data, tensor_numel(x), &ad);
	printf("resnet18 input gradient: max abs diff %.3g (scaled %.3g)\n", ad, e);
	check_msg(e < 1e-3, "dx: scaled diff %.3g", e);
	double worst = 0;
	const char *wn = "";
	int ng = 0;
	for (int i = 0; i < g.n; i++) {
		const Tensor *t = &g.t[i];
		const char *pre = !strncmp(t->name, "grad.", 5) ? "grad."
		                : !strncmp(t->name, "after.", 6) ? "after." : NULL;
		if (!pre)
			continue;
		const Record *src = pre[0] == 'g' ? &ex.grads : &net.params;
		Tensor *mine = record_find(src, t->name + strlen(pre));
		if (!mine || mine->nbytes != t->nbytes) {
			check_msg(0, "golden %s: no matching tensor", t->name);
			continue;
		}
		e = check_rel_diff(mine->data, t->data, (size_t)tensor_numel(t), NULL);
		ng++;
		if (e > worst) {
			worst = e;
			wn = t->name;
		}
	}
	printf("resnet18 %d parameter gradients and running stats: worst scaled diff %.3g (%s)\n",
	       ng, worst, wn);
	check_msg(ng > 100 && worst < 1e-3, "param grads/running stats: worst %.3g (%s)", worst, wn);
	record_free(&sd);
	record_free(&g);
	stream_close(s);
	exec_free(&ex);
	model_free(&net);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--golden")) {
		golden(argv[2]);
	} else {
		test_gradients(0);
		test_gradients(1);
		test_buffer_reuse();
		test_fused_inference();
		test_fused_training();
		test_cached_work();
		test_adopt();
		test_freeze();
		test_head_init_and_file();
	}
	return check_done("test_net");
}
