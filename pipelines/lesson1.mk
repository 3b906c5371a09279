# fast.ai lesson 1 (Dogs vs. Cats) as a Make pipeline of cnnpipe programs.
#
#   make -f pipelines/lesson1.mk DATA=path/to/dogscats WEIGHTS=resnet34.pth
#
# DATA holds train/<class>/*.jpg and valid/<class>/*.jpg.  Every stage is a
# file, so Make reruns only what changed and `make -j` runs independent
# stages side by side.  The stages that exist today end at the precomputed
# activations; training (train, lrfind, tta, confusion) joins when those
# programs land.
BIN     ?= bin
DATA    ?= ../shared/data/dogscats-dev
OUT     ?= lesson1.out
ARCH    ?= resnet34
WEIGHTS ?=
CFG     ?=
SZ      ?= 224
SEED    ?= 0
CFGOPT  := $(if $(CFG),--cfg $(CFG))

lesson1: $(OUT)/train.act $(OUT)/valid.act
	$(BIN)/tensor info $(OUT)/train.act

$(OUT)/train.images: | $(OUT)
	$(BIN)/imgprep -s $(SZ) -o $@ $(DATA)/train

$(OUT)/valid.images: $(OUT)/train.images
	$(BIN)/imgprep -s $(SZ) --classes-from $< -o $@ $(DATA)/valid

# The weights and cfg are prerequisites when they exist, so that new ones
# rebuild the model; a missing one is left to pretrained to report.
$(OUT)/model: $(OUT)/train.images $(wildcard $(WEIGHTS) $(CFG))
	@test -n "$(WEIGHTS)" || { echo "lesson1: set WEIGHTS= to a pretrained $(ARCH) file (see README.md)" >&2; exit 1; }
	$(BIN)/pretrained -a $(ARCH) -w $(WEIGHTS) $(CFGOPT) --classes-from $< --seed $(SEED) -o $@

# fast.ai precomputes the train activations through the validation
# transform (ARCHITECTURE.md: precompute), which is what imgprep gives.
# precompute writes to standard output: into $@.tmp, removed if it fails
# (.DELETE_ON_ERROR removes only $@), renamed into place when complete.
$(OUT)/%.act: $(OUT)/%.images $(OUT)/model
	$(BIN)/precompute -m $(OUT)/model $< > $@.tmp || { rm -f $@.tmp; exit 1; }; mv $@.tmp $@

$(OUT):
	mkdir -p $@

.PHONY: lesson1
.DELETE_ON_ERROR:
