# fast.ai lesson 1 (Dogs vs. Cats) as a Make pipeline of cnnpipe programs.
#
#   make train [VAR=value ...]       the top Makefile includes this file
#   make -f pipelines/lesson1.mk ... the same, once the programs are built
#   make -n train                    the lesson's commands, each stage under
#                                    its fast.ai line, without running them
#   make data, make weights          fetch dogscats.zip and torchvision's
#                                    ResNet weights, checked by sha256
#
# Every step is one file in WORK, made by one program, so Make redoes only
# what is out of date: an input newer than its output, or a stage's
# settings changed (each stage keeps them in WORK/.STAGE.opts); a fit that
# was interrupted resumes from its checkpoint.  The stages and their files:
#   imgprep      train.images valid.images   centre-cropped to SZ
#                train.scaled valid.scaled   shrunk to SCALE: augment's and
#                test.scaled                 tta's sources (test: only when
#                                            DATA/test or DATA/test1 exists)
#   pretrained   model                       the backbone and a new head
#   precompute   train.act valid.act         the frozen body's activations
#   lrfind       lr.tsv                      learn.lr_find()
#   train        head.model                  fit(LR, 1) on the activations
#   augment|train frozen.model               fit(LR, 3, cycle_len=1)
#   augment|train unfrozen.model             unfreeze; fit(LRS, 3, cycle_len=1,
#                                            cycle_mult=2)
#   tta          valid.pred valid.tta.pred   learn.predict(), learn.TTA()
#   confusion    confusion.txt valid.tsv valid.tta.tsv
#   report       report/report.html          pipelines/report.sh, when present
#   tta, awk     test.tta.pred submission.csv  the Kaggle submission
# Each fit also leaves STAGE.log (train --log, per batch) and STAGE.out (its
# epoch table, as printed).  Any program can be swapped: IMGPREP=,
# PRETRAINED=, PRECOMPUTE=, LRFIND=, AUGMENT=, TRAIN=, TTA=, CONFUSION=,
# TENSOR=, REPORT= name another (a wrapper, a build elsewhere).

# this file's folder: pipelines, or wherever make -f found it
LESSON1_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
BIN      ?= bin
# DIR/train/<class>/*.jpg, DIR/valid/<class>/*.jpg, optionally DIR/test/*.jpg
DATA     ?= data/dogscats
ARCH     ?= resnet34
# torchvision's ImageNet weights for each ResNet; the hex digits in the name
# are the start of the file's sha256 (torch.hub checks them, and so do we)
TORCHVISION.resnet18 := resnet18-f37072fd.pth
TORCHVISION.resnet34 := resnet34-b627a593.pth
TORCHVISION.resnet50 := resnet50-0676ba61.pth
WEIGHTS  ?= $(addprefix weights/,$(TORCHVISION.$(ARCH)))
CFG      ?=
SZ       ?= 224
# fast.ai's tfms_from_model(..., max_zoom=1.1) on the photos as they are
# (lesson 1 resizes nothing): the sources of augmentation and of TTA, the
# larger photos shrunk to 1.3*sz (as ImageClassifierData.resize would), the
# smaller kept as they are (imgprep --no-enlarge: enlarging them first only
# resamples them twice)
ifeq ($(origin SCALE),undefined)
SCALE    := $(shell echo $$(( $(SZ) * 13 / 10 )))
endif
BS       ?= 64
LR       ?= 1e-2
LRS      ?= 1e-4,1e-3,1e-2
SEED     ?= 0
# the image fits' convolutions: f32, or bf16 products (train(1) --precision)
PRECISION ?= f32
SEED1    := $(shell echo $$(( $(SEED) + 1 )))
# OUT= was this variable's name; it still works on the command line
WORK     ?= $(if $(filter command line,$(origin OUT)),$(OUT),lesson1.out)
# threads of each program; changing it redoes nothing
ifeq ($(origin JOBS),undefined)
JOBS     := $(shell nproc)
endif
TESTDIR  ?= $(firstword $(wildcard $(DATA)/test $(DATA)/test1))
REPORT   ?= $(LESSON1_DIR)/report.sh

IMGPREP    ?= $(BIN)/imgprep
PRETRAINED ?= $(BIN)/pretrained
PRECOMPUTE ?= $(BIN)/precompute
LRFIND     ?= $(BIN)/lrfind
AUGMENT    ?= $(BIN)/augment
TRAIN      ?= $(BIN)/train
TTA        ?= $(BIN)/tta
CONFUSION  ?= $(BIN)/confusion
TENSOR     ?= $(BIN)/tensor

