#!/usr/bin/env bats
# tests/check_layers.py: the include and call check of `make test`.
load helpers
bats_require_minimum_version 1.5.0

setup() {
	T="$BATS_TEST_TMPDIR/tree"
	mkdir -p "$T"/libcommon/util "$T"/libcommon/engine "$T"/libcommon/image \
		"$T"/formats "$T"/kernels/cpu "$T"/tools
	echo '#include "alloc.h"' > "$T"/libcommon/util/err.h
	: > "$T"/libcommon/util/alloc.h
	echo '#include "libcommon/util/err.h"' > "$T"/formats/stream.h
	printf '#include "libcommon/util/err.h"\n#include "kernels/backend.h"\n' > "$T"/kernels/cpu/ops.h
	: > "$T"/kernels/backend.h
	printf '#include "formats/stream.h"\n#include "kernels/backend.h"\n' > "$T"/libcommon/engine/net.h
	echo '#include "libcommon/engine/net.h"' > "$T"/tools/train.c
}

@test "layers: the tree of this checkout passes" {
	run python3 "$BATS_TEST_DIRNAME/check_layers.py" "$BATS_TEST_DIRNAME/.."
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "layers: a well-layered tree passes" {
	run python3 "$BATS_TEST_DIRNAME/check_layers.py" "$T"
	[ "$status" -eq 0 ]
}

@test "layers: an include up a floor is named with file and line" {
	printf '\n#include "formats/stream.h"\n' >> "$T"/libcommon/util/alloc.h
	run ! python3 "$BATS_TEST_DIRNAME/check_layers.py" "$T"
	[[ "$output" == *"libcommon/util/alloc.h:2: includes against the layers: formats/stream.h is a floor above it"* ]]
}

@test "layers: siblings on one floor may not include each other" {
	echo '#include "kernels/backend.h"' > "$T"/formats/npy.h
	echo '#include "libcommon/engine/net.h"' > "$T"/libcommon/image/geom.h
	run ! python3 "$BATS_TEST_DIRNAME/check_layers.py" "$T"
	[[ "$output" == *"formats/npy.h:1: "*"kernels/backend.h is a sibling on the same floor"* ]]
	[[ "$output" == *"libcommon/image/geom.h:1: "*"a sibling on the same floor"* ]]
}

@test "layers: the generic kernels headers may not include a backend's" {
	echo '#include "cpu/ops.h"' > "$T"/kernels/backend.h
	run ! python3 "$BATS_TEST_DIRNAME/check_layers.py" "$T"
	[[ "$output" == *"kernels/backend.h:1: "*"kernels/cpu/ops.h"* ]]
}

@test "layers: a cycle inside one floor is named" {
	echo '#include "err.h"' >> "$T"/libcommon/util/alloc.h
	run ! python3 "$BATS_TEST_DIRNAME/check_layers.py" "$T"
	[[ "$output" == *"include cycle: libcommon/util/err.h -> libcommon/util/alloc.h -> libcommon/util/err.h"* ]]
}

@test "layers: a file outside every floor is refused" {
	: > "$T"/libcommon/stray.h
	echo '#include "libcommon/stray.h"' >> "$T"/tools/train.c
	run ! python3 "$BATS_TEST_DIRNAME/check_layers.py" "$T"
	[[ "$output" == *"libcommon/stray.h is outside every floor"* ]]
}

@test "layers: above kernels/, a backend's own files are reached through its table only" {
	echo '#include "kernels/cpu/ops.h"' >> "$T"/libcommon/engine/net.h
	run ! python3 "$BATS_TEST_DIRNAME/check_layers.py" "$T"
	[[ "$output" == *"libcommon/engine/net.h:3: "*"kernels/cpu/ops.h is a backend's own file"* ]]
}
