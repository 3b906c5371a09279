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
            tests/augment.bats tests/pipeline.bats tests/confusion.bats tests/tta.bats
sanitize:
	$(MAKE) --no-print-directory BUILD=build-san BIN=build-san/bin CC=clang \
		OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
		unit tools
	CNNPIPE_BIN=$(CURDIR)/build-san/bin bats $(SAN_BATS)
	# training too, without the dev-set run (minutes under ASan)
	CNNPIPE_SHARED=/nonexistent CNNPIPE_BIN=$(CURDIR)/build-san/bin bats tests/train.bats

fuzz:
	$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60)

# The lesson-1 workflow (pipelines/lesson1.mk); pass DATA=, WEIGHTS=, ARCH=.
train: all
	$(MAKE) --no-print-directory -f pipelines/lesson1.mk BIN=$(BIN)

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

.PHONY: all tools deps deps-test layers unit bats test sanitize fuzz bench train install clean
.SECONDARY:
