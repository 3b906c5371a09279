// The metrics of confusion(1) (libcommon/engine/metrics.h): argmax, the
// confusion matrix, accuracy, NLL, precision and recall, the lesson's lists
// (random, most correct / incorrect, most uncertain) and their ties, and the
// predictions reader, on hand-made predictions with hand-computed answers.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "formats/stream.h"
#include "libcommon/engine/metrics.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/util/rng.h"
#include "check.h"

// The 10 predictions of tests/confusion.bats: p(cats), label (0 cats, 1 dogs).
enum { N = 10 };
static const float P_CAT[N] = { 0.9f, 0.6f, 0.3f, 0.95f, 0.45f, 0.2f, 0.01f, 0.7f, 0.48f, 0.4f };
static const int32_t LABEL[N] = { 0, 0, 0, 0, 0, 1, 1, 1, 1, 1 };
static float logp[N * 2];

static int same_list(const int64_t *got, int64_t n, const int64_t *want, int64_t m)
{
	if (n != m)
		return 0;
	for (int64_t i = 0; i < n; i++)
		if (got[i] != want[i])
			return 0;
	return 1;
}

static void test_two_classes(void)
{
	for (int n = 0; n < N; n++) {
		logp[2 * n] = logf(P_CAT[n]);
		logp[2 * n + 1] = logf(1.0f - P_CAT[n]);
	}
	int32_t pred[N];
	metrics_predict(N, 2, logp, pred);
	const int32_t want_pred[N] = { 0, 0, 1, 0, 1, 1, 1, 0, 1, 1 };
	CHECK(memcmp(pred, want_pred, sizeof pred) == 0);
	int64_t cm[4];
	metrics_confusion(N, 2, LABEL, pred, cm);
	// cats: a b d right, c e as dogs; dogs: h as a cat, f g i j right
	CHECK(cm[0] == 3 && cm[1] == 2 && cm[2] == 1 && cm[3] == 4);
	CHECK(metrics_correct(2, cm) == 7);
	// -(ln .9 + ln .6 + ln .3 + ln .95 + ln .45 + ln .8 + ln .99 + ln .3
	//   + ln .52 + ln .6) / 10 = 5.271880 / 10
	double nll = metrics_nll(N, 2, logp, LABEL);
	check_msg(fabs(nll - 0.527188) < 1e-6, "nll %.7f, want 0.527188", nll);
	CHECK(isnan(metrics_nll(0, 2, logp, LABEL)));
	double prec[2], rec[2];
	metrics_precision_recall(2, cm, prec, rec);
	CHECK(prec[0] == 3.0 / 4 && prec[1] == 4.0 / 6 && rec[0] == 3.0 / 5 && rec[1] == 4.0 / 5);

	int64_t out[N];
	// the most correct cats: d .95, a .9, b .6; dogs: g .99, f .8, j .6, i .52
	int64_t len = metrics_most_by_correct(N, 2, logp, LABEL, pred, 0, 1, 4, out);
	CHECK(same_list(out, len, (const int64_t[]){ 3, 0, 1 }, 3));
	len = metrics_most_by_correct(N, 2, logp, LABEL, pred, 1, 1, 4, out);
	CHECK(same_list(out, len, (const int64_t[]){ 6, 5, 9, 8 }, 4));
	len = metrics_most_by_correct(N, 2, logp, LABEL, pred, 1, 1, 2, out);
	CHECK(same_list(out, len, (const int64_t[]){ 6, 5 }, 2));
	// the most incorrect: the lowest probability of the true class first
	len = metrics_most_by_correct(N, 2, logp, LABEL, pred, 0, 0, 4, out);
	CHECK(same_list(out, len, (const int64_t[]){ 2, 4 }, 2));
	len = metrics_most_by_correct(N, 2, logp, LABEL, pred, 1, 0, 4, out);
	CHECK(same_list(out, len, (const int64_t[]){ 7 }, 1));
	// the most uncertain: i .52, e .55, then b and j at .6 in record order
	len = metrics_most_uncertain(N, 2, logp, 4, out);
	CHECK(same_list(out, len, (const int64_t[]){ 8, 4, 1, 9 }, 4));
	len = metrics_most_uncertain(N, 2, logp, 0, out);
	CHECK(len == 0);
	// the lesson's |p - 0.5| gives the same order here
	len = metrics_most_uncertain(N, 2, logp, N, out);
	for (int64_t i = 1; i < len; i++)
		CHECK(fabsf(P_CAT[out[i - 1]] - 0.5f) <= fabsf(P_CAT[out[i]] - 0.5f) + 1e-6f);
}

