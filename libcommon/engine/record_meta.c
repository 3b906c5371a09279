// Names and labels of stream records (record_meta.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "record_meta.h"

static int count_names(const char *list)
{
	int n = 1;
	for (const char *p = list; *p; p++)
		n += *p == ',';
	return n;
}

void stream_check_classes(const Stream *in, const char *path, const Model *m,
                          const char *model_path)
{
	const char *v = stream_meta_get(in, "classes");
	if (v && m->classes && strcmp(v, m->classes))
		die("%s: classes %s, but the model %s was made for %s", path, v,
		    model_path, m->classes);
	if (v && m->head == HEAD_FASTAI && count_names(v) != m->num_classes)
		die("%s: %d classes (%s), but the model %s has %d", path,
		    count_names(v), v, model_path, m->num_classes);
}

void stream_label_range(const Stream *in, const Model *m,
                        const char *model_path, int labelled, LabelRange *lr)
{
	const char *v = stream_meta_get(in, "classes");
	lr->labelled = labelled;
	lr->model_path = model_path;
	lr->from_model = m->head == HEAD_FASTAI;
	lr->names = v ? v : lr->from_model ? m->classes : NULL;
	lr->n = v ? count_names(v) : lr->from_model ? m->num_classes : 0;
}

void record_take_meta(const Record *r, const char *path, uint64_t idx,
                      const LabelRange *labels, char **name, int32_t *label)
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
	if (labels->labelled) {
		Tensor *lb = record_find(r, "label");
		if (!lb || lb->dtype != DT_I32 || lb->ndim != 0)
			die("%s: record %llu: no i32 label in a labelled stream", path,
			    (unsigned long long)idx);
		int32_t y = *(int32_t *)lb->data;
		int n = labels->n;
		if (y < 0 || (n > 0 && y >= n)) {
			char what[256] = "";
			if (labels->names)
				snprintf(what, sizeof what, ": %.200s", labels->names);
			if (n <= 0)
				die("%s: record %llu: label %d: a label is a class index "
				    "(0 or more)", path, (unsigned long long)idx, y);
			if (labels->from_model)
				die("%s: record %llu: label %d, but the model %s has %d "
				    "classes (labels 0 to %d%s)", path, (unsigned long long)idx,
				    y, labels->model_path, n, n - 1, what);
			die("%s: record %llu: label %d, but the stream has %d classes "
			    "(labels 0 to %d%s)", path, (unsigned long long)idx, y, n,
			    n - 1, what);
		}
		*label = y;
	}
}
