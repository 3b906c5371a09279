// cnnpipe model files: a tensor stream with meta kind=model and ONE record
// holding every parameter and buffer (names: cnnpipe-model(5)).
#ifndef CNNPIPE_MODEL_FILE_H
#define CNNPIPE_MODEL_FILE_H
#include "formats/stream.h"
#include "model.h"

// Writes m to path ("-" = stdout), whole or not at all; dies on error,
// and before opening path when m fails model_check.
void model_save(const Model *m, const char *path);
// Reads a model file into m (built from its meta, then filled from its
// record, every tensor checked).  Dies with "prog: <path>: ..." on error.
void model_load(Model *m, const char *path);

// For files that are a model and more (checkpoints): the model's metadata
// under meta kind=`kind`; the caller adds keys, writes m->params as the
// first record and what follows, and finishes the stream.
Stream *model_save_begin(const Model *m, const char *path, const char *kind);
// Reads the metadata and the first record (the parameters) of a file of
// kind `kind` into m; the stream is left at the next record.
Stream *model_load_begin(Model *m, const char *path, const char *kind);

// The reader itself, on an open stream (its header read): m built from the
// metadata (the network no larger than the record's tensors could fill),
// filled from the first record, and checked whole (model_check.h).
// Returns 0, or -1 with the first fault in err (without the file name) and
// m freed.  model_load_begin is this, dying "prog: path: err".
int model_read(Model *m, Stream *s, const char *kind, char *err, size_t errlen);

#endif
