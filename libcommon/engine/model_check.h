// What every model must be, whoever made it: one check used by the writer
// (model_save, before a byte goes out: pretrained, train) and the reader
// (model_load, after the parameters are in), so that whatever cnnpipe
// writes it reads back and what it refuses to read it never writes.
#ifndef CNNPIPE_MODEL_CHECK_H
#define CNNPIPE_MODEL_CHECK_H
#include <stddef.h>
#include "model.h"

// Checks a built model with its parameters: the description (head,
// num_classes within [2 (fast.ai) or 1, MODEL_MAX_CLASSES], `classes` with
// num_classes names, none empty or holding a newline, input size, 3
// channels, finite mean and positive finite std, groups and frozen, the cfg
// of a darknet model) and, in one pass over the parameters, that every
// value is finite and every batch norm's running variance is >= 0.
// Returns 0, or -1 with the first fault in err, naming the tensor and
// element ("tensor layers.0.bn.running_var[3] is -0.5: a variance is >= 0").
int model_check(const Model *m, char *err, size_t errlen);

#endif
