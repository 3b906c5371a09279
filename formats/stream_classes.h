// The --classes-from option of the tools: a stream's 'classes' metadata.
#ifndef CNNPIPE_STREAM_CLASSES_H
#define CNNPIPE_STREAM_CLASSES_H

// The 'classes' header metadata of the stream at path ("-" = standard input),
// malloc'd and not checked (see libcommon/util/classes.h).  Dies "<path>: no
// 'classes' in its metadata" when it is absent or empty, and as
// xstream_open_read does on a stream it cannot open.
char *stream_read_classes(const char *path);

#endif
