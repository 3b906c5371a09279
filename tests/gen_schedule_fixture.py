#!/usr/bin/python3
# The learning-rate factors of fast.ai 0.7's schedules, batch by batch, for
# tests/fixtures/schedules.tsv (read by tests/unit/test_fit.c).  Written from
# the formulas of old/fastai/sgdr.py (CosAnneal.calc_lr, LR_Finder.calc_lr)
# and learner.py (fit: nb = len(trn_dl)*cycle_len, sum_geom), in numpy
# float64 as fast.ai computes them; 32 batches an epoch (2000 images, bs 64).
# usage: /usr/bin/python3 tests/gen_schedule_fixture.py > tests/fixtures/schedules.tsv
import math

import numpy as np

BPE = 32


def sum_geom(a, r, n):
    return a * n if r == 1 else math.ceil(a * (1 - r ** n) / (1 - r))


def cos_anneal(nb, cycle_mult, batches):
    # calc_lr is called with iteration = 0, 1, ... before each batch
    out, cycle_iter = [], 0
    for iteration in range(batches):
        if iteration < nb / 20:
            cycle_iter += 1
            out.append(1 / 100.)
            continue
        cos_out = np.cos(np.pi * cycle_iter / nb) + 1
        cycle_iter += 1
        if cycle_iter == nb:
            cycle_iter = 0
            nb *= cycle_mult
        out.append(1 / 2 * cos_out)
    return out


def lr_finder(nb, start, end, linear):
    ratio = end / start
    mult = ratio / nb if linear else ratio ** (1 / nb)
    return [mult * k if linear else mult ** k for k in range(nb)]


rows = []
# fit(1e-2, 3, cycle_len=1, cycle_mult=2): 1 + 2 + 4 = 7 epochs
rows += [("fit", k, f) for k, f in
         enumerate(cos_anneal(BPE * 1, 2, sum_geom(1, 2, 3) * BPE))]
# fit(1e-2, 1): constant
rows += [("fit_const", k, 1.0) for k in range(BPE)]
rows += [("lrfind", k, f) for k, f in enumerate(lr_finder(BPE, 1e-5, 10, False))]
rows += [("lrfind_linear", k, f) for k, f in enumerate(lr_finder(BPE, 1e-5, 10, True))]
for kind, k, f in rows:
    print("%s\t%d\t%.17g" % (kind, k, f))
