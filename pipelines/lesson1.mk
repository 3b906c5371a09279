# fast.ai lesson 1 (Dogs vs. Cats) as a Make pipeline of cnnpipe programs.
#
#   make -f pipelines/lesson1.mk DATA=path/to/dogscats WEIGHTS=resnet34.pth
#
# DATA holds train/<class>/*.jpg and valid/<class>/*.jpg.  Every stage is a
# file, so Make reruns only what changed, `make -j` runs independent stages
# side by side, and a training stage that was interrupted resumes from its
# checkpoint.  The steps (fast.ai 0.7, courses/dl1/lesson1.ipynb):
#   imgprep      train and valid centre-cropped to SZ; train scaled to SCALE
#   pretrained   the backbone with a new head for the classes
#   precompute   activations of the frozen body
#   lrfind       the learning-rate range test on them       -> lr.tsv
#   train        fit(LR, 1) on the activations              -> head.model
#   augment|train  fit(LR, 3, cycle_len=1), augmented, frozen -> frozen.model
#   augment|train  unfreeze; fit(LRS, 3, cycle_len=1, cycle_mult=2)
#                                                           -> unfrozen.model
# Any program can be swapped: IMGPREP=, AUGMENT=, TRAIN=, ... name another.
BIN      ?= bin
DATA     ?= ../shared/data/dogscats-dev
OUT      ?= lesson1.out
ARCH     ?= resnet34
WEIGHTS  ?=
CFG      ?=
SZ       ?= 224
# fast.ai's tfms_from_model(..., max_zoom=1.1) with the data resized to
# 1.3*sz (ImageClassifierData.resize): the sources of augmentation
SCALE    ?= $(shell echo $$(( $(SZ) * 13 / 10 )))
BS       ?= 64
LR       ?= 1e-2
LRS      ?= 1e-4,1e-3,1e-2
SEED     ?= 0
JOBS     ?= $(shell nproc)
IMGPREP    ?= $(BIN)/imgprep
PRETRAINED ?= $(BIN)/pretrained
PRECOMPUTE ?= $(BIN)/precompute
LRFIND     ?= $(BIN)/lrfind
AUGMENT    ?= $(BIN)/augment
TRAIN      ?= $(BIN)/train
TENSOR     ?= $(BIN)/tensor
CFGOPT   := $(if $(CFG),--cfg $(CFG))
FIT      := -b $(BS) --seed $(SEED) -j $(JOBS)

# augment | train: a failing augment fails the stage
SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -c

lesson1: $(OUT)/unfrozen.model $(OUT)/lr.tsv
	@echo "lesson1: $(OUT)/unfrozen.model is the lesson's model"

$(OUT)/train.images: | $(OUT)
	$(IMGPREP) -s $(SZ) -j $(JOBS) -o $@ $(DATA)/train

$(OUT)/valid.images: $(OUT)/train.images
	$(IMGPREP) -s $(SZ) -j $(JOBS) --classes-from $< -o $@ $(DATA)/valid

$(OUT)/train.scaled: $(OUT)/train.images
	$(IMGPREP) --scale $(SCALE) -j $(JOBS) --classes-from $< -o $@ $(DATA)/train

# The weights and cfg are prerequisites when they exist, so that new ones
# rebuild the model; a missing one is left to pretrained to report.
$(OUT)/model: $(OUT)/train.images $(wildcard $(WEIGHTS) $(CFG))
	@test -n "$(WEIGHTS)" || { echo "lesson1: set WEIGHTS= to a pretrained $(ARCH) file (see README.md)" >&2; exit 1; }
	$(PRETRAINED) -a $(ARCH) -w $(WEIGHTS) $(CFGOPT) --classes-from $< --seed $(SEED) -o $@

# fast.ai precomputes the train activations through the validation
# transform (ARCHITECTURE.md: precompute), which is what imgprep gives.
# precompute writes to standard output: into $@.tmp, removed if it fails
# (.DELETE_ON_ERROR removes only $@), renamed into place when complete.
$(OUT)/%.act: $(OUT)/%.images $(OUT)/model
	$(PRECOMPUTE) -m $(OUT)/model -j $(JOBS) $< > $@.tmp || { rm -f $@.tmp; exit 1; }; mv $@.tmp $@

$(OUT)/lr.tsv: $(OUT)/train.act
	$(LRFIND) -m $(OUT)/model $(FIT) $< > $@.tmp || { rm -f $@.tmp; exit 1; }; mv $@.tmp $@

# fit STEM MODEL ARGS: train into $(OUT)/STEM.model, resuming from its
# checkpoint when an earlier run was interrupted; the per-batch log beside it.
fit = if [ -e $(OUT)/$(1).model.ckpt ]; then \
	  $(TRAIN) -o $(OUT)/$(1).model --resume $(OUT)/$(1).model.ckpt $(3) --log $(OUT)/$(1).log; \
	else rm -f $(OUT)/$(1).log; \
	  $(TRAIN) -m $(2) -o $(OUT)/$(1).model $(3) --log $(OUT)/$(1).log; fi

# learn.fit(1e-2, 1) with precompute=True
$(OUT)/head.model: $(OUT)/train.act $(OUT)/valid.act
	$(call fit,head,$(OUT)/model,--valid $(OUT)/valid.act --lr $(LR) $(FIT) $<)

# learn.precompute=False; learn.fit(1e-2, 3, cycle_len=1): augmented, frozen
$(OUT)/frozen.model: $(OUT)/head.model $(OUT)/train.scaled $(OUT)/valid.images
	$(AUGMENT) -s $(SZ) --epochs 3 --seed $(SEED) -j $(JOBS) $(OUT)/train.scaled | \
	  $(call fit,frozen,$<,--valid $(OUT)/valid.images --lr $(LR) --cycles 3 --cycle-len 1 $(FIT) -)

# learn.unfreeze(); learn.fit([1e-4, 1e-3, 1e-2], 3, cycle_len=1, cycle_mult=2):
# 1 + 2 + 4 = 7 epochs
$(OUT)/unfrozen.model: $(OUT)/frozen.model $(OUT)/train.scaled $(OUT)/valid.images
	$(AUGMENT) -s $(SZ) --epochs 7 --seed $$(( $(SEED) + 1 )) -j $(JOBS) $(OUT)/train.scaled | \
	  $(call fit,unfrozen,$<,--valid $(OUT)/valid.images --unfreeze --lr $(LRS) \
	    --cycles 3 --cycle-len 1 --cycle-mult 2 $(FIT) -)

$(OUT):
	mkdir -p $@

.PHONY: lesson1
.DELETE_ON_ERROR:
