// The fit loop, checkpoints and the LR finder (fit.h).
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fit.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/util/progress.h"
#include "libcommon/util/signals.h"
#include "model_file.h"

// Python's str(round(v, 6)) as fast.ai's print_stats shows a number.
static void fmt6(double v, char *out, size_t len)
{
	if (!isfinite(v)) {
		snprintf(out, len, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
		return;
	}
	snprintf(out, len, "%.6f", v);
	char *e = out + strlen(out) - 1;
	while (e > out && *e == '0' && e[-1] != '.')
		*e-- = 0;
}

static void epoch_line(FILE *f, int64_t epoch, double trn, const double *val, int nval)
{
	char b[32];
	snprintf(b, sizeof b, "%" PRId64, epoch);
	int pad = (10 - (int)strlen(b)) / 2;
	fprintf(f, "%*s%-*s", pad, "", 10 - pad, b);   // {!s:^10}
	fmt6(trn, b, sizeof b);
	fprintf(f, " %-10s", b);
	for (int i = 0; i < nval; i++) {
		fmt6(val[i], b, sizeof b);
		fprintf(f, " %-10s", b);
	}
	fprintf(f, "\n");
	fflush(f);
}

// Validation loss and accuracy over the whole set (fast.ai's average of
// batch values weighted by batch size: the overall means).
// Under several ranks each evaluates its share of every batch.
static void validate(Trainer *t, DataParallel *dp, TrainData *v, double *loss,
                     double *acc)
{
	train_data_epoch(v, NULL);
	double sum = 0;
	int64_t correct = 0;
	for (int64_t b = 0; b < train_data_batches(v); b++) {
		int N = train_data_batch(v, b);
		if (dp)
			dp_eval(dp, t, N, v->bx, v->by, &sum, &correct);
		else
			trainer_eval(t, N, v->bx, v->by, &sum, &correct);
	}
	if (dp && dp->size > 1) {
		double s[2] = { sum, (double)correct };
		dp_sum(dp, s, 2);
		sum = s[0];
		correct = (int64_t)s[1];
	}
	*loss = sum / (double)v->n;
	*acc = (double)correct / (double)v->n;
}

void fit_describe(const FitSpec *spec, int ngroups, int frozen, int mode,
                  char *out, size_t len)
{
	size_t o = (size_t)snprintf(out, len, "lr=");
	for (int g = 0; g < ngroups && o < len; g++)
		o += (size_t)snprintf(out + o, len - o, "%s%a", g ? "," : "", spec->lr[g]);
	if (o < len)
		snprintf(out + o, len - o, " cycles=%d cycle_len=%d cycle_mult=%a "
		         "bs=%d momentum=%a wd=%a seed=%" PRIu64 " frozen=%d mode=%d",
		         spec->n_cycle, spec->cycle_len, spec->cycle_mult, spec->bs,
		         (double)spec->momentum, (double)spec->wd, spec->seed, frozen, mode);
	o = strlen(out);
	if (spec->dp && spec->dp->bn_batch && o < len)
		snprintf(out + o, len - o, " bn_batch=%d", spec->dp->bn_batch);
}

static void save_cycle(const FitSpec *spec, Trainer *t, int64_t k)
{
	char path[4096];
	snprintf(path, sizeof path, "%s_cyc_%" PRId64 ".model", spec->save_cycles, k);
	exec_params_to_host(&t->e);
	model_save(t->m, path);
}

void fit_run(const FitSpec *spec, Trainer *t, TrainData *train,
             TrainData *valid, FitState *st)
{
	const Model *m = t->m;
	DataParallel *dp = spec->dp;
	int writer = !dp || dp_writer(dp);   // rank 0 alone writes
	int64_t E = fit_epochs(spec->n_cycle, spec->cycle_len, spec->cycle_mult);
	int64_t nbpe = train_data_batches(train);
	if (train->kind == DATA_IMAGES && train->epochs < E)
		die("%s: %" PRId64 " epochs of images, the schedule needs %" PRId64
		    " (augment --epochs %" PRId64 ")", train->path, train->epochs, E, E);
	st->ranks = dp ? dp->size : 1;
	int fresh = st->epoch == 0 && st->batch == 0 && st->sched.iteration == 0;
	if (fresh) {
		sched_fit(&st->sched, nbpe, spec->cycle_len, spec->cycle_mult);
		rng_seed(&st->shuffle, spec->seed, 1);
		st->drop = t->e.rng;
	} else {
		t->e.rng = st->drop;
		train_data_skip(train, st->consumed);
	}
	char desc[1024];
	fit_describe(spec, m->ngroups, m->frozen, t->mode, desc, sizeof desc);
	if (spec->lines)
		fprintf(spec->lines, "%-10s %-10s %-10s %-10s\n", "epoch", "trn_loss",
		        valid ? "val_loss" : "", valid ? "accuracy" : "");
	if (spec->log) {
		fflush(spec->log);
		if (ftell(spec->log) == 0) {
			fprintf(spec->log, "epoch\titeration");
			for (int g = 0; g < m->ngroups; g++)
				fprintf(spec->log, "\tlr%d", g);
			fprintf(spec->log, "\tloss\tsmoothed\n");
		}
	}
	Progress pr;
	progress_start(&pr, "train", (uint64_t)(E * nbpe));
	double lr[OPTIM_MAX_GROUPS];
	double shown = NAN;
	for (int64_t ep = st->epoch; ep < E; ep++) {
		Rng start = st->shuffle;
		if (train->kind == DATA_ACTIVATIONS)
			train_data_epoch(train, &st->shuffle);
		for (int64_t b = ep == st->epoch ? st->batch : 0; b < nbpe; b++) {
			int N = train_data_batch(train, b);
			double f = sched_next(&st->sched);
			for (int g = 0; g < m->ngroups; g++)
				lr[g] = spec->lr[g] * f;
			double loss = dp ? dp_step(dp, t, N, train->bx, train->by, lr)
			                 : trainer_step(t, N, train->bx, train->by, lr);
			if (!isfinite(loss))
				die("epoch %" PRId64 ", batch %" PRId64 ": the loss is %s; the last "
				    "good checkpoint is %s", ep, b, isnan(loss) ? "NaN" : "infinite",
				    spec->checkpoint ? spec->checkpoint : "(none)");
			shown = smooth_loss_add(&st->sl, loss);
			st->consumed = train->consumed;
			if (spec->log) {
				fprintf(spec->log, "%" PRId64 "\t%" PRId64, ep, st->sched.iteration);
				for (int g = 0; g < m->ngroups; g++)
					fprintf(spec->log, "\t%.9g", lr[g]);
				fprintf(spec->log, "\t%.9g\t%.9g\n", loss, shown);
			}
			progress_update(&pr, (uint64_t)(ep * nbpe + b + 1));
			// under several ranks a request any of them saw, agreed in
			// the step: they all stop after the same batch
			if (dp ? dp_stop_requested(dp) : stop_requested()) {
				int sig = stop_requested();
				char by[64];
				if (sig)
					snprintf(by, sizeof by, "signal %d", sig);
				else
					snprintf(by, sizeof by, "another rank's signal");
				FitState now = *st;
				now.epoch = ep;
				now.batch = b + 1;
				now.shuffle = start;
				now.drop = t->e.rng;
				if (spec->log)
					fflush(spec->log);
				if (!spec->checkpoint)
					die("stopped by %s at epoch %" PRId64 ", batch %" PRId64
					    " (no checkpoint asked for)", by, ep, b + 1);
				if (writer)
					checkpoint_save(spec->checkpoint, t, &now, desc);
				warn("stopped by %s at epoch %" PRId64 ", batch %" PRId64
				     ": resume with --resume %s", by, ep, b + 1, spec->checkpoint);
				// no rank ends before rank 0 has written and said so: the
				// launcher ends the others when one ends with an error
				if (dp)
					dp_barrier(dp);
				exit(EXIT_FAIL);
			}
		}
		st->epoch = ep + 1;
		st->batch = 0;
		st->drop = t->e.rng;
		progress_end(&pr);
		if (valid) {
			double vl[2];
			validate(t, dp, valid, &vl[0], &vl[1]);
			if (spec->lines)
				epoch_line(spec->lines, ep, shown, vl, 2);
		} else if (spec->lines) {
			epoch_line(spec->lines, ep, shown, NULL, 0);
		}
		if (spec->log)
			fflush(spec->log);
		if (dp)
			dp_check_same(dp, "after an epoch");
		if (writer && spec->checkpoint && ep + 1 < E)
			checkpoint_save(spec->checkpoint, t, st, desc);
		if (writer && spec->save_cycles && st->sched.kind == SCHED_SGDR &&
		    sched_cycle_ended(&st->sched))
			save_cycle(spec, t, st->sched.cycle_count - 1);
		if (ep + 1 < E)
			progress_start(&pr, "train", (uint64_t)(E * nbpe));
	}
	exec_params_to_host(&t->e);
	if (!writer)
		return;
	model_save(t->m, spec->out);
	if (spec->checkpoint)
		unlink(spec->checkpoint);   // the run is complete: -o holds it
}

// ---- checkpoints ------------------------------------------------------------

static void set_rng(Stream *s, const char *key, const Rng *r)
{
	stream_meta_setf(s, key, "%016" PRIx64 ",%016" PRIx64, r->state, r->inc);
}

void checkpoint_save(const char *path, Trainer *t, const FitState *st,
                     const char *desc)
{
	exec_params_to_host(&t->e);
	Stream *s = model_save_begin(t->m, path, "checkpoint");
	stream_meta_set(s, "fit", desc);
	stream_meta_setf(s, "epoch", "%" PRId64, st->epoch);
	stream_meta_setf(s, "batch", "%" PRId64, st->batch);
	const Schedule *c = &st->sched;
	stream_meta_setf(s, "sched", "%d,%" PRId64 ",%a,%a,%" PRId64 ",%" PRId64 ",%a",
	                 c->kind, c->iteration, c->nb, c->cycle_mult, c->cycle_iter,
	                 c->cycle_count, c->lr_mult);
	stream_meta_setf(s, "smooth", "%a,%" PRId64, st->sl.avg, st->sl.k);
	set_rng(s, "rng_dropout", &st->drop);
	set_rng(s, "rng_shuffle", &st->shuffle);
	stream_meta_setf(s, "consumed", "%" PRId64, st->consumed);
	if (st->ranks > 1)   // data-parallel: for the record (any count resumes)
		stream_meta_setf(s, "ranks", "%d", st->ranks);
	xstream_write_record(s, &t->m->params);
	xstream_write_record(s, sgd_state(&t->opt));
	xstream_finish(s);
}

static const char *ck_need(Stream *s, const char *path, const char *key)
{
	const char *v = stream_meta_get(s, key);
	if (!v)
		die("%s: not a complete checkpoint: no '%s'", path, key);
	return v;
}

static void get_rng(Stream *s, const char *path, const char *key, Rng *r)
{
	const char *v = ck_need(s, path, key);
	if (sscanf(v, "%" SCNx64 ",%" SCNx64, &r->state, &r->inc) != 2)
		die("%s: meta %s=%s: need two hex numbers", path, key, v);
}

void checkpoint_load(const char *path, Model *m, FitState *st, Record *v,
                     char *desc, size_t desclen)
{
	Stream *s = model_load_begin(m, path, "checkpoint");
	memset(st, 0, sizeof *st);
	snprintf(desc, desclen, "%s", ck_need(s, path, "fit"));
	Schedule *c = &st->sched;
	if (sscanf(ck_need(s, path, "epoch"), "%" SCNd64, &st->epoch) != 1 ||
	    sscanf(ck_need(s, path, "batch"), "%" SCNd64, &st->batch) != 1 ||
	    sscanf(ck_need(s, path, "sched"), "%d,%" SCNd64 ",%la,%la,%" SCNd64 ",%" SCNd64 ",%la",
	           &c->kind, &c->iteration, &c->nb, &c->cycle_mult, &c->cycle_iter,
	           &c->cycle_count, &c->lr_mult) != 7 ||
	    sscanf(ck_need(s, path, "smooth"), "%la,%" SCNd64, &st->sl.avg, &st->sl.k) != 2 ||
	    sscanf(ck_need(s, path, "consumed"), "%" SCNd64, &st->consumed) != 1 ||
	    st->epoch < 0 || st->batch < 0 || st->consumed < 0)
		die("%s: a damaged checkpoint (epoch, batch, sched, smooth, consumed)", path);
	get_rng(s, path, "rng_dropout", &st->drop);
	get_rng(s, path, "rng_shuffle", &st->shuffle);
	if (!xstream_read_record(s, v))
		die("%s: no momentum record", path);
	stream_close(s);
}

// ---- lr_find -------------------------------------------------------------------

double fit_lrfind(Trainer *t, TrainData *train, const double *lr0, double end,
                  int64_t iters, int linear, uint64_t seed, FILE *out,
                  double *at_min)
{
	const Model *m = t->m;
	int64_t nbpe = train_data_batches(train);
	int64_t nb = iters > 0 ? iters : nbpe;
	if (train->kind == DATA_IMAGES && nb > nbpe * train->epochs)
		die("%s: %" PRId64 " batches of images, --iters asks for %" PRId64,
		    train->path, nbpe * train->epochs, nb);
	Schedule sc;
	// sgdr.py LR_Finder: the ratio is to layer_opt.lr, the last group's
	sched_lrfind(&sc, nb, lr0[m->ngroups - 1], end, linear);
	SmoothLoss sl = { 0, 0 };
	Rng shuffle;
	rng_seed(&shuffle, seed, 1);
	double best = 1e9, lr[OPTIM_MAX_GROUPS];
	double *lrs = xmalloc_array((size_t)nb, sizeof(double));
	double *sm = xmalloc_array((size_t)nb, sizeof(double));
	int64_t k = 0;
	fprintf(out, "iteration\tlr\tloss\tsmoothed\n");
	for (int64_t ep = 0; k < nb; ep++) {
		if (train->kind == DATA_ACTIVATIONS)
			train_data_epoch(train, &shuffle);
		for (int64_t b = 0; b < nbpe && k < nb; b++) {
			int N = train_data_batch(train, b);
			double f = sched_next(&sc);
			for (int g = 0; g < m->ngroups; g++)
				lr[g] = lr0[g] * f;
			double loss = trainer_step(t, N, train->bx, train->by, lr);
			double s = smooth_loss_add(&sl, loss);
			// sgdr.py LR_Finder.on_batch_end: stop at NaN or 4x the best
			// (best kept from iteration 10 on); the batch that stops is not
			// recorded
			if (isnan(s) || s > best * 4)
				goto done;
			if (s < best && k > 10)
				best = s;
			lrs[k] = lr[m->ngroups - 1];
			sm[k] = s;
			fprintf(out, "%" PRId64 "\t%.9g\t%.9g\t%.9g\n", k, lrs[k], loss, s);
			k++;
		}
	}
done:
	fflush(out);
	// the plot's window (sgdr.py plot: n_skip 10, n_skip_end 5)
	int64_t lo = 10, hi = k - 5, at = -1;
	if (hi <= lo) {
		lo = 0;
		hi = k;
	}
	for (int64_t i = lo; i < hi; i++)
		if (at < 0 || sm[i] < sm[at])
			at = i;
	double min_lr = at >= 0 ? lrs[at] : NAN;
	free(lrs);
	free(sm);
	*at_min = min_lr;
	return min_lr / 10;
}