# make data / make weights (curl; files.fast.ai publishes no checksum for
# dogscats.zip: DATA_SHA256 must be filled in once, see README.md)
DATA_URL       ?= http://files.fast.ai/data/dogscats.zip
DATA_SHA256    ?=
WEIGHTS_URL    ?= https://download.pytorch.org/models/$(TORCHVISION.$(ARCH))
WEIGHTS_SHA256 ?= $(lastword $(subst -, ,$(basename $(TORCHVISION.$(ARCH)))))

FIT      = -b $(BS) --seed $(SEED) -j $(JOBS)
PREC     = $(if $(filter-out f32,$(PRECISION)),--precision $(PRECISION))

# Shards: with SHARDS=n the stages that map records one by one (imgprep,
# precompute, tta) run as n programs over shards 1/n .. n/n, side by side
# under make -j (make -j 4 train SHARDS=4), each with JOBS/n threads, into
# WORK/shards/NAME.I-of-n, then joined with tensor cat into the very bytes
# of the unsharded file (imgprep(1), precompute(1), tta(1): --shard).  On a
# cluster the same commands run as a job array (pipelines/slurm/).
SHARDS   ?= 1
ifneq ($(SHARDS),1)
SHARD_IDS := $(shell seq 1 $(SHARDS))
endif
# the files of stage NAME: itself, or its shards
parts    = $(if $(SHARD_IDS),$(foreach i,$(SHARD_IDS),$(WORK)/shards/$(1).$(i)-of-$(SHARDS)),$(WORK)/$(1))
# in a recipe: " --shard I/N" for the part being made ($@), else nothing
shard    = $(if $(filter $(WORK)/shards/%,$@), --shard $(subst -of-,/,$(lastword $(subst ., ,$@))))
# threads of a sharded stage's programs
PJOBS    = $(if $(SHARD_IDS),$(shell echo $$(( ($(JOBS) + $(SHARDS) - 1) / $(SHARDS) ))),$(JOBS))

# augment | train | tee: a failing stage fails the pipeline
SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -c

LESSON1 := $(WORK)/confusion.txt $(WORK)/valid.tsv $(WORK)/valid.tta.tsv \
           $(if $(wildcard $(REPORT)),$(WORK)/report/report.html) \
           $(if $(TESTDIR),$(WORK)/submission.csv)

# The whole lesson; the last line is the final accuracy, without and with
# TTA (confusion --tsv's summary).
lesson1: $(LESSON1)
	$(if $(wildcard $(REPORT)),@echo "lesson1: $(WORK)/report/report.html: the pictures and the report",@echo "lesson1: no $(REPORT) (yet): no pictures and no report")
	$(if $(TESTDIR),@echo "lesson1: $(WORK)/submission.csv: the Kaggle submission for $(TESTDIR)")
	@awk -F '\t' '$$1 == "summary" && $$2 == "accuracy" { a[FILENAME] = sprintf("%.2f %%", 100 * $$3) } \
	  END { print "lesson1: $(WORK)/unfrozen.model: accuracy " a[ARGV[1]] " without TTA, " a[ARGV[2]] " with TTA" }' \
	  $(WORK)/valid.tsv $(WORK)/valid.tta.tsv

# WORK, as this make sees it (pipelines/slurm/lesson1.sh asks)
lesson1-work:
	@echo $(abspath $(WORK))

# ---- helpers ---------------------------------------------------------------

# What is missing for the lesson, in one line, or nothing.
problem = $(strip $(or \
  $(if $(wildcard $(DATA)/train),,no $(DATA)/train: run 'make data' (fast.ai's dogscats.zip into data/dogscats) or pass DATA=DIR holding train/CLASS/*.jpg and valid/CLASS/*.jpg), \
  $(if $(WEIGHTS),,ARCH=$(ARCH) needs WEIGHTS=FILE: its pretrained weights (README.md: make train)), \
  $(if $(wildcard $(WEIGHTS)),,no $(WEIGHTS): $(if $(TORCHVISION.$(ARCH)),run 'make weights' (torchvision's $(ARCH)) or pass WEIGHTS=FILE,pass WEIGHTS= a $(ARCH) weights file that exists)), \
  $(if $(filter darknet,$(ARCH)),$(if $(CFG),$(if $(wildcard $(CFG)),,no $(CFG): CFG= names the darknet cfg of WEIGHTS),ARCH=darknet needs CFG=FILE.cfg: the network WEIGHTS are for))))