static void test_random(void)
{
	int32_t pred[N];
	metrics_predict(N, 2, logp, pred);
	int64_t a[N], b[N];
	Rng r;
	for (int ok = 0; ok <= 1; ok++) {
		int64_t m = ok ? 7 : 3;
		rng_seed(&r, 5, 0);
		int64_t la = metrics_rand_by_correct(N, LABEL, pred, ok, 4, &r, a);
		rng_seed(&r, 5, 0);
		int64_t lb = metrics_rand_by_correct(N, LABEL, pred, ok, 4, &r, b);
		CHECK(la == (m < 4 ? m : 4) && same_list(a, la, b, lb));
		// each one qualifies, none twice
		for (int64_t i = 0; i < la; i++) {
			CHECK((LABEL[a[i]] == pred[a[i]]) == ok);
			for (int64_t j = 0; j < i; j++)
				CHECK(a[i] != a[j]);
		}
		// the documented draw: partial Fisher-Yates over the candidates in order
		int64_t cand[N], c = 0;
		for (int n = 0; n < N; n++)
			if ((LABEL[n] == pred[n]) == ok)
				cand[c++] = n;
		rng_seed(&r, 5, 0);
		for (int64_t i = 0; i < la; i++) {
			int64_t j = i + rng_below(&r, (uint32_t)(c - i)), t = cand[i];
			cand[i] = cand[j];
			cand[j] = t;
		}
		CHECK(same_list(a, la, cand, la));
		// k beyond the candidates: all of them
		rng_seed(&r, 5, 0);
		CHECK(metrics_rand_by_correct(N, LABEL, pred, ok, 100, &r, a) == m);
	}
	// seeds differ: some of 20 seeds give another draw than seed 0
	rng_seed(&r, 0, 0);
	metrics_rand_by_correct(N, LABEL, pred, 1, 4, &r, a);
	int differ = 0;
	for (uint64_t s = 1; s <= 20; s++) {
		rng_seed(&r, s, 0);
		metrics_rand_by_correct(N, LABEL, pred, 1, 4, &r, b);
		differ += !same_list(a, 4, b, 4);
	}
	CHECK(differ > 10);
}

static void test_edges(void)
{
	// argmax: the first of equal maxima; -inf is a probability of 0
	CHECK(metrics_argmax(3, (const float[]){ -1, -0.5f, -0.5f }) == 1);
	CHECK(metrics_argmax(3, (const float[]){ -INFINITY, -INFINITY, -INFINITY }) == 0);
	CHECK(metrics_argmax(1, (const float[]){ 0 }) == 0);
	// a class never predicted: its precision is undefined (NaN), recall 0
	const int64_t cm[9] = { 2, 0, 0,   1, 0, 0,   0, 0, 3 };
	double prec[3], rec[3];
	metrics_precision_recall(3, cm, prec, rec);
	CHECK(prec[0] == 2.0 / 3 && isnan(prec[1]) && rec[1] == 0 && prec[2] == 1 && rec[2] == 1);
	const int64_t cm2[4] = { 0, 0, 0, 5 };   // a class never there
	metrics_precision_recall(2, cm2, prec, rec);
	CHECK(isnan(prec[0]) && isnan(rec[0]) && prec[1] == 1 && rec[1] == 1);
	// none qualify: empty lists
	int32_t lab[2] = { 0, 1 }, pr[2] = { 0, 1 };
	float lp[4] = { 0, -INFINITY, -INFINITY, 0 };
	int64_t out[2];
	Rng r;
	rng_seed(&r, 1, 1);
	CHECK(metrics_rand_by_correct(2, lab, pr, 0, 4, &r, out) == 0);
	CHECK(metrics_most_by_correct(2, 2, lp, lab, pr, 0, 0, 4, out) == 0);
	CHECK(metrics_most_uncertain(0, 2, lp, 4, out) == 0);
}

