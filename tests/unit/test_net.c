// Tests of the model graph (libcommon/net.c, backbone.c, model_file.c).
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
#include "libcommon/util/alloc.h"
#include "libcommon/engine/backbone.h"
#include "libcommon/engine/model_file.h"
#include "libcommon/engine/net.h"
#include "kernels/cpu/ops.h"
#include "libcommon/util/rng.h"
#include "formats/stream.h"

static int passed, failed;

static void ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ok(int cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (cond) {
		passed++;
	} else {
		failed++;
		fprintf(stderr, "FAIL: ");
		vfprintf(stderr, fmt, ap);
		fprintf(stderr, "\n");
	}
	va_end(ap);
}

// max |a - b| / max(1, max |b|)
static double rel_diff(const float *a, const float *b, size_t n, double *absd)
{
	double m = 0, s = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - b[i]);
		if (d > m || isnan(d))
			m = isnan(d) ? INFINITY : d;
		if (fabs(b[i]) > s)
			s = fabs(b[i]);
	}
	if (absd)
		*absd = m;
	return m / (s > 1 ? s : 1);
}

static void randomize(Net *net, uint64_t seed)
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
static void build_small(Net *net)
{
	net_init(net);
	snprintf(net->arch, sizeof net->arch, "test");
	net->in_c = 3;
	net->in_size = 8;
	net->ngroups = 1;
	int x = net_conv(net, "c1", -1, 4, 3, 1, 1, 0);
	x = net_bn(net, "b1", x, 1e-5f);
	x = net_relu(net, "r1", x);
	x = net_maxpool(net, "mp", x, 2, 2, 0, 0, 0);
	net->ngroups = 2;
	int y = net_conv(net, "c2", x, 4, 3, 1, 1, 1);
	y = net_leaky(net, "l2", y, 0.1f);
	y = net_bn(net, "b2", y, 1e-5f);
	x = net_add2(net, "add", y, x);
	x = net_relu(net, "r2", x);
	// darknet's downsampling shortcut: (4, 4, 4) added onto a (6, 2, 2) map
	int z = net_conv(net, "c3", x, 6, 3, 2, 1, 1);
	x = net_shortcut(net, "sc", z, x);
	net->body_end = net->n;
	net->ngroups = 3;
	x = net_concatpool(net, "head.pool", x);
	net->feat = x;
	x = net_flatten(net, "head.flat", x);
	x = net_bn1d(net, "head.bn", x, 1e-5f);
	x = net_dropout(net, "head.drop", x, 0.5f);
	x = net_linear(net, "head.fc", x, 3);
	net_logsoftmax(net, "head.ls", x);
	net->num_classes = 3;
	net_finish(net);
}

// loss = sum(out * g) for a fixed g; dropout mask fixed by reseeding.
static double small_loss(Net *net, int N, const float *x, const float *g,
                         int train)
{
	rng_seed(&net->rng, 5, 5);
	float *y = net_forward(net, N, x, 0, net->n - 1, train, 1);
	double s = 0;
	for (int i = 0; i < N * 3; i++)
		s += (double)y[i] * g[i];
	return s;
}