# A recipe line that stops the run with that line; nothing when all is there.
check = $(if $(problem),@echo "lesson1: $(problem)" >&2; exit 1)

# For programs that write to standard output: the file appears complete or
# not at all (.DELETE_ON_ERROR removes only $@).
atomic = > $@.tmp || { rm -f $@.tmp; exit 1; }; mv $@.tmp $@

# Settings.  A stage's are kept in WORK/.STAGE.opts, rewritten only when
# they differ (make -n writes nothing), so changing LR refits from the head
# on and changing SZ redoes everything, as a changed input file would.
# JOBS and the programs are not settings.
same = $(and $(findstring x$(1)x,x$(2)x),$(findstring x$(2)x,x$(1)x))
dry_run = $(findstring n,$(firstword -$(MAKEFLAGS)))
opts.train.images   = DATA=$(DATA) SZ=$(SZ)
opts.valid.images   = DATA=$(DATA) SZ=$(SZ)
opts.train.scaled   = DATA=$(DATA) SCALE=$(SCALE)
opts.valid.scaled   = DATA=$(DATA) SCALE=$(SCALE)
opts.test.scaled    = TESTDIR=$(TESTDIR) SCALE=$(SCALE)
opts.model          = ARCH=$(ARCH) WEIGHTS=$(WEIGHTS) CFG=$(CFG) SEED=$(SEED)
opts.lr             = BS=$(BS) SEED=$(SEED)
opts.head           = LR=$(LR) BS=$(BS) SEED=$(SEED)
opts.frozen         = LR=$(LR) BS=$(BS) SEED=$(SEED) PRECISION=$(PRECISION)
opts.unfrozen       = LRS=$(LRS) BS=$(BS) SEED=$(SEED) PRECISION=$(PRECISION)
opts.tta            = SEED=$(SEED)
define opts_rule
$(WORK)/.$(1).opts: $$(if $$(call same,$$(opts.$(1)),$$(file <$(WORK)/.$(1).opts)),,FORCE) | $(WORK)
	$$(if $$(dry_run),,$$(file >$$@,$$(opts.$(1))))
endef
$(foreach s,train.images valid.images train.scaled valid.scaled test.scaled \
  model lr head frozen unfrozen tta,$(eval $(call opts_rule,$(s))))

# A fit resumes: train checkpoints after every epoch (and, on SIGINT or
# SIGTERM, mid-epoch) into WORK/STAGE.model.ckpt, and the next make goes on
# from it when it is newer than all the stage's inputs and settings, else
# starts afresh.  Resuming, the log and the epoch table are first cut to
# what the checkpoint holds (a run killed between an epoch's line and its
# checkpoint would show that epoch twice) and the table so far is shown.
ckpt     = $(WORK)/$(1).model.ckpt
resuming = $(shell find $(call ckpt,$(1)) $(patsubst %,-newer %,$^) 2>/dev/null)
fit_begin = $(if $(call resuming,$(1)),$(call fit_cut,$(1)),rm -f $(WORK)/$(1).log $(WORK)/$(1).out $(call ckpt,$(1)))
define fit_cut
n=$$($(TENSOR) meta -k sched $(call ckpt,$(1)) | cut -d, -f2) && touch $(WORK)/$(1).log && \
  awk -F '\t' -v n=$$n 'NR == 1 || $$2 <= n' $(WORK)/$(1).log > $(WORK)/$(1).log.tmp && \
  mv $(WORK)/$(1).log.tmp $(WORK)/$(1).log
e=$$($(TENSOR) meta -k epoch $(call ckpt,$(1))) && touch $(WORK)/$(1).out && \
  awk -v e=$$e 'NR == 1 || $$1 < e' $(WORK)/$(1).out > $(WORK)/$(1).out.tmp && \
  mv $(WORK)/$(1).out.tmp $(WORK)/$(1).out && cat $(WORK)/$(1).out
endef
# train's model argument: the model to start from, or the checkpoint
fit_from = $(if $(call resuming,$(1)),--resume $(call ckpt,$(1)),-m $(2))
# the epoch table, shown and kept (resuming: without its repeated header)
fit_table = $(if $(call resuming,$(1)),sed -u 1d | tee -ia,tee -i) $(WORK)/$(1).out

