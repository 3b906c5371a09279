// A stream's class list (stream_classes.h).
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "stream.h"
#include "stream_classes.h"

char *stream_read_classes(const char *path)
{
	Stream *s = xstream_open_read(path);
	const char *v = stream_meta_get(s, "classes");
	if (!v || !*v)
		die("%s: no 'classes' in its metadata", path);
	char *c = xstrdup(v);
	stream_close(s);
	return c;
}
