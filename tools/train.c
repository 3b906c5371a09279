// train: fast.ai's fit as a pipeline stage — the head on activations, or
// the network on images (frozen body, or unfrozen with differential
// learning rates), SGD with momentum and SGDR; resumable.  See train(1).
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/engine/data_parallel.h"
#include "libcommon/engine/fit.h"
#include "libcommon/engine/model_file.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/util/progress.h"
#include "libcommon/util/signals.h"
#include "libcommon/util/threads.h"

#define USAGE "train -m MODEL -o OUT [--valid STREAM] [--lr LR | --lr LR0,LR1,LR2] " \
              "[--cycles N] [--cycle-len L] [--cycle-mult M] [--unfreeze | --freeze-to G] " \
              "[-b 64] [--bn-batch B] [--momentum 0.9] [--wd 0] [--seed N] [--save-cycles PREFIX] " \
              "[--log FILE] [--resume CKPT] [--precision f32] [-j threads] [STREAM]"

// "1e-2" or "1e-4,1e-3,1e-2"; returns how many.
static int parse_lrs(const char *arg, double *lr)
{
	int n = 0;
	char *dup = xstrdup(arg), *save = NULL;
	for (char *p = strtok_r(dup, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		if (n == OPTIM_MAX_GROUPS)
			die_usage("--lr: at most %d rates", OPTIM_MAX_GROUPS);
		lr[n++] = parse_double("--lr", p, 0, 1e6);
	}
	free(dup);
	if (!n)
		die_usage("--lr: no rate in '%s'", arg);
	return n;
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, USAGE);
	const char *model = NULL, *out = NULL, *validp = NULL, *resume = NULL,
	           *logp = NULL, *lrarg = "1e-2";
	FitSpec spec = { .n_cycle = 1, .cycle_mult = 1, .momentum = 0.9f, .bs = 64,
	                 .seed = 1, .lines = stdout };
	long threads = num_cores(), freeze_to = -1;
	int unfreeze = 0, bn_batch = 0, progress = 0, bf16 = 0;
	enum { O_VALID = 256, O_LR, O_CYCLES, O_CLEN, O_CMULT, O_UNFREEZE, O_FREEZE,
	       O_MOM, O_WD, O_SEED, O_SAVE, O_LOG, O_RESUME, O_PROGRESS, O_BNB, O_PREC };
	static const struct option longopts[] = {
		{ "model", required_argument, 0, 'm' }, { "output", required_argument, 0, 'o' },
		{ "valid", required_argument, 0, O_VALID }, { "lr", required_argument, 0, O_LR },
		{ "cycles", required_argument, 0, O_CYCLES },
		{ "cycle-len", required_argument, 0, O_CLEN },
		{ "cycle-mult", required_argument, 0, O_CMULT },
		{ "unfreeze", no_argument, 0, O_UNFREEZE },
		{ "freeze-to", required_argument, 0, O_FREEZE },
		{ "batch", required_argument, 0, 'b' },
		{ "bn-batch", required_argument, 0, O_BNB },
		{ "momentum", required_argument, 0, O_MOM }, { "wd", required_argument, 0, O_WD },
		{ "seed", required_argument, 0, O_SEED },
		{ "save-cycles", required_argument, 0, O_SAVE },
		{ "log", required_argument, 0, O_LOG }, { "resume", required_argument, 0, O_RESUME },
		{ "threads", required_argument, 0, 'j' },
		{ "progress", no_argument, 0, O_PROGRESS },
		{ "precision", required_argument, 0, O_PREC },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "m:o:b:j:", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case 'o': out = optarg; break;
		case O_VALID: validp = optarg; break;
		case O_LR: lrarg = optarg; break;
		case O_CYCLES: spec.n_cycle = (int)parse_long("--cycles", optarg, 1, 1000); break;
		case O_CLEN: spec.cycle_len = (int)parse_long("--cycle-len", optarg, 1, 1000); break;
		case O_CMULT: spec.cycle_mult = parse_double("--cycle-mult", optarg, 1, 100); break;
		case O_UNFREEZE: unfreeze = 1; break;
		case O_FREEZE: freeze_to = parse_long("--freeze-to", optarg, 0, OPTIM_MAX_GROUPS); break;
		case 'b': spec.bs = (int)parse_long("-b", optarg, 1, 4096); break;
		case O_BNB: bn_batch = (int)parse_long("--bn-batch", optarg, 1, 4096); break;
		case O_MOM: spec.momentum = (float)parse_double("--momentum", optarg, 0, 1); break;
		case O_WD: spec.wd = (float)parse_double("--wd", optarg, 0, 1); break;
		case O_SEED: spec.seed = (uint64_t)parse_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
		case O_SAVE: spec.save_cycles = optarg; break;
		case O_LOG: logp = optarg; break;
		case O_RESUME: resume = optarg; break;
		case 'j': threads = parse_long("-j", optarg, 1, 256); break;
		case O_PROGRESS: progress = 1; break;
		case O_PREC:
			if (strcmp(optarg, "f32") && strcmp(optarg, "bf16"))
				die_usage("--precision: f32 or bf16, not '%s'", optarg);
			bf16 = !strcmp(optarg, "bf16");
			break;
		default: die_usage(NULL);
		}
	}
	if ((!model && !resume) || !out)
		die_usage("-m MODEL (or --resume CKPT) and -o OUT are required");
	if (!strcmp(out, "-"))
		die_usage("-o: a file (the checkpoint goes beside it)");
	if (unfreeze && freeze_to >= 0)
		die_usage("--unfreeze and --freeze-to exclude each other");
	if (argc - optind > 1)
		die_usage("one STREAM at most");
	if (validp && !strcmp(validp, "-"))
		die_usage("--valid: a file (it is read after every epoch)");
	const char *inpath = optind < argc ? argv[optind] : "-";
	double lrs[OPTIM_MAX_GROUPS];
	int nlr = parse_lrs(lrarg, lrs);

	// the ranks of an mpirun job (or this process alone), before the
	// device: each rank's GPU is chosen there
	DataParallel dp;
	dp_open(&dp, spec.bs, bn_batch);
	spec.dp = &dp;
	char rankname[64];
	if (!dp_writer(&dp)) {   // only rank 0 writes the lines and the log
		snprintf(rankname, sizeof rankname, "%s (rank %d)", progname, dp.rank);
		progname = rankname;
		spec.lines = NULL;
		logp = NULL;
	} else if (progress) {
		progress_force(1);
	}
	const Backend *be = device_pick(NULL);
	be->set_threads((int)threads);
	if (bf16 && !be->set_bf16)
		die("--precision bf16: the %s backend has no bf16 products", be->name);
	if (bf16)
		be->set_bf16(1);
	Model m;
	FitState st;
	memset(&st, 0, sizeof st);
	Record v;
	record_init(&v);
	char saved[1024] = "";
	const char *mpath = resume ? resume : model;
	if (resume)
		checkpoint_load(resume, &m, &st, &v, saved, sizeof saved);
	else
		model_load(&m, model);
	if (m.head != HEAD_FASTAI)
		die("%s: an ImageNet classifier has no fast.ai head to train", mpath);
	if (nlr != 1 && nlr != m.ngroups)
		die_usage("--lr: %d rates; a list needs one per layer group (%d)", nlr, m.ngroups);
	for (int g = 0; g < m.ngroups; g++)
		spec.lr[g] = nlr == 1 ? lrs[0] : lrs[g];
	if (freeze_to >= m.ngroups)
		die_usage("--freeze-to %ld: the model has %d layer groups", freeze_to, m.ngroups);
	if (!resume && (unfreeze || freeze_to >= 0))
		model_freeze_to(&m, unfreeze ? 0 : (int)freeze_to);

	TrainData train, valid;
	train_data_open(&train, inpath, &m, mpath, spec.bs, 1);
	train_data_threads(&train, (int)threads);
	if (validp) {
		train_data_open(&valid, validp, &m, mpath, spec.bs, 0);
		train_data_threads(&valid, (int)threads);
	}
	if (validp && valid.kind != train.kind)
		die("%s: validation data must be what the training data are (%s)", validp,
		    train.kind == DATA_ACTIVATIONS ? "activations" : "images");
	int mode = train.kind == DATA_ACTIVATIONS ? TRAIN_HEAD
	         : m.frozen >= m.ngroups - 1 ? TRAIN_FROZEN : TRAIN_ALL;
	if (mode == TRAIN_HEAD && m.frozen < m.ngroups - 1)
		die("%s: activations train the head alone: unfreezing needs images", inpath);
	char ck[4096];
	snprintf(ck, sizeof ck, "%s.ckpt", out);
	spec.out = out;
	spec.checkpoint = ck;
	Trainer t;
	trainer_init(&t, &m, be, mode, spec.bs, spec.momentum, spec.wd, spec.seed);
	dp_attach(&dp, &t);
	if (resume) {
		char now[1024], err[256];
		fit_describe(&spec, m.ngroups, m.frozen, mode, now, sizeof now);
		if (strcmp(now, saved))
			die("%s: made by another fit (%s), not this one (%s)", resume, saved, now);
		if (sgd_restore(&t.opt, &v, err, sizeof err) < 0)
			die("%s: %s", resume, err);
	}
	if (logp) {
		spec.log = fopen(logp, "a");
		if (!spec.log)
			die_errno("%s", logp);
	}
	stop_on_signals();
	fit_run(&spec, &t, &train, validp ? &valid : NULL, &st);
	if (spec.log && fclose(spec.log))
		die_errno("%s", logp);
	dp_close(&dp);
	trainer_free(&t);
	train_data_close(&train);
	if (validp)
		train_data_close(&valid);
	record_free(&v);
	model_free(&m);
	return 0;
}
