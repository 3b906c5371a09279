#!/usr/bin/env bats
# The GPU where there is none: CNNPIPE_DEVICE=cuda fails clearly (exit 1,
# the program and the reason named, no output written) both in a build
# without the CUDA backend and in one with it on a machine without a GPU;
# the GPU's own tests (tests/gpu/, run on a GPU by tests/gpu/run.sh) build
# and skip here, and their comparisons hold on the CPU backend.
load helpers

gpu_answers() {
	command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1
}

setup() {
	gpu_answers && skip "a GPU answers here: tests/gpu/run.sh checks it"
	T="$BATS_TEST_TMPDIR"
}

@test "gpu: CNNPIPE_DEVICE=cuda without a GPU: precompute, train, lrfind, tta exit 1 naming why" {
	for tool in precompute lrfind tta; do
		run env CNNPIPE_DEVICE=cuda "$tool" -m "$T/none.model" "$T/none.stream"
		[ "$status" -eq 1 ] || { echo "$tool: exit $status: $output"; false; }
		[[ "$output" == "$tool: CNNPIPE_DEVICE=cuda: "* ]] || { echo "$output"; false; }
		[[ "$output" == *"this build has no GPU support"* || "$output" == *"no GPU answers"* ]] ||
			{ echo "$output"; false; }
	done
	run env CNNPIPE_DEVICE=cuda train -m "$T/none.model" -o "$T/out.model" "$T/none.stream"
	assert_failure 1
	assert_output --partial "train: CNNPIPE_DEVICE=cuda: "
	[ ! -e "$T/out.model" ]
}

@test "gpu: the message says which: no GPU support in this build, or no GPU answering" {
	stamp="$REPO/build/cuda.stamp"
	[ "$BIN" = "$REPO/bin" ] && [ -f "$stamp" ] || skip "not the build of $REPO/build"
	run env CNNPIPE_DEVICE=cuda precompute -m "$T/none.model"
	assert_failure 1
	if grep -q '^CUDA=1' "$stamp"; then
		assert_output --partial "no GPU answers (cudaGetDeviceCount: "
	else
		assert_output --partial "this build has no GPU support"
	fi
}

@test "gpu: an unknown device is named, with the ones there are" {
	run env CNNPIPE_DEVICE=tpu precompute -m "$T/none.model"
	assert_failure 1
	assert_output "precompute: CNNPIPE_DEVICE=tpu: unknown device (cpu, cuda)"
	run env CNNPIPE_DEVICE=cpu precompute -m "$T/none.model"
	assert_failure 1
	refute_output --partial "device"
}

@test "gpu: the GPU op tests skip without a GPU, and their checks pass on the CPU backend" {
	t="$REPO/build/tests/gpu/test_cuda_ops"
	[ -x "$t" ] || skip "$t is not built (make gpu-tests)"
	run "$t"
	assert_success
	assert_output --partial "test_cuda_ops: skipped: "
	run env CNNPIPE_GPU_TEST_CPU=1 "$t"
	assert_success
	assert_output --partial "test_cuda_ops: on the cpu backend"
	assert_output --regexp "test_cuda_ops: [0-9]+ passed, 0 failed"
}
