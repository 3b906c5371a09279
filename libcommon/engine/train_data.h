// What train and lrfind learn from (and validate on): an activations
// stream (precompute(1): the head alone learns; held in memory and shuffled
// every epoch, as fast.ai's precompute=True does) or an images stream
// (the body runs; read batch by batch, its epochs as augment(1) marked them,
// or one epoch for a stream without marks).  Each is checked against the
// model before anything is trained: features width, classes and their
// order, image size, labels.
#ifndef CNNPIPE_TRAIN_DATA_H
#define CNNPIPE_TRAIN_DATA_H
#include <stdint.h>
#include "image_batches.h"
#include "libcommon/util/rng.h"
#include "model.h"

enum { DATA_ACTIVATIONS = 1, DATA_IMAGES };

typedef struct {
	int kind;
	const char *path;
	int64_t n;             // records per epoch
	int64_t epochs;        // epochs the input carries (images; activations: any)
	int bs;
	int classes;           // the model's
	// activations
	int F;                 // features per row
	float *x;              // (n, F)
	int32_t *y;            // (n)
	uint32_t *perm;        // this epoch's order
	// images
	ImageBatches ib;
	int64_t consumed;      // records read so far
	// the current batch
	int N;
	float *bx;             // (bs, F) or (bs, 3, S, S), host
	int32_t *by;
} TrainData;

// Opens path (a file) for model m (model_path for messages); dies when it
// does not fit the model or is unlabelled.  check_order: say so on stderr when
// images without epoch marks come in label order (unshuffled training data).
void train_data_open(TrainData *d, const char *path, const Model *m,
                     const char *model_path, int bs, int check_order);
void train_data_close(TrainData *d);
// Threads for turning images into the network's input (image_batches_threads).
void train_data_threads(TrainData *d, int threads);
int64_t train_data_batches(const TrainData *d);   // per epoch
// Starts an epoch: activations are shuffled with r (fast.ai's
// RandomSampler; the stream order for validation when r is NULL).
void train_data_epoch(TrainData *d, Rng *r);
// Batch b of the current epoch into bx/by; returns its size N (the last
// batch may be partial).
int train_data_batch(TrainData *d, int64_t b);
// Images: skips the first k records (a resumed run on the same stream).
void train_data_skip(TrainData *d, int64_t k);

#endif
