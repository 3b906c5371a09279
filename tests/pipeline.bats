#!/usr/bin/env bats
# pipelines/lesson1.mk end to end: a tiny dataset and a tiny darknet network
# made here (tests/make_tiny_darknet.py), so nothing from ../shared is needed.
load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	export D="$BATS_FILE_TMPDIR"
	# train: 4 cats, 3 dogs; valid: 2 cats, 1 dog (different counts, so a
	# mixed-up stage shows); small photos of varied sizes, one a PNG.
	local s c n i seed=0
	for s in train valid; do
		for c in cats dogs; do
			mkdir -p "$D/data/$s/$c"
			case $s/$c in
			train/cats) n=4 ;; train/dogs) n=3 ;; valid/cats) n=2 ;; *) n=1 ;;
			esac
			for ((i = 1; i <= n; i++)); do
				seed=$((seed + 1))
				convert -seed $seed -size $((40 + 7 * i))x$((36 + 5 * seed % 20)) \
					plasma:red-blue "$D/data/$s/$c/$c.$i.jpg"
			done
		done
	done
	convert -seed 99 -size 50x41 plasma:green-yellow "$D/data/train/dogs/dog.png"
	/usr/bin/python3 "$BATS_TEST_DIRNAME/make_tiny_darknet.py" "$D/tiny.cfg" "$D/tiny.weights" 1
}

setup() {
	OUT="$BATS_TEST_TMPDIR/out"
	STREAMS="train.images valid.images train.scaled model train.act valid.act head.model frozen.model unfrozen.model"
	TEXTS="lr.tsv head.log frozen.log unfrozen.log"
}

# lesson1 [VAR=VALUE...] [make options/targets]: the pipeline on the tiny
# set and network, writing into $OUT; later arguments override.  An outer
# make's flags (make test -j2 ...) are not passed on.
lesson1() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -f "$REPO/pipelines/lesson1.mk" BIN="$BIN" DATA="$D/data" ARCH=darknet \
		WEIGHTS="$D/tiny.weights" CFG="$D/tiny.cfg" SZ=32 JOBS=2 OUT="$OUT" "$@"
}

# meta FILE KEY: one metadata value of a stream.
meta() {
	tensor meta -k "$2" "$1"
}

# records FILE: the record count that tensor info reports.
records() {
	tensor info "$1" | sed -n 's/^records: //p'
}

# mtimes: every file in $OUT with its modification time (to the nanosecond).
mtimes() {
	(cd "$OUT" && stat -c '%n %.9Y' -- *)
}

# no_partial: nothing but complete outputs in $OUT (no temporary files).
no_partial() {
	local f
	for f in "$OUT"/* "$OUT"/.[!.]*; do
		[ -e "$f" ] || continue
		case " $STREAMS " in
		*" ${f##*/} "*) tensor validate "$f"; continue ;;
		esac
		case " $TEXTS " in
		*" ${f##*/} "*) [ -s "$f" ] || { echo "empty $f" >&2; return 1; } ;;
		*) echo "unexpected file $f" >&2; return 1 ;;
		esac
	done
}

@test "lesson1.mk: darknet end to end: every stage's output, valid, with the right records" {
	run lesson1
	assert_success
	assert_output --partial "train: 8 images, 0 skipped"
	assert_output --partial "valid: 3 images, 0 skipped"
	assert_output --partial "lesson1: $OUT/unfrozen.model is the lesson's model"
	# three fits, each printing fast.ai's epoch table: 1, 3 and 7 epochs
	[ "$(grep -c '^epoch      trn_loss   val_loss   accuracy' <<< "$output")" -eq 3 ]
	assert_output --regexp $'\n    6      [0-9.]+ +[0-9.]+ +[0-9.]+'
	local f
	for f in $STREAMS $TEXTS; do
		[ -f "$OUT/$f" ] || fail "no $OUT/$f"
	done
	run tensor validate $(printf "$OUT/%s " $STREAMS)
	assert_success
	assert_output ""
	no_partial
	# the images and activations: one record per photo, classes from train/
	assert_equal "$(records "$OUT/train.images")" 8
	assert_equal "$(records "$OUT/valid.images")" 3
	assert_equal "$(records "$OUT/train.act")" 8
	assert_equal "$(records "$OUT/valid.act")" 3
	for f in train valid; do
		assert_equal "$(meta "$OUT/$f.images" kind)" images
		assert_equal "$(meta "$OUT/$f.images" size)" 32
		assert_equal "$(meta "$OUT/$f.act" kind)" activations
		assert_equal "$(meta "$OUT/$f.act" classes)" cats,dogs
		assert_equal "$(meta "$OUT/$f.act" labelled)" 1
		assert_equal "$(meta "$OUT/$f.act" arch)" darknet
		# concat pool of the last body layer's 16 channels
		assert_equal "$(meta "$OUT/$f.act" features)" 32
	done
	# labels carried through in folder order: cats (0) first, then dogs (1)
	assert_equal "$(tensor dump -t label "$OUT/train.act" | awk '{printf "%s", $NF}')" 00001111
	assert_equal "$(tensor dump -t label "$OUT/valid.act" | awk '{printf "%s", $NF}')" 001
	assert_equal "$(tensor dump -t name -r 7 "$OUT/train.act" | awk '{print $NF}')" '"dogs/dogs.3.jpg"'
	# the model: darknet body, fast.ai head for the two classes, input 32
	assert_equal "$(meta "$OUT/model" kind)" model
	assert_equal "$(meta "$OUT/model" classes)" cats,dogs
	assert_equal "$(meta "$OUT/model" input_size)" 32
	# the training stages: scaled sources, the LR finder, three fits
	assert_equal "$(meta "$OUT/train.scaled" scale)" 41
	head -1 "$OUT/lr.tsv" | grep -q '^iteration	lr	loss	smoothed$'
	assert_equal "$(meta "$OUT/head.model" frozen)" 2
	assert_equal "$(meta "$OUT/frozen.model" frozen)" 2
	assert_equal "$(meta "$OUT/unfrozen.model" frozen)" 0
	# 1 batch an epoch: 1 + 3 + 7 rows and a header each
	assert_equal "$(cat "$OUT/head.log" "$OUT/frozen.log" "$OUT/unfrozen.log" | wc -l)" 14
	grep -q '	0.0001	0.001	0.01	' "$OUT/unfrozen.log"
	[ ! -e "$OUT/unfrozen.model.ckpt" ]
}

