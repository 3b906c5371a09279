// Tests of the training engine (libcommon/engine: schedule, optim, trainer).
//
// Without arguments: the schedules against tests/fixtures/schedules.tsv
// (made by tests/gen_schedule_fixture.py from fast.ai's formulas), the
// epoch counts, the smoothed loss.  With --golden FILE (made at test time by
// tests/gen_golden_train.py; tests/train.bats runs it when torch is present):
// ten SGD steps of the fast.ai head on activations, or of an unfrozen
// ResNet18 with three learning-rate groups, against PyTorch.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "formats/stream.h"
#include "libcommon/engine/backbone.h"
#include "libcommon/engine/fit.h"
#include "kernels/cpu/ops.h"
#include "libcommon/util/alloc.h"



// fixture rows: "fit|lrfind|lrfind_linear <tab> iteration <tab> factor"
static void test_schedules(const char *path)
{
	FILE *f = fopen(path, "r");
	check_msg(f != NULL, "open %s", path);
	if (!f)
		return;
	char kind[32], cur[32] = "";
	long it;
	double want;
	Schedule s;
	int rows = 0, bad = 0;
	double worst = 0;
	while (fscanf(f, "%31s %ld %lf", kind, &it, &want) == 3) {
		if (strcmp(kind, cur)) {
			snprintf(cur, sizeof cur, "%s", kind);
			// 2000 images at bs 64: 32 batches an epoch
			if (!strcmp(kind, "fit"))
				sched_fit(&s, 32, 1, 2);
			else if (!strcmp(kind, "fit_const"))
				sched_fit(&s, 32, 0, 1);
			else
				sched_lrfind(&s, 32, 1e-5, 10, !strcmp(kind, "lrfind_linear"));
		}
		double got = sched_next(&s);
		double e = fabs(got - want) / (fabs(want) > 1e-300 ? fabs(want) : 1);
		if (e > worst)
			worst = e;
		bad += e > 1e-12 || s.iteration != it + 1;
		rows++;
	}
	fclose(f);
	check_msg(rows == 7 * 32 + 3 * 32 && bad == 0,
	      "schedules: %d rows, %d off (worst relative %.3g)", rows, bad, worst);
	check_msg(fit_epochs(3, 1, 2) == 7 && fit_epochs(3, 1, 1) == 3 &&
	      fit_epochs(1, 0, 1) == 1 && fit_epochs(2, 2, 2) == 6 &&
	      fit_epochs(3, 2, 1.5) == 10, "fit epochs: (3,1,2) %lld, (2,2,2) %lld, (3,2,1.5) %lld",
	      (long long)fit_epochs(3, 1, 2), (long long)fit_epochs(2, 2, 2),
	      (long long)fit_epochs(3, 2, 1.5));
	// SGDR restarts after 32, 96 and 224 batches
	sched_fit(&s, 32, 1, 2);
	int ends[3], ne = 0;
	for (int i = 1; i <= 224; i++) {
		sched_next(&s);
		if (sched_cycle_ended(&s) && ne < 3)
			ends[ne++] = i;
	}
	check_msg(ne == 3 && ends[0] == 32 && ends[1] == 96 && ends[2] == 224,
	      "cycle ends at %d, %d, %d", ends[0], ends[1], ends[2]);
	SmoothLoss sl = { 0, 0 };
	double a = smooth_loss_add(&sl, 2.0), b = smooth_loss_add(&sl, 1.0);
	double wb = (0.98 * 0.02 * 2 + 0.02 * 1) / (1 - 0.98 * 0.98);
	check_msg(fabs(a - 2.0) < 1e-12 && fabs(b - wb) < 1e-12,
	      "smoothed loss: debiased %.15g %.15g (want 2, %.15g)", a, b, wb);
}