// Three classes: uncertain is the smallest largest probability.
static void test_three_classes(void)
{
	const float p[5][3] = {
		{ 0.5f, 0.3f, 0.2f },    // 0, label 0: right, max .5
		{ 0.34f, 0.33f, 0.33f }, // 1, label 1: wrong (as 0), max .34
		{ 0.1f, 0.1f, 0.8f },    // 2, label 2: right, max .8
		{ 0.2f, 0.4f, 0.4f },    // 3, label 2: wrong (as 1, first of the tie), max .4
		{ 0.05f, 0.9f, 0.05f },  // 4, label 1: right, max .9
	};
	const int32_t lab[5] = { 0, 1, 2, 2, 1 };
	float lp[15];
	for (int n = 0; n < 5; n++)
		for (int k = 0; k < 3; k++)
			lp[3 * n + k] = logf(p[n][k]);
	int32_t pred[5];
	metrics_predict(5, 3, lp, pred);
	CHECK(pred[0] == 0 && pred[1] == 0 && pred[2] == 2 && pred[3] == 1 && pred[4] == 1);
	int64_t cm[9];
	metrics_confusion(5, 3, lab, pred, cm);
	const int64_t want[9] = { 1, 0, 0,   1, 1, 0,   0, 1, 1 };
	CHECK(memcmp(cm, want, sizeof cm) == 0);
	CHECK(metrics_correct(3, cm) == 3);
	int64_t out[5];
	int64_t len = metrics_most_uncertain(5, 3, lp, 3, out);
	CHECK(same_list(out, len, (const int64_t[]){ 1, 3, 0 }, 3));
	// the most incorrect of class 2: record 3 (p(2) = .4)
	len = metrics_most_by_correct(5, 3, lp, lab, pred, 2, 0, 4, out);
	CHECK(same_list(out, len, (const int64_t[]){ 3 }, 1));
	len = metrics_most_by_correct(5, 3, lp, lab, pred, 1, 1, 4, out);
	CHECK(same_list(out, len, (const int64_t[]){ 4 }, 1));
}

// ---- the reader ----
static char *tmp;

// A predictions stream: header keys (NULL-terminated pairs), n records of
// K = 2 with labels when lab, names when named.
static void write_pred(const char *const *meta, int n, int lab, int named)
{
	Stream *w = xstream_open_write(tmp);
	for (int i = 0; meta[i]; i += 2)
		stream_meta_set(w, meta[i], meta[i + 1]);
	Record r;
	record_init(&r);
	for (int i = 0; i < n; i++) {
		record_clear(&r);
		float v[2] = { logf(0.25f), logf(0.75f) };
		if (i % 2)
			v[0] = logf(0.75f), v[1] = logf(0.25f);
		int64_t d[1] = { 2 };
		record_add(&r, "logp", DT_F32, 1, d, v);
		if (lab) {
			int32_t l = i % 2;
			record_add(&r, "label", DT_I32, 0, NULL, &l);
		}
		if (named) {
			char nm[16];
			snprintf(nm, sizeof nm, "x%d.jpg", i);
			record_add_str(&r, "name", nm);
		}
		xstream_write_record(w, &r);
	}
	record_free(&r);
	xstream_finish(w);
}

static void open_close(void *arg)
{
	(void)arg;
	PredReader p;
	pred_open(&p, tmp);
	Predictions d;
	predictions_read(&d, &p);
	predictions_free(&d);
	pred_close(&p);
}

