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
// `classes` and the model's both exist and differ (names or their order).
void stream_check_classes(const Stream *in, const char *path, const Model *m,
                          const char *model_path);

// Replaces *name with a copy of r's `name` (NULL when it has none) and sets
// *label from its i32 scalar `label` (-1 when unlabelled); dies naming path
// and record idx when a labelled stream's record has no such label.
void record_take_meta(const Record *r, const char *path, uint64_t idx,
                      int labelled, char **name, int32_t *label);

#endif
