// Names and labels of stream records (record_meta.h).
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "record_meta.h"

void stream_check_classes(const Stream *in, const char *path, const Model *m,
                          const char *model_path)
{
	const char *v = stream_meta_get(in, "classes");
	if (v && m->classes && strcmp(v, m->classes))
		die("%s: classes %s, but the model %s was made for %s", path, v,
		    model_path, m->classes);
}

void record_take_meta(const Record *r, const char *path, uint64_t idx,
                      int labelled, char **name, int32_t *label)
{
	Tensor *nm = record_find(r, "name");
	free(*name);
	*name = NULL;
	if (nm) {
		char buf[4096] = "";
		if (nm->dtype == DT_STR)
			tensor_str(nm, buf, sizeof buf);
		*name = xstrdup(buf);
	}
	*label = -1;
	if (labelled) {
		Tensor *lb = record_find(r, "label");
		if (!lb || lb->dtype != DT_I32 || lb->ndim != 0)
			die("%s: record %llu: no i32 label in a labelled stream", path,
			    (unsigned long long)idx);
		*label = *(int32_t *)lb->data;
	}
}
