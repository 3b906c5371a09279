// Model files: meta (what to rebuild the graph from) + one record of tensors.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backbone.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "model_file.h"
#include "formats/stream.h"

Stream *model_save_begin(const Model *m, const char *path, const char *kind)
{
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

static const char *need(Stream *s, const char *path, const char *key)
{
	const char *v = stream_meta_get(s, key);
	if (!v)
		die("%s: not a cnnpipe model: no '%s' in its metadata", path, key);
	return v;
}

static long meta_long(Stream *s, const char *path, const char *key, long lo,
                      long hi)
{
	const char *v = need(s, path, key);
	char *end;
	long x = strtol(v, &end, 10);
	if (end == v || *end || x < lo || x > hi)
		die("%s: meta %s=%s: need a whole number in [%ld, %ld]", path, key,
		    v, lo, hi);
	return x;
}

static void meta_floats3(Stream *s, const char *path, const char *key, float *out)
{
	const char *v = need(s, path, key);
	char *end;
	const char *p = v;
	for (int i = 0; i < 3; i++) {
		out[i] = strtof(p, &end);
		if (end == p || (i < 2 && *end != ',') || (i == 2 && *end))
			die("%s: meta %s=%s: need 3 comma-separated numbers", path, key, v);
		p = end + 1;
	}
}

Stream *model_load_begin(Model *m, const char *path, const char *want)
{
	Stream *s = xstream_open_read(path);
	const char *kind = stream_meta_get(s, "kind");
	if (!kind || strcmp(kind, want))
		die("%s: not a cnnpipe %s (kind=%s)", path, want, kind ? kind : "none");
	const char *arch = need(s, path, "arch");
	const char *h = need(s, path, "head");
	int head = !strcmp(h, "fastai") ? HEAD_FASTAI
	         : !strcmp(h, "imagenet") ? HEAD_IMAGENET : 0;
	if (!head)
		die("%s: meta head=%s: need fastai or imagenet", path, h);
	int K = (int)meta_long(s, path, "num_classes", 1, 100000);
	int size = (int)meta_long(s, path, "input_size", 1, 4096);
	const char *cfg = stream_meta_get(s, "darknet_cfg");
	char err[512];
	// the head's weights come from the file: no init to overwrite
	ModelSpec spec = { .arch = arch, .head = head, .num_classes = K,
	                   .in_size = size, .cfg_text = cfg,
	                   .cfg_len = cfg ? strlen(cfg) : 0 };
	if (model_build(m, &spec, err, sizeof err) < 0)
		die("%s: %s", path, err);
	if (m->num_classes != K)
		die("%s: num_classes=%d but the classifier has %d", path, K,
		    m->num_classes);
	long ch = meta_long(s, path, "channels", 1, 4096);
	if (ch != m->in_c)
		die("%s: meta channels=%ld but the %s network takes %d", path, ch,
		    m->arch, m->in_c);
	long groups = meta_long(s, path, "groups", 1, 1000);
	if (groups != m->ngroups)
		die("%s: meta groups=%ld but the %s network has %d layer groups",
		    path, groups, m->arch, m->ngroups);
	meta_floats3(s, path, "mean", m->mean);
	meta_floats3(s, path, "std", m->std);
	for (int i = 0; i < 3; i++)
		if (!(m->std[i] > 0))
			die("%s: meta std: must be positive", path);
	const char *v = stream_meta_get(s, "classes");
	if (v)
		m->classes = xstrdup(v);
	v = stream_meta_get(s, "provenance");
	if (v)
		m->provenance = xstrdup(v);
	if (stream_meta_get(s, "frozen"))
		model_freeze_to(m, (int)meta_long(s, path, "frozen", 0, m->ngroups));
	Record r;
	record_init(&r);
	if (!xstream_read_record(s, &r))
		die("%s: no tensor record", path);
	if (model_adopt_params(m, &r, path, err, sizeof err) < 0)
		die("%s", err);
	record_free(&r);
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
