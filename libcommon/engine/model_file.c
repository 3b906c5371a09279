// Model files: meta (what to rebuild the graph from) + one record of tensors.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backbone.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "model_check.h"
#include "model_file.h"
#include "formats/stream.h"

Stream *model_save_begin(const Model *m, const char *path, const char *kind)
{
	char err[512];
	if (model_check(m, err, sizeof err) < 0)
		die("%s: will not write the model: %s", path, err);
	Stream *s = xstream_open_write(path);
	stream_meta_set(s, "kind", kind);
	stream_meta_set(s, "arch", m->arch);
	stream_meta_set(s, "head", m->head == HEAD_FASTAI ? "fastai" : "imagenet");
	stream_meta_setf(s, "num_classes", "%d", m->num_classes);
	if (m->classes)
		stream_meta_set(s, "classes", m->classes);
	stream_meta_setf(s, "input_size", "%d", m->in_size);
	stream_meta_setf(s, "channels", "%d", m->in_c);
	stream_meta_setf(s, "mean", "%.9g,%.9g,%.9g", m->mean[0], m->mean[1],
	                 m->mean[2]);
	stream_meta_setf(s, "std", "%.9g,%.9g,%.9g", m->std[0], m->std[1],
	                 m->std[2]);
	stream_meta_setf(s, "groups", "%d", m->ngroups);
	stream_meta_setf(s, "frozen", "%d", m->frozen);
	if (m->provenance)
		stream_meta_set(s, "provenance", m->provenance);
	if (m->darknet_cfg)
		stream_meta_set(s, "darknet_cfg", m->darknet_cfg);
	return s;
}

void model_save(const Model *m, const char *path)
{
	Stream *s = model_save_begin(m, path, "model");
	xstream_write_record(s, &m->params);
	xstream_finish(s);
}

// The reader reports into err (for the fuzzer, and for model_load_begin
// to die with): every value below comes from the file.
static const char *need(Stream *s, const char *key, char *err, size_t errlen)
{
	const char *v = stream_meta_get(s, key);
	if (!v)
		err_set(err, errlen, "not a cnnpipe model: no '%s' in its metadata", key);
	return v;
}

static int meta_long(Stream *s, const char *key, long lo, long hi, long *x,
                     char *err, size_t errlen)
{
	const char *v = need(s, key, err, errlen);
	if (!v)
		return -1;
	char *end;
	*x = strtol(v, &end, 10);
	if (end == v || *end || *x < lo || *x > hi)
		return err_set(err, errlen, "meta %s=%.100s: need a whole number in "
		              "[%ld, %ld]", key, v, lo, hi);
	return 0;
}

static int meta_floats3(Stream *s, const char *key, float *out, char *err,
                        size_t errlen)
{
	const char *v = need(s, key, err, errlen);
	if (!v)
		return -1;
	char *end;
	const char *p = v;
	for (int i = 0; i < 3; i++) {
		out[i] = strtof(p, &end);
		if (end == p || (i < 2 && *end != ',') || (i == 2 && *end))
			return err_set(err, errlen, "meta %s=%.100s: need 3 comma-separated "
			              "numbers", key, v);
		p = end + 1;
	}
	return 0;
}

int model_read(Model *m, Stream *s, const char *want, char *err, size_t errlen)
{
	model_init(m);
	Record r;
	record_init(&r);
	int rc = -1;
	const char *kind = stream_meta_get(s, "kind");
	if (!kind || strcmp(kind, want)) {
		err_set(err, errlen, "not a cnnpipe %s (kind=%.40s)", want,
		        kind ? kind : "none");
		goto out;
	}
	const char *arch = need(s, "arch", err, errlen);
	const char *h = arch ? need(s, "head", err, errlen) : NULL;
	if (!h)
		goto out;
	int head = !strcmp(h, "fastai") ? HEAD_FASTAI
	         : !strcmp(h, "imagenet") ? HEAD_IMAGENET : 0;
	if (!head) {
		err_set(err, errlen, "meta head=%.40s: need fastai or imagenet", h);
		goto out;
	}
	long K, size, ch, groups, frozen = 0;
	if (meta_long(s, "num_classes", 1, MODEL_MAX_CLASSES, &K, err, errlen) ||
	    meta_long(s, "input_size", 1, MODEL_MAX_INPUT, &size, err, errlen) ||
	    meta_long(s, "channels", 1, 4096, &ch, err, errlen) ||
	    meta_long(s, "groups", 1, 1000, &groups, err, errlen))
		goto out;
	// The record first: the network is built only listing its parameters
	// and takes the record's memory once its shapes match, so that metadata
	// describing a huge network costs nothing before it is refused.
	int got = stream_read_record(s, &r);
	if (got < 0) {
		err_set(err, errlen, "%s", stream_error(s));
		goto out;
	}
	if (!got) {
		err_set(err, errlen, "no tensor record");
		goto out;
	}
	const char *cfg = stream_meta_get(s, "darknet_cfg");
	ModelSpec spec = { .arch = arch, .head = head, .num_classes = (int)K,
	                   .in_size = (int)size, .cfg_text = cfg,
	                   .cfg_len = cfg ? strlen(cfg) : 0, .weights_follow = 1 };
	if (model_build(m, &spec, err, errlen) < 0)
		goto out;
	if (m->num_classes != K) {
		err_set(err, errlen, "num_classes=%ld but the classifier has %d", K,
		        m->num_classes);
		goto out;
	}
	if (ch != m->in_c) {
		err_set(err, errlen, "meta channels=%ld but the %s network takes %d",
		        ch, m->arch, m->in_c);
		goto out;
	}
	if (groups != m->ngroups) {
		err_set(err, errlen, "meta groups=%ld but the %s network has %d layer "
		        "groups", groups, m->arch, m->ngroups);
		goto out;
	}
	if (meta_floats3(s, "mean", m->mean, err, errlen) ||
	    meta_floats3(s, "std", m->std, err, errlen))
		goto out;
	const char *v = stream_meta_get(s, "classes");
	if (v)
		m->classes = xstrdup(v);
	v = stream_meta_get(s, "provenance");
	if (v)
		m->provenance = xstrdup(v);
	if (stream_meta_get(s, "frozen")) {
		if (meta_long(s, "frozen", 0, m->ngroups, &frozen, err, errlen))
			goto out;
		model_freeze_to(m, (int)frozen);
	}
	char e2[512];
	if (model_adopt_params(m, &r, "record", e2, sizeof e2) < 0) {
		err_set(err, errlen, "%s", e2 + strlen("record: "));
		goto out;
	}
	if (model_check(m, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	record_free(&r);
	if (rc)
		model_free(m);
	return rc;
}

Stream *model_load_begin(Model *m, const char *path, const char *want)
{
	Stream *s = xstream_open_read(path);
	char err[1024];
	if (model_read(m, s, want, err, sizeof err) < 0)
		die("%s: %s", path, err);
	return s;
}

void model_load(Model *m, const char *path)
{
	Stream *s = model_load_begin(m, path, "model");
	Record extra;
	record_init(&extra);
	if (xstream_read_record(s, &extra))
		die("%s: more than one record", path);
	record_free(&extra);
	stream_close(s);
}
