// cnnpipe model files: a tensor stream with meta kind=model and ONE record
// holding every parameter and buffer (names: cnnpipe-model(5)).
#ifndef CNNPIPE_MODEL_FILE_H
#define CNNPIPE_MODEL_FILE_H
#include "model.h"

// Writes m to path ("-" = stdout), whole or not at all; dies on error.
void model_save(const Model *m, const char *path);
// Reads a model file into m (built from its meta, then filled from its
// record, every tensor checked).  Dies with "prog: <path>: ..." on error.
void model_load(Model *m, const char *path);

#endif
