// lrfind: fast.ai's learning-rate range test (lr_find) on what train
// learns from; a table of lr and loss on stdout, a suggestion on stderr,
// the model file untouched.  See lrfind(1).
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/engine/fit.h"
#include "libcommon/engine/model_file.h"
#include "libcommon/util/err.h"
#include "libcommon/util/threads.h"

#define USAGE "lrfind -m MODEL [--start 1e-5] [--end 10] [--iters N] [--linear] " \
              "[--unfreeze | --freeze-to G] [-b 64] [--momentum 0.9] [--wd 0] " \
              "[--seed N] [-j threads] [STREAM] > LR.tsv"

int main(int argc, char **argv)
{
	prog_init(argc, argv, USAGE);
	const char *model = NULL;
	// fast.ai 0.7 learner.py lr_find(start_lr=1e-5, end_lr=10)
	double start = 1e-5, end = 10, momentum = 0.9, wd = 0;
	long iters = 0, bs = 64, threads = num_cores(), freeze_to = -1;
	uint64_t seed = 1;
	int linear = 0, unfreeze = 0;
	enum { O_START = 256, O_END, O_ITERS, O_LINEAR, O_UNFREEZE, O_FREEZE, O_MOM,
	       O_WD, O_SEED };
	static const struct option longopts[] = {
		{ "model", required_argument, 0, 'm' },
		{ "start", required_argument, 0, O_START }, { "end", required_argument, 0, O_END },
		{ "iters", required_argument, 0, O_ITERS }, { "linear", no_argument, 0, O_LINEAR },
		{ "unfreeze", no_argument, 0, O_UNFREEZE },
		{ "freeze-to", required_argument, 0, O_FREEZE },
		{ "batch", required_argument, 0, 'b' },
		{ "momentum", required_argument, 0, O_MOM }, { "wd", required_argument, 0, O_WD },
		{ "seed", required_argument, 0, O_SEED },
		{ "threads", required_argument, 0, 'j' },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "m:b:j:", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case O_START: start = parse_double("--start", optarg, 1e-12, 1e6); break;
		case O_END: end = parse_double("--end", optarg, 1e-12, 1e6); break;
		case O_ITERS: iters = parse_long("--iters", optarg, 1, 100000000); break;
		case O_LINEAR: linear = 1; break;
		case O_UNFREEZE: unfreeze = 1; break;
		case O_FREEZE: freeze_to = parse_long("--freeze-to", optarg, 0, OPTIM_MAX_GROUPS); break;
		case 'b': bs = parse_long("-b", optarg, 1, 4096); break;
		case O_MOM: momentum = parse_double("--momentum", optarg, 0, 1); break;
		case O_WD: wd = parse_double("--wd", optarg, 0, 1); break;
		case O_SEED: seed = (uint64_t)parse_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
		case 'j': threads = parse_long("-j", optarg, 1, 256); break;
		default: die_usage(NULL);
		}
	}
	if (!model)
		die_usage("-m MODEL is required");
	if (!(end > start))
		die_usage("--end must be above --start");
	if (unfreeze && freeze_to >= 0)
		die_usage("--unfreeze and --freeze-to exclude each other");
	if (argc - optind > 1)
		die_usage("one STREAM at most");
	const char *inpath = optind < argc ? argv[optind] : "-";
	const Backend *be = device_pick(NULL);
	be->set_threads((int)threads);
	Model m;
	model_load(&m, model);
	if (m.head != HEAD_FASTAI)
		die("%s: an ImageNet classifier has no fast.ai head to train", model);
	if (freeze_to >= m.ngroups)
		die_usage("--freeze-to %ld: the model has %d layer groups", freeze_to, m.ngroups);
	if (unfreeze || freeze_to >= 0)
		model_freeze_to(&m, unfreeze ? 0 : (int)freeze_to);
	TrainData train;
	train_data_open(&train, inpath, &m, model, (int)bs, 1);
	train_data_threads(&train, (int)threads);
	int mode = train.kind == DATA_ACTIVATIONS ? TRAIN_HEAD
	         : m.frozen >= m.ngroups - 1 ? TRAIN_FROZEN : TRAIN_ALL;
	if (mode == TRAIN_HEAD && m.frozen < m.ngroups - 1)
		die("%s: activations train the head alone: unfreezing needs images", inpath);
	Trainer t;
	trainer_init(&t, &m, be, mode, (int)bs, (float)momentum, (float)wd, seed);
	double lr0[OPTIM_MAX_GROUPS];
	for (int g = 0; g < m.ngroups; g++)
		lr0[g] = start;
	double at_min;
	double lr = fit_lrfind(&t, &train, lr0, end, iters, linear, seed, stdout, &at_min);
	if (isnan(lr))
		fprintf(stderr, "lrfind: too few iterations for a suggestion\n");
	else
		fprintf(stderr, "lrfind: suggested learning rate %.3g: an order of magnitude "
		        "below %.3g, where the smoothed loss is lowest (iterations 10 to "
		        "the 5th last, as fast.ai's plot)\n", lr, at_min);
	trainer_free(&t);
	train_data_close(&train);
	model_free(&m);
	return 0;
}