@test "lesson1.mk: a second run with the same arguments rebuilds nothing" {
	lesson1 >/dev/null 2>&1
	local before
	before="$(mtimes)"
	# every file target is up to date (the default target is phony: it
	# always says where the model is, and only that)
	run lesson1 -q $(printf "$OUT/%s " $STREAMS lr.tsv)
	assert_success
	run lesson1 -n
	assert_success
	assert_output "echo \"lesson1: $OUT/unfrozen.model is the lesson's model\""
	run lesson1
	assert_success
	refute_output --partial imgprep
	refute_output --partial pretrained
	refute_output --partial precompute
	refute_output --partial train
	assert_output "lesson1: $OUT/unfrozen.model is the lesson's model"
	assert_equal "$(mtimes)" "$before"
}

@test "lesson1.mk: new weights rebuild the model and the activations, not the images" {
	lesson1 >/dev/null 2>&1
	/usr/bin/python3 "$BATS_TEST_DIRNAME/make_tiny_darknet.py" "$BATS_TEST_TMPDIR/tiny.cfg" \
		"$BATS_TEST_TMPDIR/other.weights" 2
	cp "$OUT/train.act" "$BATS_TEST_TMPDIR/old.act"
	run lesson1 -n WEIGHTS="$BATS_TEST_TMPDIR/other.weights"
	assert_success
	refute_output --partial imgprep
	assert_output --partial "pretrained -a darknet -w $BATS_TEST_TMPDIR/other.weights"
	assert_output --partial "precompute -m $OUT/model -j 2 $OUT/train.images"
	assert_output --partial "precompute -m $OUT/model -j 2 $OUT/valid.images"
	run lesson1 WEIGHTS="$BATS_TEST_TMPDIR/other.weights"
	assert_success
	run cmp -s "$OUT/train.act" "$BATS_TEST_TMPDIR/old.act"
	assert_failure
	run lesson1 -q WEIGHTS="$BATS_TEST_TMPDIR/other.weights" "$OUT/train.act" "$OUT/valid.act"
	assert_success
}

@test "lesson1.mk: a missing DATA folder fails naming it, with no output" {
	run ! lesson1 DATA="$BATS_TEST_TMPDIR/nodata"
	assert_output --partial "imgprep: $BATS_TEST_TMPDIR/nodata/train: No such file or directory"
	assert_output --partial "Error 1"
	[ -z "$(ls -A "$OUT")" ]
}

@test "lesson1.mk: corrupt weights fail naming the file; no model, no activations; a rerun recovers" {
	head -c 3000 "$D/tiny.weights" > "$BATS_TEST_TMPDIR/cut.weights"
	run ! lesson1 WEIGHTS="$BATS_TEST_TMPDIR/cut.weights"
	assert_output --partial "pretrained: $BATS_TEST_TMPDIR/cut.weights: layer 2 (convolutional)"
	assert_output --partial "truncated, or not the weights of this cfg"
	[ ! -e "$OUT/model" ]
	[ ! -e "$OUT/train.act" ]
	no_partial   # train.images, complete, may stay
	# weights with bytes after the last layer's are not this cfg's
	{ cat "$D/tiny.weights"; printf 'junk'; } > "$BATS_TEST_TMPDIR/long.weights"
	run ! lesson1 WEIGHTS="$BATS_TEST_TMPDIR/long.weights"
	assert_output --partial "long.weights: 4 bytes left over after the last layer"
	[ ! -e "$OUT/model" ]
	no_partial
	# with good weights the run completes, reusing the train images
	run lesson1
	assert_success
	refute_output --partial "-o $OUT/train.images"
	no_partial
	[ -f "$OUT/valid.act" ]
}

@test "lesson1.mk: a failing precompute leaves no partial activations; WEIGHTS unset is named" {
	# images of 64 for a 32 network: precompute refuses them
	run ! lesson1 SZ=64
	assert_output --partial "images of size 64, the model $OUT/model needs 32"
	[ ! -e "$OUT/train.act" ]
	no_partial
	run ! lesson1 WEIGHTS= OUT="$BATS_TEST_TMPDIR/o2"
	assert_output --partial "lesson1: set WEIGHTS= to a pretrained darknet file"
	[ ! -e "$BATS_TEST_TMPDIR/o2/model" ]
}