// The fast.ai head over F features for the golden's head case: a stand-in
// body of one 1x1 convolution (never run) whose concat pool gives F.
static void build_head_only(Model *m, int F, int K)
{
	model_init(m);
	snprintf(m->arch, sizeof m->arch, "test");
	m->in_c = 3;
	m->in_size = 1;
	m->ngroups = 1;
	int x = graph_conv(m, "body", -1, F / 2, 1, 1, 0, 0);
	m->body_end = m->n;
	m->ngroups = 3;
	model_add_fastai_head(m, x, K, 0, 0);   // dropout off, as in the golden
	m->num_classes = K;
	m->head = HEAD_FASTAI;
	model_finish(m);
	model_freeze_to(m, 2);
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

// direct: convolutions by direct products (ops_set_winograd(0)), closest
// to PyTorch's numerics; otherwise Winograd, whose few 1e-6 of max|y| grow
// about threefold per step of this test, so its bound is wider.
static void golden(const char *path, int direct)
{
	Stream *s = stream_open_read(path);
	if (!s) {
		fprintf(stderr, "%s\n", stream_last_error());
		exit(1);
	}
	Record init, g, after;
	record_init(&init);
	record_init(&g);
	record_init(&after);
	if (stream_read_record(s, &init) != 1 || stream_read_record(s, &g) != 1 ||
	    stream_read_record(s, &after) != 1) {
		fprintf(stderr, "%s: %s\n", path, stream_error(s));
		exit(1);
	}
	const char *what = stream_meta_get(s, "what");
	int head = !strcmp(what, "head");
	int darknet = !strcmp(what, "darknet") || !strcmp(what, "tinydarknet");
	const char *size = stream_meta_get(s, "size");   // 32 unless said
	int steps = atoi(stream_meta_get(s, "steps")), bs = atoi(stream_meta_get(s, "bs"));
	int F = atoi(stream_meta_get(s, "features")), K = atoi(stream_meta_get(s, "classes"));
	float mom = strtof(stream_meta_get(s, "momentum"), NULL);
	float wd = strtof(stream_meta_get(s, "wd"), NULL);
	Model m;
	char err[512];
	if (head) {
		build_head_only(&m, F, K);
	} else {
		const char *cfg = darknet ? stream_meta_get(s, "darknet_cfg") : NULL;
		ModelSpec spec = { .arch = darknet ? "darknet" : "resnet18", .head = HEAD_FASTAI,
		                   .num_classes = K, .in_size = size ? atoi(size) : 32, .cfg_text = cfg,
		                   .cfg_len = cfg ? strlen(cfg) : 0 };
		if (model_build(&m, &spec, err, sizeof err) < 0) {
			fprintf(stderr, "%s\n", err);
			exit(1);
		}
		for (int i = 0; i < m.n; i++)   // dropout off, as in the golden
			if (m.nodes[i].op == OP_DROPOUT)
				m.nodes[i].p = 0;
		model_freeze_to(&m, 0);
	}
	if (model_load_tensors(&m, &init, 0, head ? 0 : 1, path, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	ops_set_winograd(!direct);
	double tol_loss = head || direct ? 1e-4 : 1e-2, tol_w = head || direct ? 1e-4 : 2e-3;
	Trainer t;
	// TEST_FIT_CAP: a trainer made for larger batches than it is given,
	// as for an epoch's partial last batch
	int cap = getenv("TEST_FIT_CAP") ? atoi(getenv("TEST_FIT_CAP")) : bs;
	trainer_init(&t, &m, backend_cpu(), head ? TRAIN_HEAD : TRAIN_ALL, cap > bs ? cap : bs,
	             mom, wd, 1);
	Tensor *x = need(&g, "x"), *y = need(&g, "y"), *order = need(&g, "order");
	const double *lr = need(&g, "lr")->data, *loss = need(&g, "loss")->data;
	size_t per = (size_t)tensor_numel(x) / (size_t)x->dims[0];
	float *xb = xmalloc_array((size_t)bs * per, sizeof(float));
	int32_t *yb = xmalloc_array((size_t)bs, sizeof(int32_t));
	double worst_loss = 0;
	for (int st = 0; st < steps; st++) {
		for (int i = 0; i < bs; i++) {
			int k = ((const int32_t *)order->data)[st * bs + i];
			memcpy(xb + (size_t)i * per, (const float *)x->data + (size_t)k * per,
			       per * sizeof(float));
			yb[i] = ((const int32_t *)y->data)[k];
		}
		double l = trainer_step(&t, bs, xb, yb, lr + 3 * st);
		double e = fabs(l - loss[st]) / fabs(loss[st]);
		if (getenv("TEST_FIT_VERBOSE"))
			printf("step %d: loss %.9g, PyTorch %.9g\n", st, l, loss[st]);
		if (e > worst_loss)
			worst_loss = e;
	}
	printf("%s%s: %d steps: losses within %.3g relative of PyTorch's\n",
	       head ? "head" : darknet ? "darknet" : "resnet18",
	       head ? "" : direct ? " (direct conv)" : " (Winograd)",
	       steps, worst_loss);
	check_msg(worst_loss < tol_loss, "losses: worst relative %.3g", worst_loss);
	exec_params_to_host(&t.e);
	double worst = 0;
	const char *wn = "";
	int n = 0;
	for (int i = 0; i < after.n; i++) {
		const Tensor *w = &after.t[i];
		Tensor *mine = record_find(&m.params, w->name);
		check_msg(mine && mine->nbytes == w->nbytes, "golden %s: no matching tensor", w->name);
		if (!mine || mine->nbytes != w->nbytes)
			continue;
		double e = check_rel_diff(mine->data, w->data, (size_t)tensor_numel(w), NULL);
		n++;
		if (e > worst) {
			worst = e;
			wn = w->name;
		}
	}
	printf("%s: %d tensors after the steps: worst scaled diff %.3g (%s)\n",
	       head ? "head" : darknet ? "darknet" : "resnet18", n, worst, wn);
	check_msg(n == after.n && worst < tol_w, "weights after %d steps: worst %.3g (%s)",
	      steps, worst, wn);
	free(xb);
	free(yb);
	trainer_free(&t);
	model_free(&m);
	record_free(&init);
	record_free(&g);
	record_free(&after);
	stream_close(s);
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "--golden"))
		golden(argv[2], argc == 4 && !strcmp(argv[3], "--direct"));
	else
		test_schedules(argc == 2 ? argv[1] : "tests/fixtures/schedules.tsv");
	return check_done("test_fit");
}