static void test_reader(void)
{
	static const char *const ok[] = { "kind", "predictions", "classes", "cats,dogs",
	                                  "num_classes", "2", "labelled", "1", NULL };
	write_pred(ok, 3, 1, 1);
	PredReader p;
	pred_open(&p, tmp);
	CHECK(p.K == 2 && p.labelled && p.labels_match && p.names.n == 2);
	CHECK(strcmp(p.names.v[1], "dogs") == 0);
	Predictions d;
	predictions_read(&d, &p);
	CHECK(d.n == 3 && d.K == 2 && d.label[0] == 0 && d.label[1] == 1);
	CHECK(strcmp(d.name[2], "x2.jpg") == 0 && d.logp[1] == logf(0.75f));
	predictions_free(&d);
	pred_close(&p);

	// no labelled key: record 0 tells; no names: "#index"; no classes: 0 .. K-1
	static const char *const bare[] = { "kind", "predictions", "num_classes", "2", NULL };
	write_pred(bare, 2, 0, 0);
	pred_open(&p, tmp);
	CHECK(!p.labelled && !p.labels_match && strcmp(p.names.v[1], "1") == 0);
	CHECK(pred_next(&p) == 1 && strcmp(p.name, "#0") == 0 && p.label == -1);
	CHECK(pred_next(&p) == 1 && strcmp(p.name, "#1") == 0 && p.index == 1);
	CHECK(pred_next(&p) == 0);
	pred_close(&p);
	write_pred(bare, 2, 1, 1);
	pred_open(&p, tmp);
	CHECK(p.labelled && !p.labels_match);   // labels, but of which classes?
	pred_close(&p);
	static const char *const empty[] = { "kind", "predictions", "classes", "a,b", NULL };
	write_pred(empty, 0, 0, 0);
	pred_open(&p, tmp);
	CHECK(p.K == 2 && !p.labelled && pred_next(&p) == 0);
	pred_close(&p);

	// model_classes names the outputs; the labels index classes
	static const char *const imnet[] = { "kind", "predictions", "classes", "cats,dogs",
	                                     "model_classes", "tench,crane", "labelled", "1",
	                                     "num_classes", "2", NULL };
	write_pred(imnet, 2, 1, 1);
	pred_open(&p, tmp);
	CHECK(p.labelled && !p.labels_match && strcmp(p.names.v[0], "tench") == 0);
	CHECK(pred_next(&p) == 1 && p.label == -1);
	pred_close(&p);
	static const char *const dup[] = { "kind", "predictions", "model_classes", "crane,crane",
	                                   "classes", "crane,crane", NULL };
	write_pred(dup, 1, 1, 1);
	pred_open(&p, tmp);
	CHECK(p.K == 2 && p.labels_match);   // ImageNet's labels repeat names
	pred_close(&p);

	// what is refused
	static const char *const act[] = { "kind", "activations", "classes", "a,b", NULL };
	write_pred(act, 1, 1, 1);
	CHECK(check_dies(open_close, NULL, 1, "not a predictions stream (kind=activations)"));
	static const char *const k3[] = { "kind", "predictions", "classes", "a,b,c", NULL };
	write_pred(k3, 1, 1, 1);
	CHECK(check_dies(open_close, NULL, 1,
	                 "record 0: logp is f32 (2), not f32 (3) for the header's 3 classes"));
	static const char *const one[] = { "kind", "predictions", "num_classes", "1",
	                                   "classes", "a", "labelled", "1", NULL };
	write_pred(one, 2, 1, 1);
	CHECK(check_dies(open_close, NULL, 1, "record 0: logp is f32 (2)"));
	static const char *const bad[] = { "kind", "predictions", "num_classes", "2x", NULL };
	write_pred(bad, 1, 1, 1);
	CHECK(check_dies(open_close, NULL, 1, "num_classes '2x' is not a number of classes"));
	static const char *const mism[] = { "kind", "predictions", "num_classes", "3",
	                                    "classes", "a,b", NULL };
	write_pred(mism, 1, 1, 1);
	CHECK(check_dies(open_close, NULL, 1, "classes names 2 classes, num_classes is 3"));
	static const char *const nolab[] = { "kind", "predictions", "classes", "a,b",
	                                     "labelled", "1", NULL };
	write_pred(nolab, 1, 0, 1);
	CHECK(check_dies(open_close, NULL, 1, "record 0: no label in a labelled stream"));
	static const char *const none[] = { "kind", "predictions", NULL };
	write_pred(none, 1, 0, 1);
	CHECK(check_dies(open_close, NULL, 1, "no num_classes or classes in its metadata"));
	unlink(tmp);
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, "test_metrics");
	tmp = check_tmp("test_metrics.stream");
	test_two_classes();
	test_random();
	test_edges();
	test_three_classes();
	test_reader();
	free(tmp);
	return check_done("test_metrics");
}
