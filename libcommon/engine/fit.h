// fast.ai 0.7's fit (old/fastai/model.py fit, learner.py fit_gen): epochs of
// shuffled batches with a per-batch learning-rate schedule, the smoothed
// loss, validation and fast.ai's epoch line after each epoch; resumable
// checkpoints; the LR range test (lr_find) on the same loop.
#ifndef CNNPIPE_FIT_H
#define CNNPIPE_FIT_H
#include <stdint.h>
#include <stdio.h>
#include "data_parallel.h"
#include "optim.h"
#include "schedule.h"
#include "train_data.h"
#include "trainer.h"

typedef struct {
	int n_cycle, cycle_len;
	double cycle_mult;
	double lr[OPTIM_MAX_GROUPS];  // one per layer group
	float momentum, wd;
	int bs;
	uint64_t seed;
	const char *out;              // the model written at the end
	const char *checkpoint;       // written after every epoch and on a stop request
	const char *save_cycles;      // PREFIX: PREFIX_cyc_<k>.model after cycle k
	FILE *log;                    // a TSV row per batch, or NULL
	FILE *lines;                  // fast.ai's epoch lines (stdout)
	int progress;                 // a progress bar on stderr
	DataParallel *dp;             // the ranks of a data-parallel job (or
	                              // NULL: this process alone); only rank 0
	                              // writes out, checkpoint, save_cycles
} FitSpec;

// Where a run is: what a checkpoint holds besides the weights and the
// momentum buffers.
typedef struct {
	int64_t epoch, batch;         // the next batch
	Schedule sched;
	SmoothLoss sl;
	Rng drop;                     // dropout draws
	Rng shuffle;                  // the epoch shuffle, as at the start of `epoch`
	int64_t consumed;             // images read
	int ranks;                    // of the data-parallel job that saved it
} FitState;

// Trains t's model on train (validating on valid when not NULL) as spec
// says, from *st (zeroed for a fresh run, or a checkpoint's).  Writes
// spec->out at the end.  Dies on a NaN or infinite loss naming epoch and
// batch (the last checkpoint stays); on a stop request writes the
// checkpoint and dies saying how to resume.
void fit_run(const FitSpec *spec, Trainer *t, TrainData *train,
             TrainData *valid, FitState *st);

// The options of a fit as one string, saved in a checkpoint and compared
// on resume (the ghost batch of batch norm among them when it is not the
// whole batch: a run resumes under any number of ranks with the same).
void fit_describe(const FitSpec *spec, int ngroups, int frozen, int mode,
                  char *out, size_t len);

// Checkpoints (kind=checkpoint): the model's metadata and parameters, the
// momentum buffers, the state and the description.
void checkpoint_save(const char *path, Trainer *t, const FitState *st,
                     const char *desc);
// Loads a checkpoint into m (built from its metadata), st and the
// momentum buffers (returned in v, a Record to init first); its description
// is copied into desc.
void checkpoint_load(const char *path, Model *m, FitState *st, Record *v,
                     char *desc, size_t desclen);

// lr_find: lr from start to end (factor per sgdr.py LR_Finder) over iters
// batches (0: one epoch; more than an epoch cycles the data), stopping when
// the smoothed loss is NaN or over 4x the best (updated after iteration
// 10); writes "iteration lr loss smoothed" rows to out; the weights in t
// move (the caller does not save them).  Returns the suggested learning
// rate and the lr of the minimum in *at_min.
double fit_lrfind(Trainer *t, TrainData *train, const double *lr0, double end,
                  int64_t iters, int linear, uint64_t seed, FILE *out,
                  double *at_min);

#endif
