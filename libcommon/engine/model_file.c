// Model files: meta (what to rebuild the graph from) + one record of tensors.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backbone.h"
#include "libcommon/util/err.h"
#include "model_file.h"
#include "formats/stream.h"

void model_save(const Net *net, const char *path)
{
	Stream *s = xstream_open_write(path);
	stream_meta_set(s, "kind", "model");
	stream_meta_set(s, "arch", net->arch);
	stream_meta_set(s, "head", net->head == HEAD_FASTAI ? "fastai" : "imagenet");
	stream_meta_setf(s, "num_classes", "%d", net->num_classes);
	if (net->classes)
		stream_meta_set(s, "classes", net->classes);
	stream_meta_setf(s, "input_size", "%d", net->in_size);
	stream_meta_setf(s, "channels", "%d", net->in_c);
	stream_meta_setf(s, "mean", "%.9g,%.9g,%.9g", net->mean[0], net->mean[1],
	                 net->mean[2]);
	stream_meta_setf(s, "std", "%.9g,%.9g,%.9g", net->std[0], net->std[1],
	                 net->std[2]);
	stream_meta_setf(s, "groups", "%d", net->ngroups);
	stream_meta_setf(s, "frozen", "%d", net->frozen);
	if (net->provenance)
		stream_meta_set(s, "provenance", net->provenance);
	if (net->darknet_cfg)
		stream_meta_set(s, "darknet_cfg", net->darknet_cfg);
	xstream_write_record(s, &net->params);
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

void model_load(Net *net, const char *path)
{
	Stream *s = xstream_open_read(path);
	const char *kind = stream_meta_get(s, "kind");
	if (!kind || strcmp(kind, "model"))
		die("%s: not a cnnpipe model (kind=%s)", path, kind ? kind : "none");
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
	if (net_build(net, arch, head, K, size, cfg, cfg ? strlen(cfg) : 0, 0,
	              err, sizeof err) < 0)
		die("%s: %s", path, err);
	if (net->num_classes != K)
		die("%s: num_classes=%d but the classifier has %d", path, K,
		    net->num_classes);
	meta_floats3(s, path, "mean", net->mean);
	meta_floats3(s, path, "std", net->std);
	for (int i = 0; i < 3; i++)
		if (!(net->std[i] > 0))
			die("%s: meta std: must be positive", path);
	const char *v = stream_meta_get(s, "classes");
	if (v)
		net->classes = strdup(v);
	v = stream_meta_get(s, "provenance");
	if (v)
		net->provenance = strdup(v);
	if (stream_meta_get(s, "frozen"))
		net_freeze_to(net, (int)meta_long(s, path, "frozen", 0, net->ngroups));
	Record r;
	record_init(&r);
	if (!xstream_read_record(s, &r))
		die("%s: no tensor record", path);
	if (net_load_tensors(net, &r, 0, 1, path, err, sizeof err) < 0)
		die("%s", err);
	Record extra;
	record_init(&extra);
	if (xstream_read_record(s, &extra))
		die("%s: more than one record", path);
	record_free(&extra);
	record_free(&r);
	stream_close(s);
}
