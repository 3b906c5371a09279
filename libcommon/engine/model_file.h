// cnnpipe model files: a tensor stream with meta kind=model and ONE record
// holding every parameter and buffer (names: cnnpipe-model(5)).
#ifndef CNNPIPE_MODEL_FILE_H
#define CNNPIPE_MODEL_FILE_H
#include "formats/stream.h"
#include "model.h"

// Writes m to path ("-" = stdout), whole or not at all; dies on error.
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

#endif
