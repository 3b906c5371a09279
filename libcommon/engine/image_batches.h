// An images stream (imgprep(1), augment(1)) read as network batches: the
// metadata checked against the model, HWC u8 images turned into normalised
// CHW f32, names and labels kept beside them.  Shared by precompute, train,
// lrfind and tta.
#ifndef CNNPIPE_IMAGE_BATCHES_H
#define CNNPIPE_IMAGE_BATCHES_H
#include <stdint.h>
#include "formats/stream.h"
#include "model.h"
#include "record_meta.h"

typedef struct {
	Stream *in;
	const char *path;
	int S;                 // image side
	int labelled;
	LabelRange labels;     // what the labels may be (record_meta.h)
	int cap;               // batch size
	float scale[3], shift[3];   // (v/255 - mean)/std = v*scale + shift
	float *x;              // (cap, 3, S, S), host
	int32_t *label;        // (cap); -1 when unlabelled
	char **name;           // (cap); NULL where a record has none
	int n;                 // records of the current batch
	uint64_t first;        // stream index of its first record
	Record r;
	int threads;           // normalising the batch (image_batches_threads)
	uint8_t *raw;          // (cap, S, S, 3): the batch's pixels as read
} ImageBatches;

// The network's input from a photo: (v/255 - mean)/std with m's statistics,
// as v*scale + shift.  input_constants fills scale and shift (3 each);
// input_normalise converts plane = H*W pixels, hwc: (H, W, 3) u8 ->
// chw: (3, H, W) f32; image_normalise does both for one m->in_size image.
void input_constants(const Model *m, float *scale, float *shift);
void input_normalise(size_t plane, const float *scale, const float *shift,
                     const uint8_t *hwc, float *chw);
void image_normalise(const Model *m, const uint8_t *hwc, float *chw);

// Opens path ("-" = stdin) for model m (read from model_path, for
// messages).  Dies, naming both sides, on a stream that is not images, or
// whose image size, channels, layout or classes (name and order, for a model
// with a fast.ai head) differ from the model's.
void image_batches_open(ImageBatches *b, const char *path, const Model *m,
                        const char *model_path, int batch);
// The same on a stream already open (its header read), which b then owns.
void image_batches_open_stream(ImageBatches *b, Stream *in, const char *path,
                               const Model *m, const char *model_path, int batch);
// Reads the next batch of up to `batch` images; returns its size, 0 at the
// end.  image_batches_read reads at most max (an epoch's last batch).  Dies on a record without a (S, S, 3) u8 image, or without an i32
// label in a labelled stream.
int image_batches_next(ImageBatches *b);
int image_batches_read(ImageBatches *b, int max);
// Threads that turn a batch's pixels into the network's input (1 unless
// set): reading the records is serial, the conversion need not be.
void image_batches_threads(ImageBatches *b, int threads);
// Closes the stream and frees everything.
void image_batches_close(ImageBatches *b);

#endif
