// The one check of a whole model (model_check.h).
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "model_check.h"

static int check_classes(const Model *m, char *err, size_t errlen)
{
	if (!m->classes)
		return 0;
	int n = 1;
	const char *name = m->classes;
	for (const char *p = m->classes;; p++) {
		if (*p == '\n') {
			snprintf(err, errlen, "classes: a class name holds a newline");
			return -1;
		}
		if (*p == ',' || !*p) {
			if (p == name) {
				snprintf(err, errlen, "classes: an empty class name in '%.200s'",
				         m->classes);
				return -1;
			}
			if (!*p)
				break;
			n++;
			name = p + 1;
		}
	}
	if (n != m->num_classes) {
		snprintf(err, errlen, "classes: %d names (%.200s) for num_classes=%d",
		         n, m->classes, m->num_classes);
		return -1;
	}
	return 0;
}

static int check_meta(const Model *m, char *err, size_t errlen)
{
	int lo = m->head == HEAD_FASTAI ? 2 : 1;
	if (m->head != HEAD_FASTAI && m->head != HEAD_IMAGENET) {
		snprintf(err, errlen, "head %d: neither fastai nor imagenet", m->head);
		return -1;
	}
	if (m->num_classes < lo || m->num_classes > MODEL_MAX_CLASSES) {
		snprintf(err, errlen, "num_classes=%d: need %d to %d", m->num_classes,
		         lo, MODEL_MAX_CLASSES);
		return -1;
	}
	if (check_classes(m, err, errlen) < 0)
		return -1;
	if (m->in_c != 3 || m->in_size < 1 || m->in_size > MODEL_MAX_INPUT) {
		snprintf(err, errlen, "input %dx%dx%d: need 3 channels and a side of "
		         "1 to %d", m->in_c, m->in_size, m->in_size, MODEL_MAX_INPUT);
		return -1;
	}
	for (int k = 0; k < 3; k++)
		if (!isfinite(m->mean[k]) || !isfinite(m->std[k]) || !(m->std[k] > 0)) {
			snprintf(err, errlen, "mean %g, std %g of channel %d: need finite "
			         "numbers, std > 0", m->mean[k], m->std[k], k);
			return -1;
		}
	if (m->ngroups < 1 || m->frozen < 0 || m->frozen > m->ngroups) {
		snprintf(err, errlen, "%d layer groups, %d frozen", m->ngroups,
		         m->frozen);
		return -1;
	}
	if (!strcmp(m->arch, "darknet") != !!m->darknet_cfg) {
		snprintf(err, errlen, "a darknet_cfg goes with arch darknet, and only "
		         "with it");
		return -1;
	}
	return 0;
}

// NaN or infinite weights give NaN activations (and a negative variance a
// NaN square root) with no error anywhere downstream.
static int check_params(const Model *m, char *err, size_t errlen)
{
	for (int i = 0; i < m->params.n; i++) {
		const Tensor *t = &m->params.t[i];
		if (t->dtype != DT_F32 || !t->data) {
			snprintf(err, errlen, "tensor %s: not f32 parameters", t->name);
			return -1;
		}
		const float *p = t->data;
		int64_t n = tensor_numel(t);
		for (int64_t k = 0; k < n; k++)
			if (!isfinite(p[k])) {
				snprintf(err, errlen, "tensor %s[%lld] is %g: parameters are "
				         "finite", t->name, (long long)k, (double)p[k]);
				return -1;
			}
	}
	for (int i = 0; i < m->n; i++) {
		const Node *d = &m->nodes[i];
		if (d->op != OP_BN)
			continue;
		const Tensor *t = &m->params.t[d->rv];
		const float *p = t->data;
		for (int64_t k = 0; k < tensor_numel(t); k++)
			if (p[k] < 0) {
				snprintf(err, errlen, "tensor %s[%lld] is %g: a variance is "
				         ">= 0", t->name, (long long)k, (double)p[k]);
				return -1;
			}
	}
	return 0;
}

int model_check(const Model *m, char *err, size_t errlen)
{
	if (check_meta(m, err, errlen) < 0)
		return -1;
	return check_params(m, err, errlen);
}
