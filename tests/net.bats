#!/usr/bin/env bats
# The model graph: a whole torchvision ResNet18 forward (eval and train) and
# backward at 2x3x64x64 against PyTorch.  The golden file (46 MB of random
# weights) is made at test time by tests/gen_golden_net.py.
load helpers

@test "net: ResNet18 forward and backward = PyTorch (golden at test time)" {
	skip_without_torch
	[ -x "$REPO/build/tests/test_net" ] || make -C "$REPO" -s build/tests/test_net
	"$PYTHON" "$BATS_TEST_DIRNAME/gen_golden_net.py" "$BATS_TEST_TMPDIR/r18.stream" 64
	run "$REPO/build/tests/test_net" --golden "$BATS_TEST_TMPDIR/r18.stream"
	echo "$output" >&3
	assert_success
	assert_output --partial "4 passed, 0 failed"
}
