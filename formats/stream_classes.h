// The --classes-from option of the tools: a stream's 'classes' metadata.
#ifndef CNNPIPE_STREAM_CLASSES_H
#define CNNPIPE_STREAM_CLASSES_H

// The 'classes' header metadata of the images stream (kind=images) at path
// ("-" = standard input), malloc'd and not checked (see
// libcommon/util/classes.h).  The whole stream is read and checked.  Dies
// "<path>: no 'classes' in its metadata" when it is absent or empty, naming
// the kind when the stream holds something else (a model, activations), and
// as xstream_open_read and xstream_read_record do on a stream that cannot
// be opened or is malformed (truncated, corrupt).
char *stream_read_classes(const char *path);

#endif
