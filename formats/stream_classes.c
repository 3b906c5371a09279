// A stream's class list (stream_classes.h).
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "stream.h"
#include "stream_classes.h"

char *stream_read_classes(const char *path)
{
	Stream *s = xstream_open_read(path);
	const char *kind = stream_meta_get(s, "kind");
	if (!kind || strcmp(kind, "images") != 0)
		die("%s: %s%s, not an images stream: the classes are taken from one (imgprep's "
		    "or augment's)", stream_path(s), kind ? "kind=" : "no kind", kind ? kind : "");
	const char *v = stream_meta_get(s, "classes");
	if (!v || !*v)
		die("%s: no 'classes' in its metadata", stream_path(s));
	char *c = xstrdup(v);
	// Read to the end: a stream cut short or damaged is no source of truth,
	// even when its header is intact.
	Record r;
	record_init(&r);
	while (xstream_read_record(s, &r))
		;
	record_free(&r);
	stream_close(s);
	return c;
}