# ---- the lesson ------------------------------------------------------------

$(call parts,train.images): $(wildcard $(DATA)/train $(DATA)/train/*) $(WORK)/.train.images.opts
	$(check)
	# data = ImageClassifierData.from_paths(PATH, tfms=tfms_from_model(arch, $(SZ)))
	$(IMGPREP) -s $(SZ) -j $(PJOBS)$(shard) -o $@ $(DATA)/train

$(call parts,valid.images): $(WORK)/train.images $(wildcard $(DATA)/valid $(DATA)/valid/*) $(WORK)/.valid.images.opts
	# the validation set, through the validation transform (scale, centre crop)
	$(IMGPREP) -s $(SZ) -j $(PJOBS)$(shard) --classes-from $< -o $@ $(DATA)/valid

$(call parts,train.scaled): $(WORK)/train.images $(wildcard $(DATA)/train $(DATA)/train/*) $(WORK)/.train.scaled.opts
	# tfms = tfms_from_model(arch, $(SZ), aug_tfms=transforms_side_on, max_zoom=1.1): the photos at 1.3*sz
	$(IMGPREP) --scale $(SCALE) --no-enlarge -j $(PJOBS)$(shard) --classes-from $< -o $@ $(DATA)/train

$(call parts,valid.scaled): $(WORK)/train.images $(wildcard $(DATA)/valid $(DATA)/valid/*) $(WORK)/.valid.scaled.opts
	# the validation photos likewise, for learn.TTA()
	$(IMGPREP) --scale $(SCALE) --no-enlarge -j $(PJOBS)$(shard) --classes-from $< -o $@ $(DATA)/valid

$(call parts,test.scaled): $(WORK)/train.images $(wildcard $(TESTDIR)) $(WORK)/.test.scaled.opts
	# ImageClassifierData.from_paths(PATH, tfms=tfms, test_name='$(notdir $(TESTDIR))'): the unlabelled photos
	$(IMGPREP) --scale $(SCALE) --no-enlarge -j $(PJOBS)$(shard) --classes-from $< -o $@ $(TESTDIR)

$(WORK)/model: $(WORK)/train.images $(wildcard $(WEIGHTS) $(CFG)) $(WORK)/.model.opts
	$(check)
	# learn = ConvLearner.pretrained($(ARCH), data, precompute=True)
	$(PRETRAINED) -a $(ARCH)$(if $(CFG), --cfg $(CFG)) -w $(WEIGHTS) --classes-from $< --seed $(SEED) -o $@

# fast.ai precomputes the train activations through the validation
# transform too (ARCHITECTURE.md: precompute): train.images, not augmented.
$(call parts,train.act): $(WORK)/train.images $(WORK)/model
	# precompute=True: the frozen body's activations of train, computed once
	$(PRECOMPUTE) -m $(WORK)/model -j $(PJOBS)$(shard) $< $(atomic)

$(call parts,valid.act): $(WORK)/valid.images $(WORK)/model
	# and of valid
	$(PRECOMPUTE) -m $(WORK)/model -j $(PJOBS)$(shard) $< $(atomic)

$(WORK)/lr.tsv: $(WORK)/train.act $(WORK)/.lr.opts
	# learn.lr_find(); learn.sched.plot()
	$(LRFIND) -m $(WORK)/model $(FIT) $< $(atomic)

# (lr.tsv is advice, order-only: LR= is the rate, the lesson's 1e-2 by default)
$(WORK)/head.model: $(WORK)/train.act $(WORK)/valid.act $(WORK)/.head.opts | $(WORK)/lr.tsv
	# learn.fit($(LR), 1)
	$(call fit_begin,head)
	$(TRAIN) $(call fit_from,head,$(WORK)/model) -o $@ --valid $(WORK)/valid.act --lr $(LR) $(FIT) \
	  --log $(WORK)/head.log $< | \
	$(call fit_table,head)

$(WORK)/frozen.model: $(WORK)/head.model $(WORK)/train.scaled $(WORK)/valid.images $(WORK)/.frozen.opts
	# learn.precompute = False; learn.fit($(LR), 3, cycle_len=1)
	$(call fit_begin,frozen)
	$(AUGMENT) -s $(SZ) --epochs 3 --seed $(SEED) -j $(JOBS) $(WORK)/train.scaled | \
	$(TRAIN) $(call fit_from,frozen,$<) -o $@ --valid $(WORK)/valid.images --lr $(LR) \
	  --cycles 3 --cycle-len 1 $(FIT) $(PREC) --log $(WORK)/frozen.log - | \
	$(call fit_table,frozen)

# 1 + 2 + 4 = 7 epochs
$(WORK)/unfrozen.model: $(WORK)/frozen.model $(WORK)/train.scaled $(WORK)/valid.images $(WORK)/.unfrozen.opts
	# learn.unfreeze(); learn.fit([$(LRS)], 3, cycle_len=1, cycle_mult=2)
	$(call fit_begin,unfrozen)
	$(AUGMENT) -s $(SZ) --epochs 7 --seed $(SEED1) -j $(JOBS) $(WORK)/train.scaled | \
	$(TRAIN) $(call fit_from,unfrozen,$<) -o $@ --valid $(WORK)/valid.images --unfreeze --lr $(LRS) \
	  --cycles 3 --cycle-len 1 --cycle-mult 2 $(FIT) $(PREC) --log $(WORK)/unfrozen.log - | \
	$(call fit_table,unfrozen)

$(call parts,valid.pred): $(WORK)/unfrozen.model $(WORK)/valid.images
	# log_preds = learn.predict()
	$(TTA) -n 0 -m $< -b $(BS) -j $(PJOBS)$(shard) $(WORK)/valid.images $(atomic)

$(call parts,valid.tta.pred): $(WORK)/unfrozen.model $(WORK)/valid.scaled $(WORK)/.tta.opts
	# log_preds, y = learn.TTA(); probs = np.mean(np.exp(log_preds), 0)
	$(TTA) -n 4 --seed $(SEED) -m $< -b $(BS) -j $(PJOBS)$(shard) $(WORK)/valid.scaled $(atomic)

$(WORK)/%.tsv: $(WORK)/%.pred
	# accuracy_np(probs, y), in confusion's tab-separated form
	$(CONFUSION) --tsv $< $(atomic)

$(WORK)/confusion.txt: $(WORK)/valid.pred $(WORK)/valid.tta.pred
	# cm = confusion_matrix(y, preds); plot_confusion_matrix(cm, data.classes); most_by_correct(...)
	{ echo "== $(WORK)/valid.pred: learn.predict()" && $(CONFUSION) $(WORK)/valid.pred && echo && \
	  echo "== $(WORK)/valid.tta.pred: learn.TTA()" && $(CONFUSION) $(WORK)/valid.tta.pred; } $(atomic)

$(WORK)/report/report.html: $(REPORT) $(WORK)/lr.tsv $(WORK)/head.model $(WORK)/frozen.model \
                            $(WORK)/unfrozen.model $(WORK)/valid.pred $(WORK)/valid.tta.pred
	# learn.sched.plot(); plot_lr(); plot_loss(); plot_val_with_title(...); plot_confusion_matrix(...)
	CONFUSION=$(CONFUSION) TENSOR=$(TENSOR) $(REPORT) -w $(WORK) -i $(DATA)/valid -o $(WORK)/report

$(call parts,test.tta.pred): $(WORK)/unfrozen.model $(WORK)/test.scaled $(WORK)/.tta.opts
	# log_preds, _ = learn.TTA(is_test=True)
	$(TTA) -n 4 --seed $(SEED) -m $< -b $(BS) -j $(PJOBS)$(shard) $(WORK)/test.scaled $(atomic)

# Kaggle's Dogs vs. Cats (Redux) submission: a header line, then id,label per
# test photo, the id the number in its file name (12.jpg: 12), sorted, the
# label the probability of the class named "dogs" (else of the last class).
submission_awk = BEGIN { n = split(classes, c, ","); d = n; for (i = 1; i <= n; i++) if (c[i] == "dogs") d = i } \
  $$2 == "logp" { p = exp($$(4 + d)) } \
  $$2 == "name" { f = $$0; sub(/^[^"]*"/, "", f); sub(/"$$/, "", f); sub(/.*\//, "", f); sub(/\.[^.]*$$/, "", f); \
    if (!match(f, /[0-9]+$$/)) { print "lesson1: " $$0 ": no number in the name" > "/dev/stderr"; exit 1 } \
    printf "%d,%.6f\n", substr(f, RSTART), p }
$(WORK)/submission.csv: $(WORK)/test.tta.pred
	# probs = np.mean(np.exp(log_preds), 0); pd.DataFrame({'id': ids, 'label': probs[:, 1]}).to_csv(...)
	{ echo id,label; $(TENSOR) dump $< | awk -v classes=$$($(TENSOR) meta -k classes $<) '$(submission_awk)' | \
	  sort -t, -k1,1n; } $(atomic)

$(WORK):
	mkdir -p $@

# SHARDS=n: each sharded file is its parts joined
SHARDED := train.images valid.images train.scaled valid.scaled test.scaled train.act valid.act \
           valid.pred valid.tta.pred test.tta.pred
ifneq ($(SHARD_IDS),)
$(foreach f,$(SHARDED),$(eval $(WORK)/$(f): $(call parts,$(f))))
$(addprefix $(WORK)/,$(SHARDED)):
	# the $(SHARDS) shards, joined
	$(TENSOR) cat $^ $(atomic)
$(foreach f,$(SHARDED),$(call parts,$(f))): | $(WORK)/shards
$(WORK)/shards: | $(WORK)
	mkdir -p $@
endif

# The files, made after LESSON1_AFTER (the top Makefile: the programs).
LESSON1_FILES := $(addprefix $(WORK)/,train.images valid.images train.scaled valid.scaled \
  test.scaled model train.act valid.act lr.tsv head.model frozen.model unfrozen.model \
  valid.pred valid.tta.pred valid.tsv valid.tta.tsv confusion.txt report/report.html \
  test.tta.pred submission.csv)
$(LESSON1_FILES) $(if $(SHARD_IDS),$(foreach f,$(SHARDED),$(call parts,$(f)))): | $(WORK) $(LESSON1_AFTER)

# ---- make data, make weights -------------------------------------------------

# fetch URL,FILE,GOAL: FILE from URL unless it is there already
fetch = test -s $(2) || { mkdir -p $(dir $(2)) && curl -fL --retry 2 -o $(2).part $(1) && mv $(2).part $(2); } || \
	{ rm -f $(2).part; echo "lesson1: cannot fetch $(1) (no network?): put the file at $(2) by other means and run make $(3) again" >&2; exit 1; }
# verify FILE,SHA256,VAR,GOAL: FILE's sha256 starts with SHA256 (FILE removed if
# not); with no SHA256, stop and say the sum to check and pass as VAR=
verify = sum=$$(sha256sum $(1) | cut -d ' ' -f 1) && \
	$(if $(2),case $$sum in ($(2)*) ;; (*) rm -f $(1); echo "lesson1: $(1): sha256 $$sum is not $(2)...: removed (damaged or not the file)" >&2; exit 1;; esac, \
	  { echo "lesson1: $(1): sha256 $$sum; $(3) is not filled in (README.md): check that sum and run make $(3)=$$sum $(4)" >&2; exit 1; })

# PATH = "data/dogscats/": !wget http://files.fast.ai/data/dogscats.zip && unzip dogscats.zip
data: $(DATA)/train
$(DATA)/train:
	@test ! -e $(DATA) || { echo "lesson1: $(DATA) exists without train/: move it away, or pass DATA=" >&2; exit 1; }
	$(call fetch,$(DATA_URL),$(DATA).zip,data)
	$(call verify,$(DATA).zip,$(DATA_SHA256),DATA_SHA256,data)
	rm -rf $(DATA).unzip && mkdir $(DATA).unzip && unzip -q $(DATA).zip -d $(DATA).unzip
	mv $(DATA).unzip/dogscats $(DATA) && rmdir $(DATA).unzip

# arch = resnet34: torchvision's ImageNet weights, as ConvLearner.pretrained loads them
weights: $(if $(TORCHVISION.$(ARCH)),$(WEIGHTS))
	$(if $(TORCHVISION.$(ARCH)),,@echo "lesson1: make weights fetches torchvision's ResNets (ARCH=resnet18 resnet34 resnet50); for ARCH=$(ARCH) pass WEIGHTS=FILE (README.md)" >&2; exit 1)
ifneq ($(TORCHVISION.$(ARCH)),)
$(WEIGHTS):
	$(call fetch,$(WEIGHTS_URL),$@,weights)
	$(call verify,$@,$(WEIGHTS_SHA256),WEIGHTS_SHA256,weights)
endif

FORCE:
.PHONY: lesson1 lesson1-work data weights FORCE
.DELETE_ON_ERROR:
