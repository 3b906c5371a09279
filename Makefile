# cnnpipe — build, test, install.  See README.md.
PREFIX  ?= /usr/local
CC      ?= cc
OPT     ?= -O2 -march=native
CFLAGS  += -std=c11 $(OPT) -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread \
           -I. -I/usr/include/stb
LDLIBS  += -ljpeg -lstb -lopenblas -lm -lpthread
BUILD   ?= build
BIN     ?= bin

LIB_SRC   := $(wildcard libcommon/*/*.c formats/*.c kernels/*.c kernels/cpu/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB       := $(BUILD)/libcnnpipe.a
TOOLS     := $(patsubst tools/%.c,$(BIN)/%,$(wildcard tools/*.c))
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNITS     := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
BATS      := $(sort $(wildcard tests/*.bats))
MAN1      := $(wildcard man/man1/*.1)
MAN5      := $(wildcard man/man5/*.5)
MAN7      := $(wildcard man/man7/*.7)

# ---- The GPU (README.md, "The GPU") ----------------------------------------
.DEFAULT_GOAL := all
# The CUDA backend (kernels/cuda/*.cu) is built when nvcc and cuDNN are
# found: nvcc in CUDA_HOME, cuDNN's header in CUDA_HOME/include, else in
# CUDNN_HOME/include (e.g. the nvidia/cudnn folder of a PyTorch install).
# CUDA=1 insists (and fails when they are missing), CUDA=0 leaves it out.
# Without it kernels/cuda/absent.c says, when asked for the GPU, that this
# build has none.  One architecture, sm_90 (Hopper), plus its PTX for newer
# ones: CUDA_ARCH=.. for another.
# DEPS_PREFIX: a folder where the Debian build dependencies were unpacked
# (dpkg -x, tests/gpu/run.sh) on a machine without a package manager.
CUDA_HOME  ?= /usr/local/cuda
NVCC       ?= $(CUDA_HOME)/bin/nvcc
CUDNN_HOME ?=
CUDA_ARCH  ?= 90
CUDA       ?= auto
DEPS_PREFIX ?=

ifneq ($(DEPS_PREFIX),)
DEPS_TRIPLET := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
DEPS_LIBDIRS := $(DEPS_PREFIX)/usr/lib/$(DEPS_TRIPLET) \
                $(DEPS_PREFIX)/usr/lib/$(DEPS_TRIPLET)/openblas-pthread
CFLAGS  += -I$(DEPS_PREFIX)/usr/include -I$(DEPS_PREFIX)/usr/include/stb \
           -I$(DEPS_PREFIX)/usr/include/$(DEPS_TRIPLET) \
           -I$(DEPS_PREFIX)/usr/include/$(DEPS_TRIPLET)/openblas-pthread
LDFLAGS += $(foreach d,$(DEPS_LIBDIRS),-L$(d) -Wl,-rpath,$(d))
endif

CUDNN_INC := $(firstword $(dir $(wildcard $(CUDA_HOME)/include/cudnn.h \
                 $(if $(CUDNN_HOME),$(CUDNN_HOME)/include/cudnn.h))))
CUDNN_LIBDIR := $(firstword $(patsubst %/,%,$(dir $(wildcard \
                 $(CUDA_HOME)/lib64/libcudnn.so* \
                 $(if $(CUDNN_HOME),$(CUDNN_HOME)/lib/libcudnn.so*)))))
# a PyTorch wheel has libcudnn.so.9 but no libcudnn.so: link the file
CUDNN_SO := $(firstword $(wildcard $(CUDNN_LIBDIR)/libcudnn.so $(CUDNN_LIBDIR)/libcudnn.so.[0-9]*))
CUDA_FOUND := $(if $(and $(wildcard $(NVCC)),$(CUDNN_INC),$(CUDNN_SO)),1,0)
ifeq ($(CUDA),auto)
override CUDA := $(CUDA_FOUND)
endif
ifeq ($(CUDA)$(CUDA_FOUND),10)
$(error CUDA=1: nvcc ($(NVCC)) or cuDNN (cudnn.h and libcudnn.so in $(CUDA_HOME) or CUDNN_HOME=$(CUDNN_HOME)) not found)
endif

CUDA_SRC := $(wildcard kernels/cuda/*.cu)
CUDA_HDR := $(wildcard kernels/cuda/*.cuh kernels/*.h libcommon/util/*.h)
# Which backend the archive holds: when CUDA changes, the stamp does, the
# objects of the side now chosen are rebuilt, so the archive is remade.
CUDA_STAMP := $(BUILD)/cuda.stamp
CUDA_STATE := CUDA=$(CUDA) $(NVCC) $(CUDNN_INC) $(CUDNN_SO) sm_$(CUDA_ARCH)
$(shell mkdir -p $(BUILD); [ "$$(cat $(CUDA_STAMP) 2>/dev/null)" = "$(CUDA_STATE)" ] || \
        echo "$(CUDA_STATE)" > $(CUDA_STAMP))

ifeq ($(CUDA),1)
CUDA_OBJ := $(CUDA_SRC:%.cu=$(BUILD)/%.o)
LIB_OBJ  += $(CUDA_OBJ)
NVFLAGS  ?= -O2 -std=c++17 -g -I. -I$(CUDA_HOME)/include -I$(CUDNN_INC) \
            -gencode arch=compute_$(CUDA_ARCH),code=[sm_$(CUDA_ARCH),compute_$(CUDA_ARCH)] \
            -Xcompiler -Wall,-Wextra,-Werror -DCNNPIPE_CUDA_LIBDIR='"$(CUDA_LIBDIR)"'
CUDA_LIBDIR := $(CUDA_HOME)/lib64
# --as-needed: the programs that never pick a device (imgprep, augment,
# ...) do not load the CUDA libraries at all; cuBLAS is opened at run time
# (kernels/cuda/cublas_open.cu).
LDLIBS   += -Wl,--as-needed -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) \
            $(CUDNN_SO) -Wl,-rpath,$(CUDNN_LIBDIR) -lcudart -lstdc++ -ldl \
            -Wl,--no-as-needed
$(BUILD)/kernels/cuda/%.o: kernels/cuda/%.cu $(CUDA_HDR) $(CUDA_STAMP)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c -o $@ $<
else
LIB_OBJ  += $(BUILD)/kernels/cuda/absent.o
$(BUILD)/kernels/cuda/absent.o: $(CUDA_STAMP)
endif

# The GPU's own tests (tests/gpu/test_*.c): built here too, where they
# print that no GPU answers and pass; tests/gpu/run.sh runs them on one.
GPU_UNITS := $(patsubst tests/gpu/%.c,$(BUILD)/tests/gpu/%,$(wildcard tests/gpu/test_*.c))
$(BUILD)/tests/gpu/%: tests/gpu/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -MMD -MP -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)
UNITS     += $(GPU_UNITS)
-include $(wildcard $(BUILD)/tests/gpu/*.d)
gpu-tests: $(GPU_UNITS)
gpu-check:
	tests/gpu/run.sh

# ---- Data-parallel training (README.md, "Data-parallel training") ---------
# libcommon/util/comm_mpi.c carries MPI when mpicc is found (MPI=1 insists,
# MPI=0 leaves it out); comm_nccl.c carries NCCL when, besides MPI and the
# CUDA backend, nccl.h and libnccl are in CUDA_HOME (NCCL=1 insists, NCCL=0
# leaves it out).  Without them each compiles to a "this build has none" and
# train runs in one process as before.  Only train calls them: the other
# programs link the libraries --as-needed, that is not at all.
MPICC ?= mpicc
MPI   ?= auto
NCCL  ?= auto
MPI_FOUND := $(if $(shell command -v $(MPICC) 2>/dev/null),1,0)
ifeq ($(MPI),auto)
override MPI := $(MPI_FOUND)
endif
ifeq ($(MPI)$(MPI_FOUND),10)
$(error MPI=1: $(MPICC) not found (apt-get install libopenmpi-dev openmpi-bin))
endif
NCCL_INC    := $(wildcard $(CUDA_HOME)/include/nccl.h)
NCCL_LIBDIR := $(firstword $(patsubst %/,%,$(dir $(wildcard \
                 $(CUDA_HOME)/lib64/libnccl.so $(CUDA_HOME)/lib/libnccl.so))))
NCCL_FOUND  := $(if $(and $(filter 1,$(MPI)),$(filter 1,$(CUDA)),$(NCCL_INC),$(NCCL_LIBDIR)),1,0)
ifeq ($(NCCL),auto)
override NCCL := $(NCCL_FOUND)
endif
ifeq ($(NCCL)$(NCCL_FOUND),10)
$(error NCCL=1: needs MPI, the CUDA backend, and nccl.h and libnccl.so in $(CUDA_HOME))
endif
# as the CUDA stamp: a change of MPI or NCCL rebuilds the two objects
COMM_STAMP := $(BUILD)/comm.stamp
COMM_STATE := MPI=$(MPI) NCCL=$(NCCL) $(MPICC) $(NCCL_LIBDIR)
$(shell mkdir -p $(BUILD); [ "$$(cat $(COMM_STAMP) 2>/dev/null)" = "$(COMM_STATE)" ] || \
        echo "$(COMM_STATE)" > $(COMM_STAMP))
$(BUILD)/libcommon/util/comm_mpi.o $(BUILD)/libcommon/util/comm_nccl.o: $(COMM_STAMP)
ifeq ($(MPI),1)
$(BUILD)/libcommon/util/comm_mpi.o: CFLAGS += -DCNNPIPE_MPI=1 $(shell $(MPICC) --showme:compile)
LDLIBS += -Wl,--as-needed $(shell $(MPICC) --showme:link) -Wl,--no-as-needed
endif
ifeq ($(NCCL),1)
$(BUILD)/libcommon/util/comm_nccl.o: CFLAGS += -DCNNPIPE_NCCL=1 -I$(CUDA_HOME)/include
LDLIBS += -Wl,--as-needed -L$(NCCL_LIBDIR) -Wl,-rpath,$(NCCL_LIBDIR) -lnccl \
          -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -Wl,--no-as-needed
endif

all: deps tools
tools: $(TOOLS)

deps:
	@scripts/deps.sh build
deps-test:
	@scripts/deps.sh test

# -MMD: each object depends on exactly the headers it includes.
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/%: tools/%.c $(LIB)
	@mkdir -p $(BIN) $(BUILD)/tools
	$(CC) $(CFLAGS) -MMD -MP -MF $(BUILD)/tools/$*.d -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

# tensor(1) is several files: main in tools/tensor.c, a file per subcommand
# in tools/tensor/; the objects carry their own -MMD header dependencies.
TENSOR_OBJ := $(patsubst %.c,$(BUILD)/%.o,tools/tensor.c $(wildcard tools/tensor/*.c))
$(BIN)/tensor: $(TENSOR_OBJ) $(LIB)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) -o $@ $(TENSOR_OBJ) $(LIB) $(LDFLAGS) $(LDLIBS)
-include $(wildcard $(BUILD)/tools/tensor/*.d)

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -MMD -MP -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

-include $(LIB_OBJ:.o=.d) $(wildcard $(BUILD)/tools/*.d $(BUILD)/tests/*.d)

# The layers (ARCHITECTURE.md): no include and no call runs up a floor,
# sideways between siblings, or round a cycle.
layers: $(LIB)
	python3 tests/check_layers.py --objects $(BUILD)

unit: $(UNITS)
	@set -e; for t in $(UNITS); do echo "# $$t"; $$t; done

bats: $(TOOLS)
	bats $(BATS)

# The whole suite: unit tests, tool tests, then the unit tests and the
# suites of the input-facing tools again under ASan+UBSan.
test: deps deps-test all layers unit bats sanitize

SAN_BATS := tests/tensor.bats tests/imgprep.bats tests/man.bats tests/common.bats \
            tests/output.bats
# these without their dev-set runs (minutes under ASan)
SAN_BATS_NOSHARED := tests/augment.bats tests/pipeline.bats tests/confusion.bats \
                     tests/tta.bats tests/train.bats
sanitize:
	$(MAKE) --no-print-directory BUILD=build-san BIN=build-san/bin CC=clang CUDA=0 \
		OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
		unit tools
	CNNPIPE_BIN=$(CURDIR)/build-san/bin bats $(SAN_BATS)
	CNNPIPE_SHARED=/nonexistent CNNPIPE_BIN=$(CURDIR)/build-san/bin CNNPIPE_SANITIZE=1 \
		CNNPIPE_UNIT=$(CURDIR)/build-san/tests bats $(SAN_BATS_NOSHARED)

fuzz:
	$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60)

# The lesson-1 workflow: make train [DATA= WEIGHTS= ARCH= CFG= WORK= ...], and
# make data / make weights to fetch the photos and torchvision's weights;
# make -n train prints the lesson (README.md: make train).
# pipelines/lesson1.mk is included rather than run by a recursive make: its
# targets (lesson1, data, weights, FORCE, files under WORK) and variables
# (DATA, WORK, SZ, TRAIN, ...) are none of this file's, so one make sees the
# build and the lesson as one graph: its stages wait for the programs
# (order-only, LESSON1_AFTER: a relinked program redoes no stage), -j covers
# both, and make -n train prints the lesson itself.  What it sets for all
# recipes is harmless here: SHELL is bash with pipefail (for augment | train
# | tee) and .DELETE_ON_ERROR (a failed compile leaves no object either).
LESSON1_AFTER := all
include pipelines/lesson1.mk
train: lesson1

bench: all
	tests/bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(MAN1) $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 $(MAN5) $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 644 $(MAN7) $(DESTDIR)$(PREFIX)/share/man/man7

clean:
	rm -rf build build-san build-fuzz bin tests/tmp

.PHONY: all tools deps deps-test layers unit bats test sanitize fuzz bench train install clean \
        gpu-tests gpu-check
.SECONDARY:
