// Classification metrics over a set of predictions, and the analysis lists
// of fast.ai's lesson 1 (rand_by_correct, most_by_correct, the most
// uncertain): what confusion(1) reports.  Also the reader of a predictions
// stream (tta(1), precompute --full).
//
// Plain functions over arrays.  N predictions of K classes: logp (N, K)
// log-probabilities, row-major; label and pred (N) class indices in
// [0, K).  A probability is expf(logp).  Lists are record indices (N)
// into the predictions.
//
// Ties: the predicted class is the lowest index among equal largest
// log-probabilities (numpy's argmax); a ranking keeps record order among
// equal probabilities (a stable sort).
#ifndef CNNPIPE_METRICS_H
#define CNNPIPE_METRICS_H
#include <stdint.h>
#include "formats/stream.h"
#include "libcommon/util/classes.h"
#include "libcommon/util/rng.h"
#include "libcommon/util/tensor.h"

// The argmax of one row, row: (K).
int metrics_argmax(int K, const float *row);
// pred[n] = metrics_argmax of row n; logp: (N, K), pred: (N) out.
void metrics_predict(int64_t N, int K, const float *logp, int32_t *pred);

// cm: (K, K) out, cm[t * K + p] = the records of true class t predicted p
// (rows true class, columns predicted, in class-index order); label, pred: (N).
void metrics_confusion(int64_t N, int K, const int32_t *label, const int32_t *pred,
                       int64_t *cm);
// The trace of cm (K, K): the correct predictions.
int64_t metrics_correct(int K, const int64_t *cm);
// Mean negative log-likelihood -(1/N) sum_n logp[n, label[n]], summed in
// double (the training loss, nll_loss); logp: (N, K), label: (N); NaN for N = 0.
double metrics_nll(int64_t N, int K, const float *logp, const int32_t *label);
// cm: (K, K); precision, recall: (K) out.  precision[c] = cm[c, c] / (column
// c's sum: predicted c), recall[c] = cm[c, c] / (row c's sum: truly c); NaN
// where the sum is 0.
void metrics_precision_recall(int K, const int64_t *cm, double *precision,
                              double *recall);

// rand_by_correct: up to k records chosen at random, without replacement,
// among those whose prediction is right (correct = 1) or wrong (correct = 0).
// The candidates, in record order, are shuffled by a partial Fisher-Yates
// shuffle (for i = 0, 1, ...: swap i with i + rng_below(m - i), m the
// candidates); the first min(k, m) are the list, in draw order.
// label, pred: (N); out: (k).  Returns the list's length.
int64_t metrics_rand_by_correct(int64_t N, const int32_t *label, const int32_t *pred,
                                int correct, int64_t k, Rng *r, int64_t *out);
// most_by_correct: among the records of true class c whose prediction is
// right (correct = 1), the k with the highest probability of c; among the
// wrong ones (correct = 0), the k with the lowest probability of c.
// logp: (N, K), label, pred: (N); out: (k).  Returns the list's length.
int64_t metrics_most_by_correct(int64_t N, int K, const float *logp,
                                const int32_t *label, const int32_t *pred, int c,
                                int correct, int64_t k, int64_t *out);
// The most uncertain: the k records with the smallest largest probability
// (the predicted class's), over all N, labelled or not.  For K = 2 this is
// the lesson's order by |p - 0.5| (the largest of p, 1 - p is 0.5 + |p - 0.5|).
// logp: (N, K); out: (k).  Returns the list's length.
int64_t metrics_most_uncertain(int64_t N, int K, const float *logp, int64_t k,
                               int64_t *out);

// A predictions stream (kind=predictions, cnnpipe-tensor(5)) read record
// by record and checked: per record `logp` f32 (K), `label` i32 scalar
// when labelled, `name` str.  Every failure dies "<path>: <what>" (a stream
// fault with its byte offset, a record's with its index).
#define PRED_MAX_CLASSES 65536
typedef struct {
	Stream *s;
	const char *path;
	int K;                 // header num_classes, or the number of classes
	int labelled;          // header labelled (absent: whether record 0 has a label)
	ClassList names;       // the K outputs' names: model_classes, classes, or 0 .. K-1
	int labels_match;      // labels index exactly these names (header classes
	                       // equals them): a confusion matrix means something
	int nlabel_classes;    // names in header classes (0 when absent)
	// the record read by pred_next, valid until the next call:
	int64_t index;
	const float *logp;     // (K)
	int32_t label;         // in [0, K) when labelled and labels_match, else -1
	const char *name;      // its name, or "#<index>" when it has none
	Record r;
	int ahead;             // record 0 already read (to learn `labelled`)
	char *namebuf;
	size_t namecap;
} PredReader;

// Opens path ("-" = standard input) and checks the header: kind, num_classes,
// classes, model_classes, labelled.
void pred_open(PredReader *p, const char *path);
// 1: a record was read; 0: the end.  Dies on a record without logp of K
// floats (or with a NaN or +inf in it), a label that is not an i32 scalar or
// is outside [0, K) where labels are needed (labelled and labels_match), or a
// broken stream.
int pred_next(PredReader *p);
void pred_close(PredReader *p);

// All of a stream's predictions in memory: N x K floats, N labels and the
// names (the records themselves are not kept).
typedef struct {
	int64_t n;
	int K;
	float *logp;           // (n, K)
	int32_t *label;        // (n); -1 where unlabelled
	char **name;           // (n)
	size_t cap;
} Predictions;
// Reads the remaining records of p into d.
void predictions_read(Predictions *d, PredReader *p);
void predictions_free(Predictions *d);

#endif
