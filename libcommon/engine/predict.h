// Predictions: a model in eval mode over batches of inputs — normalised CHW
// images (the whole network) or activations (precompute(1): the head
// alone) — giving log-probabilities, as fast.ai's learn.predict() does; the
// mean of several passes' probabilities (learn.TTA()); and the predictions
// stream (kind=predictions, cnnpipe-tensor(5)) that tta(1) writes and
// confusion(1) reads.
#ifndef CNNPIPE_PREDICT_H
#define CNNPIPE_PREDICT_H
#include <stdint.h>
#include "exec.h"
#include "formats/stream.h"
#include "model.h"

enum { PREDICT_IMAGES = 1, PREDICT_FEATURES };

typedef struct {
	Model *m;
	Exec e;
	int input;             // PREDICT_*
	int cap, K, F;         // batch size, classes, features (fast.ai head)
	size_t in_per;         // input floats per sample
	float *xdev;           // the batch on the device (host_memory: NULL)
	float *fdev;           // images, fast.ai head: the body's features (device)
	float *logp;           // (cap, K) host
} Predictor;

// Runs m (which must outlive p) on be for batches of up to cap inputs of
// kind `input`.  PREDICT_FEATURES needs a fast.ai head (the caller checks).
void predictor_init(Predictor *p, Model *m, const Backend *be, int input, int cap);
void predictor_free(Predictor *p);
// x: (N, 3, S, S) normalised images or (N, F) activations, host, N <= cap.
// Returns the (N, K) log-probabilities, host, valid until the next call.
// Eval mode throughout.  Images through a fast.ai head run as train's
// evaluation does (trainer.h, TRAIN_FROZEN): the body, then the head on its
// features, so the numbers are the same.
const float *predictor_run(Predictor *p, int N, const float *x);

// The mean of P passes' probabilities, as a log: passes (P, K) log-probs,
// pass 0 weighing w0 (fast.ai's TTA counts its plain pass ceil(n_aug/4)
// times), the others 1: out[k] = log((w0·exp(lp0[k]) + Σ exp(lp_p[k])) /
// (w0 + P - 1)), in double, shifted by the largest value (no underflow).
void predict_mean_logp(int P, int K, const float *passes, int w0, float *out);

// ---- the predictions stream ---------------------------------------------------

typedef struct {
	Stream *out;
	Record r;
	int K, P, labelled;    // P: passes written per record (0: none)
	int counters;          // copy the input's end-chunk counters (skipped)
} PredWriter;

typedef struct {
	const char *model_path;
	int labelled;
	int tta;               // augmented passes (0: plain prediction)
	uint64_t seed;
	int passes;            // also write every pass (tta + 1 of them)
	const char *augment;   // a description of the transforms, or NULL
	const Stream *in;      // the input: its `source` is copied
	// A shard that does not end the input: its end chunk counts 0 of the
	// input's skipped images, the last shard all of them, so that tensor
	// cat's sum of the shards' counters is the whole's.
	int shard_before_end;
} PredSpec;

// Opens the standard output and sets the header: kind=predictions, classes
// (the model's, when it has them), num_classes, labelled, model, arch,
// tta, seed, augment (when given), source (copied).
void pred_writer_open(PredWriter *w, const Model *m, const PredSpec *s);
// One record: logp (K); passes (P, K) when the writer has them; label
// (when labelled: must be 0..K-1, else dies naming path and record
// `index`); name (when not NULL).
void pred_writer_put(PredWriter *w, const float *logp, const float *passes,
                     int32_t label, const char *name, const char *path,
                     uint64_t index);
// Copies the input's end-chunk `skipped` (read with its last record) and
// writes the end chunk.
void pred_writer_finish(PredWriter *w, const Stream *in);

#endif
