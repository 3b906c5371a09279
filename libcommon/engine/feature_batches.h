// An activations stream (precompute(1)) read batch by batch for a model's
// head: the metadata checked against the model, rows, labels and names kept
// side by side.  Memory: one batch.  (train_data.h holds a whole set in
// memory to shuffle it; a prediction reads once, in order.)
#ifndef CNNPIPE_FEATURE_BATCHES_H
#define CNNPIPE_FEATURE_BATCHES_H
#include <stdint.h>
#include "formats/stream.h"
#include "model.h"
#include "record_meta.h"

typedef struct {
	Stream *in;
	const char *path;
	int F;                 // features per row (the head's input)
	int labelled;
	LabelRange labels;     // what the labels may be (record_meta.h)
	int cap;               // batch size
	float *x;              // (cap, F), host
	int32_t *label;        // (cap); -1 when unlabelled
	char **name;           // (cap); NULL where a record has none
	int n;                 // records of the current batch
	uint64_t first;        // stream index of its first record
	Record r;
} FeatureBatches;

// On a stream already open (its header read), which b then owns.  Dies,
// naming both sides, unless it is kind=activations with `features` equal
// to the width of m's fast.ai head and classes (names and order) equal to
// the model's when both have them.
void feature_batches_open_stream(FeatureBatches *b, Stream *in, const char *path,
                                 const Model *m, const char *model_path, int batch);
// The next batch of up to `batch` rows; returns its size, 0 at the end.
// Dies on a record without an f32 x of F values, or without an i32 scalar
// label in a labelled stream.
int feature_batches_next(FeatureBatches *b);
void feature_batches_close(FeatureBatches *b);

#endif
