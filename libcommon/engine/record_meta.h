// What an images or activations stream carries beside its tensors: the
// classes in its header, and in every record its file name and, in a
// labelled stream, its label.  Shared by image_batches.c, feature_batches.c,
// train_data.c and tta.
#ifndef CNNPIPE_RECORD_META_H
#define CNNPIPE_RECORD_META_H
#include <stdint.h>
#include "formats/stream.h"
#include "libcommon/util/tensor.h"
#include "model.h"

// Dies "path: classes A, but the model M was made for B" when the stream's
// `classes` and the model's both exist and differ (names or their order),
// and "path: N classes (A), but the model M has K" when the stream's
// classes are not as many as a fast.ai model's outputs.
void stream_check_classes(const Stream *in, const char *path, const Model *m,
                          const char *model_path);

// What a labelled stream's labels may be: 0 .. n-1 (n <= 0: any label >= 0).
typedef struct {
	int labelled;
	int n;
	const char *names;       // the class names, for the message (or NULL)
	int from_model;          // the bound is a fast.ai model's classes
	const char *model_path;  // for the message
} LabelRange;
// Fills lr for a stream read for model m: n is the number of the stream's
// classes or, without them, a fast.ai model's num_classes (after
// stream_check_classes both agree); with an ImageNet classifier only the
// stream's classes bound the labels.
void stream_label_range(const Stream *in, const Model *m,
                        const char *model_path, int labelled, LabelRange *lr);

// Replaces *name with a copy of r's `name` (NULL when it has none) and sets
// *label from its i32 scalar `label` (-1 when unlabelled); dies naming path
// and record idx when a labelled stream's record has no such label, or one
// outside the range (naming the model or the stream's classes it is out of).
void record_take_meta(const Record *r, const char *path, uint64_t idx,
                      const LabelRange *labels, char **name, int32_t *label);

#endif
