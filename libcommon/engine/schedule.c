// Learning-rate schedules and the smoothed loss (schedule.h).
#include <math.h>
#include <string.h>
#include "schedule.h"

int64_t fit_epochs(int n_cycle, int cycle_len, double cycle_mult)
{
	if (cycle_len <= 0)
		return n_cycle;
	if (cycle_mult == 1)
		return (int64_t)n_cycle * cycle_len;
	// learner.py sum_geom(a, r, n) = ceil(a*(1 - r^n)/(1 - r))
	return (int64_t)ceil(cycle_len * (1 - pow(cycle_mult, n_cycle)) /
	                     (1 - cycle_mult));
}

void sched_fit(Schedule *s, int64_t batches_per_epoch, int cycle_len,
               double cycle_mult)
{
	memset(s, 0, sizeof *s);
	s->kind = cycle_len > 0 ? SCHED_SGDR : SCHED_CONSTANT;
	// learner.py fit_gen: CosAnneal(layer_opt, len(data.trn_dl)*cycle_len,
	// on_cycle_end, cycle_mult=cycle_mult)
	s->nb = (double)batches_per_epoch * (cycle_len > 0 ? cycle_len : 1);
	s->cycle_mult = cycle_mult;
}

void sched_lrfind(Schedule *s, int64_t nb, double start, double end, int linear)
{
	memset(s, 0, sizeof *s);
	s->kind = linear ? SCHED_LRFIND_LINEAR : SCHED_LRFIND_EXP;
	s->nb = (double)nb;
	// sgdr.py LR_Finder: ratio = end_lr/start; lr_mult = ratio/nb (linear)
	// or ratio**(1/nb)
	double ratio = end / start;
	s->lr_mult = linear ? ratio / (double)nb : pow(ratio, 1.0 / (double)nb);
}

double sched_next(Schedule *s)
{
	double f = 1;
	switch (s->kind) {
	case SCHED_CONSTANT:
		s->cycle_iter++;
		if (s->cycle_iter == (int64_t)s->nb) {
			s->cycle_iter = 0;
			s->cycle_count++;
		}
		break;
	case SCHED_SGDR:
		// sgdr.py CosAnneal.calc_lr: a warm-up at 1/100 while the global
		// iteration is under nb/20 (of the current nb), then
		// lr/2*(cos(pi*i/nb) + 1); at the cycle's end i = 0, nb *= mult.
		if ((double)s->iteration < s->nb / 20) {
			s->cycle_iter++;
			f = 1.0 / 100;
			break;
		}
		f = cos(M_PI * (double)s->cycle_iter / s->nb) + 1;
		s->cycle_iter++;
		if ((double)s->cycle_iter == s->nb) {
			s->cycle_iter = 0;
			s->nb *= s->cycle_mult;
			s->cycle_count++;
		}
		f /= 2;
		break;
	case SCHED_LRFIND_EXP:
		f = pow(s->lr_mult, (double)s->iteration);
		break;
	case SCHED_LRFIND_LINEAR:
		f = s->lr_mult * (double)s->iteration;
		break;
	}
	s->iteration++;
	return f;
}

int sched_cycle_ended(const Schedule *s)
{
	return (s->kind == SCHED_SGDR || s->kind == SCHED_CONSTANT) &&
	       s->iteration > 0 && s->cycle_iter == 0;
}

double smooth_loss_add(SmoothLoss *s, double loss)
{
	s->avg = s->avg * 0.98 + loss * (1 - 0.98);
	s->k++;
	return s->avg / (1 - pow(0.98, (double)s->k));
}
