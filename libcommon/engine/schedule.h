// Learning-rate schedules, per batch, exactly as fast.ai 0.7 computes them
// (old/fastai/sgdr.py: CosAnneal, LR_Finder; learner.py: fit, sum_geom):
// each returns the factor of the base learning rates (one per layer group)
// for the next batch and advances.
#ifndef CNNPIPE_SCHEDULE_H
#define CNNPIPE_SCHEDULE_H
#include <stdint.h>

enum { SCHED_CONSTANT, SCHED_SGDR, SCHED_LRFIND_EXP, SCHED_LRFIND_LINEAR };

typedef struct {
	int kind;
	int64_t iteration;    // batches done
	// SGDR (CosAnneal)
	double nb;            // batches of the current cycle
	double cycle_mult;
	int64_t cycle_iter, cycle_count;
	// LR finder
	double lr_mult;
} Schedule;

// fast.ai fit(lrs, n_cycle, cycle_len, cycle_mult): the number of epochs.
// Without cycle_len (0) the rate is constant for n_cycle epochs; with it
// n_cycle*cycle_len epochs when cycle_mult is 1, else
// ceil(cycle_len*(1 - mult^n)/(1 - mult)) (sum_geom).
int64_t fit_epochs(int n_cycle, int cycle_len, double cycle_mult);

// SGDR over cycles of batches_per_epoch*cycle_len batches, each cycle_mult
// times the last; cycle_len 0: constant.
void sched_fit(Schedule *s, int64_t batches_per_epoch, int cycle_len,
               double cycle_mult);
// The LR range test from start to end over nb batches: factor
// (end/start)^(k/nb) (exponential) or (end/start)/nb * k (linear, fast.ai's:
// 0 at k = 0).
void sched_lrfind(Schedule *s, int64_t nb, double start, double end, int linear);
// The factor for the next batch (advances the schedule).
double sched_next(Schedule *s);
// Whether the batch sched_next was last called for ended a cycle (SGDR:
// the restart follows; constant: every epoch_batches batches).
int sched_cycle_ended(const Schedule *s);

// fast.ai's smoothed training loss: avg = 0.98*avg + 0.02*loss, shown
// debiased, avg/(1 - 0.98^k) after k batches (model.py fit, avg_mom).
typedef struct {
	double avg;
	int64_t k;
} SmoothLoss;
double smooth_loss_add(SmoothLoss *s, double loss);   // returns the debiased value

#endif
