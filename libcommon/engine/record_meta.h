// What every record of an images or activations stream carries beside its
// tensor: its file name and, in a labelled stream, its label.  Shared by
// image_batches.c and feature_batches.c.
#ifndef CNNPIPE_RECORD_META_H
#define CNNPIPE_RECORD_META_H
#include <stdint.h>
#include "libcommon/util/tensor.h"

// Replaces *name with a copy of r's `name` (NULL when it has none) and sets
// *label from its i32 scalar `label` (-1 when unlabelled); dies naming path
// and record idx when a labelled stream's record has no such label.
void record_take_meta(const Record *r, const char *path, uint64_t idx,
                      int labelled, char **name, int32_t *label);

#endif
