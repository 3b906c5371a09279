# libFuzzer harnesses: every tests/fuzz/fuzz_*.c, built with clang against the
# library sources (not tools/) into build-fuzz/, each run for FUZZ_SECONDS on
# a scratch copy of its seed corpus tests/fuzz/corpus/<name>/.
#   make fuzz FUZZ_SECONDS=600            all harnesses
#   make fuzz FUZZ_SECONDS=600 FUZZ=stream   only fuzz_stream
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FB           := build-fuzz
FFLAGS       := -std=c11 -g -O1 -D_GNU_SOURCE -pthread -fno-omit-frame-pointer \
                -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION \
                -I. -I/usr/include/stb
SAN          := -fsanitize=address,undefined -fno-sanitize-recover=all
FLIB_SRC     := $(wildcard libcommon/*/*.c formats/*.c kernels/*.c kernels/cpu/*.c)
FLIB_OBJ     := $(FLIB_SRC:%.c=$(FB)/%.o)
FHDRS        := $(wildcard libcommon/*/*.h formats/*.h kernels/*.h kernels/cpu/*.h)
ALL_FUZZ     := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ         ?= $(ALL_FUZZ)
FUZZ_LIBS    := -ljpeg -lstb -lopenblas -lm -lpthread

run: $(FUZZ:%=$(FB)/fuzz_%)
	@set -e; for n in $(FUZZ); do \
		tests/fuzz/run.sh $$n $(FUZZ_SECONDS) $(FB); done

$(FB)/%.o: %.c $(FHDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FFLAGS) -fsanitize=fuzzer-no-link $(SAN) -c -o $@ $<

$(FB)/libfuzz.a: $(FLIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FB)/fuzz_%: tests/fuzz/fuzz_%.c $(FB)/libfuzz.a $(FHDRS)
	$(FUZZ_CC) $(FFLAGS) -fsanitize=fuzzer $(SAN) -o $@ $< $(FB)/libfuzz.a $(FUZZ_LIBS)

.PHONY: run
.SECONDARY:
