// confusion: a predictions stream -> accuracy, loss, the confusion matrix,
// precision and recall per class, and fast.ai lesson 1's lists of images
// (random correct and incorrect, the most correct and incorrect of each
// class, the most uncertain); --tsv the same as tab-separated sections,
// --list one line per record.  See confusion(1).
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/engine/metrics.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"

#define USAGE "confusion [-k N] [--seed N] [--tsv | --list] [PREDICTIONS]"

static int tsv;

// A text field with tab, newline, carriage return and backslash escaped
// (\t \n \r \\); returns its printed width.
static int put_str(const char *s)
{
	int w = 0;
	for (; *s; s++, w++) {
		const char *e = *s == '\t' ? "\\t" : *s == '\n' ? "\\n" : *s == '\r' ? "\\r"
		              : *s == '\\' ? "\\\\" : NULL;
		if (e)
			fputs(e, stdout), w++;
		else
			putchar(*s);
	}
	return w;
}

static int str_width(const char *s)
{
	int w = 0;
	for (; *s; s++)
		w += strchr("\t\n\r\\", *s) ? 2 : 1;
	return w;
}

// s in a column of width w, left- or right-aligned.
static void put_col(const char *s, int w, int right)
{
	int pad = w - str_width(s);
	if (right)
		printf("%*s", pad > 0 ? pad : 0, "");
	put_str(s);
	if (!right)
		printf("%*s", pad > 0 ? pad : 0, "");
}

// A ratio: "%9.4f" style in text ("-" when undefined), %.6g in TSV.
static void put_ratio(double v, int w)
{
	if (tsv)
		printf("\t%.6g", v);
	else if (isnan(v))
		printf("  %*s", w, "-");
	else
		printf("  %*.4f", w, v);
}

typedef struct {
	const Predictions *d;
	const int32_t *pred;
	const ClassList *names;
	int w;                 // text: the width of a class column
} Report;

// One list: TSV rows "section rank index true predicted p_pred p_true name",
// or a titled text table.
static void put_list(const Report *rp, const char *section, const char *title,
                     const char *cls, const int64_t *idx, int64_t len)
{
	const Predictions *d = rp->d;
	if (!tsv) {
		printf("\n%s", title);
		if (cls)
			putchar(' '), put_str(cls);
		putchar('\n');
		if (!len)
			printf("  (none)\n");
		else {
			printf("  p(pred)  p(true)  ");
			put_col("true", rp->w, 0);
			printf("  ");
			put_col("predicted", rp->w, 0);
			printf("  name\n");
		}
	}
	for (int64_t i = 0; i < len; i++) {
		int64_t n = idx[i];
		const float *row = d->logp + (size_t)n * (size_t)d->K;
		int t = d->label[n], p = rp->pred[n];
		double pp = expf(row[p]), pt = t >= 0 ? expf(row[t]) : NAN;
		const char *tn = t >= 0 ? rp->names->v[t] : "-";
		if (tsv) {
			printf("%s\t%" PRId64 "\t%" PRId64 "\t", section, i + 1, n);
			put_str(tn);
			putchar('\t');
			put_str(rp->names->v[p]);
			printf("\t%.6g\t%.6g\t", pp, pt);
		} else {
			printf("  %7.4f  %7.4f  ", pp, pt);
			put_col(tn, rp->w, 0);
			printf("  ");
			put_col(rp->names->v[p], rp->w, 0);
			printf("  ");
		}
		put_str(d->name[n]);
		putchar('\n');
	}
}

// Accuracy, loss, the matrix, precision and recall per class.
static void put_metrics(const Report *rp, const int64_t *cm)
{
	const Predictions *d = rp->d;
	int K = d->K;
	int64_t correct = metrics_correct(K, cm);
	double acc = (double)correct / (double)d->n;
	double nll = metrics_nll(d->n, K, d->logp, d->label);
	double *prec = xmalloc_array((size_t)K, sizeof *prec);
	double *rec = xmalloc_array((size_t)K, sizeof *rec);
	metrics_precision_recall(K, cm, prec, rec);
	int64_t big = 0;
	for (size_t i = 0; i < (size_t)K * (size_t)K; i++)
		big = cm[i] > big ? cm[i] : big;
	int cw = snprintf(NULL, 0, "%" PRId64, big), rw = 5;   // "class"
	for (int c = 0; c < K; c++) {
		int w = str_width(rp->names->v[c]);
		cw = w > cw ? w : cw;
		rw = w > rw ? w : rw;
	}
	if (tsv) {
		printf("summary\trecords\t%" PRId64 "\nsummary\tcorrect\t%" PRId64 "\n"
		       "summary\taccuracy\t%.6g\nsummary\tnll\t%.6g\n", d->n, correct, acc, nll);
	} else {
		printf("accuracy  %.4f  (%" PRId64 " of %" PRId64 ")\n", acc, correct, d->n);
		printf("loss      %.4f  (mean negative log-likelihood)\n", nll);
		printf("\nconfusion matrix (rows: true class, columns: predicted)\n%*s", rw, "");
		for (int c = 0; c < K; c++)
			printf("  "), put_col(rp->names->v[c], cw, 1);
		putchar('\n');
	}
	for (int t = 0; t < K; t++) {
		if (!tsv)
			put_col(rp->names->v[t], rw, 0);
		for (int p = 0; p < K; p++) {
			int64_t v = cm[(size_t)t * (size_t)K + (size_t)p];
			if (tsv) {
				printf("confusion\t"), put_str(rp->names->v[t]);
				printf("\t"), put_str(rp->names->v[p]), printf("\t%" PRId64 "\n", v);
			} else {
				printf("  %*" PRId64, cw, v);
			}
		}
		if (!tsv)
			putchar('\n');
	}
	if (!tsv)
		printf("\n"), put_col("class", rw, 0), printf("  precision  recall   true  predicted\n");
	for (int c = 0; c < K; c++) {
		int64_t nt = 0, np = 0;
		for (int j = 0; j < K; j++) {
			nt += cm[(size_t)c * (size_t)K + (size_t)j];
			np += cm[(size_t)j * (size_t)K + (size_t)c];
		}
		if (tsv)
			printf("class\t"), put_str(rp->names->v[c]);
		else
			put_col(rp->names->v[c], rw, 0);
		put_ratio(prec[c], 9);
		put_ratio(rec[c], 6);
		printf(tsv ? "\t%" PRId64 "\t%" PRId64 "\n" : "  %5" PRId64 "  %9" PRId64 "\n", nt, np);
	}
	free(prec);
	free(rec);
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, USAGE);
	long k = 4;
	uint64_t seed = 1;
	int list = 0;
	enum { O_SEED = 256, O_TSV, O_LIST };
	static const struct option longopts[] = {
		{ "seed", required_argument, 0, O_SEED },
		{ "tsv", no_argument, 0, O_TSV },
		{ "list", no_argument, 0, O_LIST },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "k:", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': k = parse_long("-k", optarg, 0, 1000000); break;
		case O_SEED: seed = (uint64_t)parse_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
		case O_TSV: tsv = 1; break;
		case O_LIST: list = 1; break;
		default: die_usage(NULL);
		}
	}
	if (tsv && list)
		die_usage("--tsv and --list exclude each other");
	if (argc - optind > 1)
		die_usage("one PREDICTIONS stream at most");
	const char *path = optind < argc ? argv[optind] : "-";
	PredReader rd;
	pred_open(&rd, path);
	if (list) {   // record by record, nothing held
		while (pred_next(&rd)) {
			int p = metrics_argmax(rd.K, rd.logp);
			put_str(rd.name);
			putchar('\t');
			put_str(rd.names.v[p]);
			printf("\t%.4f\n", expf(rd.logp[p]));
		}
		pred_close(&rd);
		return 0;
	}
	if (!rd.labelled)
		die("%s: unlabelled predictions (labelled=0): no accuracy or confusion matrix "
		    "without labels; confusion --list lists the predicted classes", path);
	if (!rd.labels_match && !rd.nlabel_classes)
		die("%s: its labels name no classes (no 'classes' in its metadata): no "
		    "confusion matrix; --list lists the predicted classes", path);
	if (!rd.labels_match)
		die("%s: its labels index the %d classes of 'classes', not the model's %d "
		    "outputs ('model_classes'): no confusion matrix; --list lists the "
		    "predicted classes", path, rd.nlabel_classes, rd.K);
	Predictions d;
	predictions_read(&d, &rd);
	if (!d.n)
		die("%s: no predictions (0 records)", path);
	int K = d.K;
	int32_t *pred = xmalloc_array((size_t)d.n, sizeof *pred);
	metrics_predict(d.n, K, d.logp, pred);
	int64_t *cm = xcalloc((size_t)K * (size_t)K, sizeof *cm);
	metrics_confusion(d.n, K, d.label, pred, cm);
	Report rp = { &d, pred, &rd.names, 9 };   // "predicted"
	for (int i = 0; i < K; i++) {
		int w = str_width(rd.names.v[i]);
		rp.w = w > rp.w ? w : rp.w;
	}
	put_metrics(&rp, cm);

	int64_t kk = k < d.n ? k : d.n, len;
	int64_t *idx = xmalloc_array((size_t)(kk ? kk : 1), sizeof *idx);
	Rng r;
	for (int ok = 1; ok >= 0; ok--) {   // stream 0 draws the correct, 1 the incorrect
		rng_seed(&r, seed, (uint64_t)!ok);
		len = metrics_rand_by_correct(d.n, d.label, pred, ok, kk, &r, idx);
		put_list(&rp, ok ? "random_correct" : "random_incorrect",
		         ok ? "random correct" : "random incorrect", NULL, idx, len);
	}
	for (int ok = 1; ok >= 0; ok--)
		for (int cl = 0; cl < K; cl++) {
			len = metrics_most_by_correct(d.n, K, d.logp, d.label, pred, cl, ok, kk, idx);
			put_list(&rp, ok ? "most_correct" : "most_incorrect",
			         ok ? "most correct" : "most incorrect", rd.names.v[cl], idx, len);
		}
	len = metrics_most_uncertain(d.n, K, d.logp, kk, idx);
	put_list(&rp, "most_uncertain", "most uncertain", NULL, idx, len);

	free(idx);
	free(cm);
	free(pred);
	predictions_free(&d);
	pred_close(&rd);
	return 0;
}
