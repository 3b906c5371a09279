// Predictions in eval mode, their TTA mean, the predictions stream
// (predict.h).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "formats/stream_shard.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "predict.h"

void predictor_init(Predictor *p, Model *m, const Backend *be, int input, int cap)
{
	memset(p, 0, sizeof *p);
	p->m = m;
	p->input = input;
	p->cap = cap;
	p->K = m->nodes[m->n - 1].C;
	p->F = m->head == HEAD_FASTAI ? m->nodes[m->feat].C : 0;
	if (input == PREDICT_FEATURES && m->head != HEAD_FASTAI)
		die("predictor_init: activations need a fast.ai head");
	p->in_per = input == PREDICT_FEATURES ? (size_t)p->F
	          : (size_t)m->in_c * m->in_size * m->in_size;
	exec_init(&p->e, m, be);
	if (!be->host_memory)
		p->xdev = be->alloc((size_t)cap * p->in_per * sizeof(float));
	if (input == PREDICT_IMAGES && m->head == HEAD_FASTAI)
		p->fdev = be->alloc((size_t)cap * p->F * sizeof(float));
	p->logp = xmalloc_array((size_t)cap * p->K, sizeof(float));
}

void predictor_free(Predictor *p)
{
	const Backend *be = p->e.be;
	be->free(p->xdev);
	be->free(p->fdev);
	free(p->logp);
	exec_free(&p->e);
	memset(p, 0, sizeof *p);
}

const float *predictor_run(Predictor *p, int N, const float *x)
{
	const Backend *be = p->e.be;
	const Model *m = p->m;
	if (N < 1 || N > p->cap)
		die("predictor_run: batch of %d (at most %d)", N, p->cap);
	const float *xd = x;
	if (p->xdev) {
		be->to_device(p->xdev, x, (size_t)N * p->in_per * sizeof(float));
		xd = p->xdev;
	}
	const float *y;
	if (p->input == PREDICT_FEATURES) {
		y = exec_forward(&p->e, N, xd, m->feat + 1, m->n - 1, 0, 0);
	} else if (p->fdev) {   // as train's TRAIN_FROZEN evaluation
		y = exec_forward_frozen_body(&p->e, N, xd, p->fdev, 0);
	} else {
		y = exec_forward(&p->e, N, xd, 0, m->n - 1, 0, 0);
	}
	be->to_host(p->logp, y, (size_t)N * p->K * sizeof(float));
	return p->logp;
}

void predict_mean_logp(int P, int K, const float *passes, int w0, float *out)
{
	for (int k = 0; k < K; k++) {
		double mx = -INFINITY;
		for (int p = 0; p < P; p++)
			if (passes[(size_t)p * K + k] > mx)
				mx = passes[(size_t)p * K + k];
		if (mx == -INFINITY || isnan(mx)) {   // every pass gives 0 (or NaN)
			out[k] = (float)mx;
			continue;
		}
		double s = 0;
		for (int p = 0; p < P; p++)
			s += (p ? 1.0 : (double)w0) * exp((double)passes[(size_t)p * K + k] - mx);
		out[k] = (float)(mx + log(s / (double)(w0 + P - 1)));
	}
}

// ---- the predictions stream ---------------------------------------------------

void pred_writer_open(PredWriter *w, const Model *m, const PredSpec *s)
{
	memset(w, 0, sizeof *w);
	w->K = m->nodes[m->n - 1].C;
	w->P = s->passes ? s->tta + 1 : 0;
	w->labelled = s->labelled;
	w->counters = !s->shard_before_end;
	record_init(&w->r);
	Stream *o = w->out = xstream_open_write("-");
	stream_meta_set(o, "kind", "predictions");
	if (m->classes)
		stream_meta_set(o, "classes", m->classes);
	stream_meta_setf(o, "num_classes", "%d", w->K);
	stream_meta_set(o, "labelled", s->labelled ? "1" : "0");
	stream_meta_set(o, "model", s->model_path);
	stream_meta_set(o, "arch", m->arch);
	stream_meta_setf(o, "tta", "%d", s->tta);
	stream_meta_setf(o, "seed", "%llu", (unsigned long long)s->seed);
	if (s->augment)
		stream_meta_set(o, "augment", s->augment);
	const char *v = stream_meta_get(s->in, "source");
	if (v)
		stream_meta_set(o, "source", v);
}

void pred_writer_put(PredWriter *w, const float *logp, const float *passes,
                     int32_t label, const char *name, const char *path,
                     uint64_t index)
{
	record_clear(&w->r);
	int64_t d[2] = { w->K, 0 };
	record_add(&w->r, "logp", DT_F32, 1, d, logp);
	if (w->P) {
		int64_t dp[2] = { w->P, w->K };
		record_add(&w->r, "passes", DT_F32, 2, dp, passes);
	}
	if (w->labelled) {
		if (label < 0 || label >= w->K)
			die("%s: record %llu: label %d, the model has %d classes", path,
			    (unsigned long long)index, label, w->K);
		record_add(&w->r, "label", DT_I32, 0, NULL, &label);
	}
	if (name)
		record_add_str(&w->r, "name", name);
	xstream_write_record(w->out, &w->r);
}

void pred_writer_finish(PredWriter *w, const Stream *in)
{
	stream_shard_counter(w->out, in, "skipped", w->counters);
	xstream_finish(w->out);
	record_free(&w->r);
	memset(w, 0, sizeof *w);
}