static void test_gradients(int train)
{
	Net net;
	build_small(&net);
	randomize(&net, 11);
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
#define RESTORE() for (int i_ = 0; i_ < net.params.n; i_++) \
		memcpy(net.params.t[i_].data, saved.t[i_].data, saved.t[i_].nbytes)
	net_zero_grad(&net);
	small_loss(&net, N, x, g, train);
	float *dx = net_backward(&net, g, 1);
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
		double lp = small_loss(&net, N, x, g, train);
		RESTORE();
		x[i] = keep - (float)h;
		double lm = small_loss(&net, N, x, g, train);
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
	ok(nbad * 10 <= nchk, "%s: dx vs central differences: %d of %d off by > 1e-2 (worst %.3g)",
	   train ? "train" : "eval", nbad, nchk, worst);
	nchk = nbad = 0;
	// parameter gradients: every learnable tensor, a few entries each
	worst = 0;
	const char *worst_name = "";
	for (int t = 0; t < net.grads.n; t++) {
		Tensor *gt = &net.grads.t[t];
		Tensor *pt = record_find(&net.params, gt->name);
		float *p = pt->data, *gg = gt->data;
		int64_t n = tensor_numel(gt);
		for (int64_t i = 0; i < n; i += (n > 16 ? n / 9 : 1)) {
			int si = (int)(pt - net.params.t);
			float keep = ((float *)saved.t[si].data)[i];
			p[i] = keep + (float)h;
			((float *)saved.t[si].data)[i] = p[i];
			double lp = small_loss(&net, N, x, g, train);
			RESTORE();
			p[i] = keep - (float)h;
			((float *)saved.t[si].data)[i] = p[i];
			double lm = small_loss(&net, N, x, g, train);
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
	ok(nbad * 10 <= nchk && nchk > 40,
	   "%s: parameter gradients vs central differences: %d of %d off by > 1e-2 (worst %.3g, %s)",
	   train ? "train" : "eval", nbad, nchk, worst, worst_name);
	free(x);
	free(dxc);
	record_free(&saved);
	net_free(&net);
}

// Inference with shared buffers must give exactly what keeping every
// activation gives; a second call with another batch size too.
static void test_buffer_reuse(void)
{
	Net net;
	char err[256];
	int rc = net_build(&net, "resnet18", HEAD_FASTAI, 2, 32, NULL, 0, 1, err, sizeof err);
	ok(rc == 0, "build resnet18: %s", rc ? err : "");
	randomize(&net, 5);
	int N = 3, nx = N * 3 * 32 * 32;
	float *x = xmalloc(nx * sizeof(float));
	Rng r;
	rng_seed(&r, 1, 1);
	for (int i = 0; i < nx; i++)
		x[i] = rng_normal(&r);
	float a[6], b[6];
	memcpy(a, net_forward(&net, N, x, 0, net.n - 1, 0, 1), sizeof a);
	memcpy(b, net_forward(&net, N, x, 0, net.n - 1, 0, 0), sizeof b);
	// (inference also folds batch norms into convolutions: rounding only)
	ok(rel_diff(b, a, 6, NULL) < 1e-5, "inference with reused buffers = with kept activations");
	size_t kept = net.arena_len;
	// body + pool then head from the features: the same
	int C2 = net.nodes[net.feat].C;
	float *f = xmalloc((size_t)N * C2 * sizeof(float));
	memcpy(f, net_forward(&net, N, x, 0, net.feat, 0, 0), (size_t)N * C2 * sizeof(float));
	memcpy(b, net_forward(&net, N, f, net.feat + 1, net.n - 1, 0, 0), sizeof b);
	ok(rel_diff(b, a, 6, NULL) < 1e-5, "body+pool then head = whole net");
	ok(kept > 0, "arena used");
	net_free(&net);
	free(x);
	free(f);
}

// A darknet-like body: conv+bn+leaky, maxpool, conv with bias + leaky,
// conv+bn+relu, a shortcut add + leaky (darknet's: not fusable, the
// activation sits between conv and add), conv+bn (no activation), then a
// residual add of a conv with bias, and a global average pool.
static void build_darkish(Net *net)
{
	net_init(net);
	snprintf(net->arch, sizeof net->arch, "test");
	net->in_c = 3;
	net->in_size = 20;
	net->ngroups = 1;
	int x = net_conv(net, "l0.conv", -1, 16, 3, 1, 1, 0);
	x = net_bn(net, "l0.bn", x, 1e-5f);
	x = net_leaky(net, "l0.act", x, 0.1f);
	x = net_maxpool(net, "l1.mp", x, 2, 2, 0, 0, 0);
	int a = net_conv(net, "l2.conv", x, 16, 3, 1, 1, 1);
	a = net_leaky(net, "l2.act", a, 0.1f);
	int b = net_conv(net, "l3.conv", a, 16, 1, 1, 0, 0);
	b = net_bn(net, "l3.bn", b, 1e-5f);
	b = net_relu(net, "l3.act", b);
	x = net_add2(net, "l4.shortcut", b, x);
	x = net_leaky(net, "l4.act", x, 0.1f);
	int c = net_conv(net, "l5.conv", x, 32, 3, 2, 1, 0);
	c = net_bn(net, "l5.bn", c, 1e-5f);
	int d = net_conv(net, "l6.conv", x, 32, 1, 2, 0, 1);
	x = net_add2(net, "l7.add", d, c);
	x = net_gap(net, "l8.gap", x);
	net->body_end = net->n;
	net_finish(net);
}

static int fused_nodes(const Net *net, int first, int last)
{
	int n = 0;
	for (int i = first; i <= last; i++)
		n += net->nodes[i].y == NULL;
	return n;
}

// Inference runs conv [-> bn] [-> add] [-> relu/leaky] as one fused
// convolution; it must give what the unfused forward with every activation
// kept gives, on the whole body and on a range whose residual is the
// range's input.
static void fused_case(Net *net, const char *what, int first, int last,
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
	memcpy(a, net_forward(net, N, x, first, last, 0, 1), ny * sizeof(float));
	ok(fused_nodes(net, first, last) == 0, "%s: keep: no node fused", what);
	const float *b = net_forward(net, N, x, first, last, 0, 0);
	int nf = fused_nodes(net, first, last);
	ok(nf == expect_fused, "%s: %d nodes fused away, expected %d", what, nf,
	   expect_fused);
	double ad, rd = rel_diff(b, a, ny, &ad);
	ok(rd < 1e-5, "%s: fused inference = unfused with kept activations (rel %.3g, abs %.3g)",
	   what, rd, ad);
	free(x);
	free(a);
}

static void test_fused_inference(void)
{
	Net net;
	char err[256];
	int rc = net_build(&net, "resnet18", HEAD_NONE, 0, 32, NULL, 0, 1, err, sizeof err);
	ok(rc == 0, "build resnet18: %s", rc ? err : "");
	randomize(&net, 9);
	// stem conv+bn+relu: 2; per block conv1+bn1+relu1: 2, conv2+bn2+add+relu:
	// 3, downsample conv+bn (layers 2-4): 1
	fused_case(&net, "resnet18 body", 0, net.body_end - 1, 2, 2 + 8 * 5 + 3);
	int b = -1;   // layer1.1: an identity block, its residual is the input
	for (int i = 0; i < net.n && b < 0; i++)
		if (!strcmp(net.nodes[i].name, "layer1.1.conv1"))
			b = i;
	ok(b > 0, "layer1.1.conv1 found");
	if (b > 0)
		fused_case(&net, "resnet18 from layer1.1", b, net.body_end - 1, 2, 7 * 5 + 3);
	net_free(&net);
	rc = net_build(&net, "resnet50", HEAD_NONE, 0, 32, NULL, 0, 1, err, sizeof err);
	ok(rc == 0, "build resnet50: %s", rc ? err : "");
	randomize(&net, 10);
	// bottleneck: 2 + 2 + 3, downsample 1 in all four layers
	fused_case(&net, "resnet50 body", 0, net.body_end - 1, 1, 2 + 16 * 7 + 4);
	net_free(&net);
	build_darkish(&net);
	randomize(&net, 11);
	// l0: 2, l2: 1, l3: 2, l5: conv+bn with the add (res = l6.conv): 2
	fused_case(&net, "darknet-like", 0, net.body_end - 1, 3, 7);
	net_free(&net);
}

static void test_freeze(void)
{
	Net net;
	char err[256];
	int rc = net_build(&net, "resnet18", HEAD_FASTAI, 2, 32, NULL, 0, 1, err, sizeof err);
	ok(rc == 0, "build: %s", rc ? err : "");
	ok(net.ngroups == 3, "resnet18 has 3 layer groups (%d)", net.ngroups);
	int g0 = -1, g1 = -1, g2 = -1;
	for (int i = 0; i < net.n; i++) {
		if (!strcmp(net.nodes[i].name, "layer2.1.conv2")) g0 = net.nodes[i].group;
		if (!strcmp(net.nodes[i].name, "layer3.0.conv1")) g1 = net.nodes[i].group;
		if (!strcmp(net.nodes[i].name, "head.fc2")) g2 = net.nodes[i].group;
	}
	ok(g0 == 0 && g1 == 1 && g2 == 2, "groups: layer2 %d, layer3 %d, head %d", g0, g1, g2);
	randomize(&net, 9);
	net_freeze_to(&net, 2);
	int N = 4, nx = N * 3 * 32 * 32;
	float *x = xmalloc(nx * sizeof(float));
	Rng r;
	rng_seed(&r, 2, 2);
	for (int i = 0; i < nx; i++)
		x[i] = rng_normal(&r);
	Tensor *rm = record_find(&net.params, "layer1.0.bn1.running_mean");
	Tensor *hrm = record_find(&net.params, "head.bn1.running_mean");
	float rm0 = ((float *)rm->data)[0], hrm0 = ((float *)hrm->data)[0];
	net_zero_grad(&net);
	net_forward(&net, N, x, 0, net.n - 1, 1, 1);
	ok(((float *)rm->data)[0] == rm0, "frozen body BN: running stats unchanged");
	ok(((float *)hrm->data)[0] != hrm0, "head BN (train): running stats updated");
	float dy[8] = { 1, -1, 0.5f, 0, -0.25f, 1, 2, -2 };
	net_backward(&net, dy, 0);
	double sb = 0, sh = 0;
	for (int i = 0; i < net.grads.n; i++) {
		Tensor *t = &net.grads.t[i];
		double s = 0;
		for (int64_t k = 0; k < tensor_numel(t); k++)
			s += fabs(((float *)t->data)[k]);
		if (!strncmp(t->name, "head.", 5))
			sh += s;
		else
			sb += s;
	}
	ok(sb == 0 && sh > 0, "frozen: body grads %g (want 0), head grads %g", sb, sh);
	net_freeze_to(&net, 0);
	net_zero_grad(&net);
	net_forward(&net, N, x, 0, net.n - 1, 1, 1);
	net_backward(&net, dy, 0);
	Tensor *gc = record_find(&net.grads, "conv1.weight");
	double s = 0;
	for (int64_t k = 0; k < tensor_numel(gc); k++)
		s += fabs(((float *)gc->data)[k]);
	ok(s > 0, "unfrozen: conv1 gets a gradient");
	free(x);
	net_free(&net);
}

static void test_head_init_and_file(void)
{
	Net a, b;
	char err[256];
	net_build(&a, "resnet18", HEAD_FASTAI, 2, 32, NULL, 0, 42, err, sizeof err);
	net_build(&b, "resnet18", HEAD_FASTAI, 2, 32, NULL, 0, 42, err, sizeof err);
	Tensor *w = record_find(&a.params, "head.fc1.weight");
	ok(w && w->dims[0] == 512 && w->dims[1] == 1024, "head.fc1 is (512, 1024)");
	double s = 0, s2 = 0;
	int64_t n = tensor_numel(w);
	for (int64_t i = 0; i < n; i++) {
		double v = ((float *)w->data)[i];
		s += v;
		s2 += v * v;
	}
	double sd = sqrt(s2 / n - (s / n) * (s / n)), want = sqrt(2.0 / 1024);
	ok(fabs(sd / want - 1) < 0.02, "Kaiming normal std %.5f, want %.5f", sd, want);
	ok(!memcmp(w->data, record_find(&b.params, "head.fc1.weight")->data, w->nbytes),
	   "same seed, same head");
	Tensor *bias = record_find(&a.params, "head.fc2.bias");
	ok(bias && ((float *)bias->data)[0] == 0 && ((float *)bias->data)[1] == 0, "biases 0");
	net_free(&b);
	net_build(&b, "resnet18", HEAD_FASTAI, 2, 32, NULL, 0, 43, err, sizeof err);
	ok(memcmp(w->data, record_find(&b.params, "head.fc1.weight")->data, w->nbytes) != 0,
	   "another seed, another head");
	net_free(&b);
	randomize(&a, 3);
	a.classes = xstrdup("cats,dogs");
	char path[] = "/tmp/test_net_model_XXXXXX";
	int fd = mkstemp(path);
	close(fd);
	model_save(&a, path);
	model_load(&b, path);
	unlink(path);
	ok(b.params.n == a.params.n, "round trip: %d tensors", b.params.n);
	int same = b.params.n == a.params.n;
	for (int i = 0; same && i < a.params.n; i++)
		same = !strcmp(a.params.t[i].name, b.params.t[i].name) &&
		       !memcmp(a.params.t[i].data, b.params.t[i].data, a.params.t[i].nbytes);
	ok(same, "round trip: every tensor identical");
	ok(b.classes && !strcmp(b.classes, "cats,dogs"), "round trip: classes");
	ok(fabs(b.mean[0] - 0.485f) < 1e-7 && fabs(b.std[2] - 0.225f) < 1e-7,
	   "round trip: ImageNet normalisation");
	net_free(&a);
	net_free(&b);
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
	Net net;
	char err[512];
	if (net_build(&net, "resnet18", HEAD_IMAGENET, 1000, size, NULL, 0, 0, err, sizeof err) < 0 ||
	    net_load_tensors(&net, &sd, 0, 1, path, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	Tensor *x = need(&g, "x"), *gy = need(&g, "g");
	int N = (int)x->dims[0];
	int logits = net.n - 2;   // before the log-softmax
	double ad;
	float *y = net_forward(&net, N, x->data, 0, logits, 0, 0);
	double e = rel_diff(y, need(&g, "eval_logits")->data, (size_t)N * 1000, &ad);
	printf("resnet18 %dx3x%dx%d eval logits: max abs diff %.3g\n", N, size, size, ad);
	ok(e < 1e-4, "eval logits: scaled diff %.3g", e);
	net_zero_grad(&net);
	y = net_forward(&net, N, x->data, 0, logits, 1, 1);
	e = rel_diff(y, need(&g, "train_logits")->data, (size_t)N * 1000, &ad);
	printf("resnet18 train logits: max abs diff %.3g\n", ad);
	ok(e < 1e-4, "train logits: scaled diff %.3g", e);
	float *dx = net_backward(&net, gy->data, 1);
	e = rel_diff(dx, need(&g, "dx")->data, tensor_numel(x), &ad);
	printf("resnet18 input gradient: max abs diff %.3g (scaled %.3g)\n", ad, e);
	ok(e < 1e-3, "dx: scaled diff %.3g", e);
	double worst = 0;
	const char *wn = "";
	int ng = 0;
	for (int i = 0; i < g.n; i++) {
		const Tensor *t = &g.t[i];
		const char *pre = !strncmp(t->name, "grad.", 5) ? "grad."
		                : !strncmp(t->name, "after.", 6) ? "after." : NULL;
		if (!pre)
			continue;
		const Record *src = pre[0] == 'g' ? &net.grads : &net.params;
		Tensor *mine = record_find(src, t->name + strlen(pre));
		if (!mine || mine->nbytes != t->nbytes) {
			ok(0, "golden %s: no matching tensor", t->name);
			continue;
		}
		e = rel_diff(mine->data, t->data, (size_t)tensor_numel(t), NULL);
		ng++;
		if (e > worst) {
			worst = e;
			wn = t->name;
		}
	}
	printf("resnet18 %d parameter gradients and running stats: worst scaled diff %.3g (%s)\n",
	       ng, worst, wn);
	ok(ng > 100 && worst < 1e-3, "param grads/running stats: worst %.3g (%s)", worst, wn);
	record_free(&sd);
	record_free(&g);
	stream_close(s);
	net_free(&net);
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
		test_freeze();
		test_head_init_and_file();
	}
	printf("test_net: %d passed, %d failed\n", passed, failed);
	return failed != 0;
}
