#!/usr/bin/env bats
# pipelines/lesson1.mk (make train) end to end: a tiny dataset and a tiny
# darknet network made here (tests/make_tiny_darknet.py), so nothing from
# ../shared is needed.
load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	export D="$BATS_FILE_TMPDIR"
	# train: 4 cats, 3 dogs; valid: 2 cats, 1 dog (different counts, so a
	# mixed-up stage shows); small photos of varied sizes, one a PNG; test:
	# three unlabelled photos named by number, 10 before 2 in name order.
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
	mkdir "$D/data/test"
	for i in 1 2 10; do
		convert -seed $((50 + i)) -size $((44 + i))x42 plasma:red-blue "$D/data/test/$i.jpg"
	done
	/usr/bin/python3 "$BATS_TEST_DIRNAME/make_tiny_darknet.py" "$D/tiny.cfg" "$D/tiny.weights" 1

	# TRAIN= for the lesson: the real train, except that the unfrozen fit
	# gets SIGINT mid-epoch 1, deterministically: it is fed its input
	# (augment's 7 epochs of 4 batches) up to half-way through epoch 1,
	# signalled once epoch 0's checkpoint exists, then fed the rest.
	cat > "$D/interrupt-train" <<-'EOF'
	#!/bin/bash
	set -eu
	out= prev=
	for a in "$@"; do [ "$prev" = -o ] && out=$a; prev=$a; done
	case $out in *unfrozen.model) ;; *) exec "$REAL_TRAIN" "$@" ;; esac
	t=$(mktemp -d)
	trap 'rm -rf "$t"' EXIT
	cat > "$t/in"
	cut=$(( $(stat -c %s "$t/in") * 3 / 14 ))
	mkfifo "$t/fifo"
	"$REAL_TRAIN" "$@" < "$t/fifo" &
	pid=$!
	exec 3> "$t/fifo"
	head -c "$cut" "$t/in" >&3
	for ((i = 0; i < 6000; i++)); do [ -e "$out.ckpt" ] && break; sleep 0.01; done
	kill -INT "$pid"
	tail -c +"$((cut + 1))" "$t/in" >&3 2> /dev/null || true   # train stops reading
	exec 3>&-
	wait "$pid"
	EOF
	chmod +x "$D/interrupt-train"

	# one complete run that the tests copy (cp -a keeps the times)
	OUT="$D/ref" lesson1 > "$D/ref.log" 2>&1 || { cat "$D/ref.log"; return 1; }
}

setup() {
	OUT="$BATS_TEST_TMPDIR/out"
	PREDS="valid.pred valid.tta.pred test.tta.pred"
	STREAMS="train.images valid.images train.scaled valid.scaled test.scaled model train.act valid.act
	         head.model frozen.model unfrozen.model $PREDS"
	TEXTS="lr.tsv head.log frozen.log unfrozen.log head.out frozen.out unfrozen.out valid.tsv
	       valid.tta.tsv confusion.txt submission.csv"
}

# lesson1 [VAR=VALUE...] [make options/targets]: the pipeline on the tiny
# set and network, writing into $OUT, no report (the end-to-end test makes
# one); later arguments override.  An outer make's flags (make test -j2 ...)
# are not passed on.
lesson1() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -f "$REPO/pipelines/lesson1.mk" BIN="$BIN" \
		DATA="$D/data" ARCH=darknet WEIGHTS="$D/tiny.weights" CFG="$D/tiny.cfg" SZ=32 BS=2 JOBS=2 \
		WORK="$OUT" REPORT=/nonexistent/report.sh "$@"
}

# finished: $OUT as the complete reference run left it.
finished() {
	cp -a "$D/ref" "$OUT"
}

# meta FILE KEY: one metadata value of a stream.
meta() {
	tensor meta -k "$2" "$1"
}

# records FILE: the record count that tensor info reports.
records() {
	tensor info "$1" | sed -n 's/^records: //p'
}

# mtimes: every file under $OUT with its modification time (to the nanosecond).
mtimes() {
	find "$OUT" -printf '%P %T@\n' | sort
}

# no_partial: nothing but complete outputs in $OUT (no temporary files, no
# checkpoints), each stream valid.
no_partial() {
	local f n
	for f in "$OUT"/* "$OUT"/.[!.]*; do
		[ -e "$f" ] || continue
		n=${f##*/}
		case " $(echo $STREAMS) " in
		*" $n "*) tensor validate "$f"; continue ;;
		esac
		case " $(echo $TEXTS) " in
		*" $n "*) [ -s "$f" ] || { echo "empty $f" >&2; return 1; } ;;
		*)
			case $n in
			.*.opts | report) ;;
			*) echo "unexpected file $f" >&2; return 1 ;;
			esac ;;
		esac
	done
}

# stage_outputs: what is in $OUT besides the settings (.STAGE.opts).
stage_outputs() {
	ls "$OUT"
}

@test "lesson1.mk: darknet end to end: every stage's output, well formed, and the report" {
	local report=/nonexistent/report.sh
	[ ! -x "$REPO/pipelines/report.sh" ] || report="$REPO/pipelines/report.sh"
	run lesson1 REPORT="$report"
	assert_success
	local made="$output"
	assert_output --partial "train: 8 images, 0 skipped"
	assert_output --partial "valid: 3 images, 0 skipped"
	assert_output --partial "test: 3 images, 0 skipped"
	# each stage under its fast.ai line
	assert_output --partial "# learn.lr_find(); learn.sched.plot()"
	assert_output --partial $'# learn.fit(1e-2, 1)\n'
	assert_output --partial $'# learn.precompute = False; learn.fit(1e-2, 3, cycle_len=1)\n'
	assert_output --partial "# learn.unfreeze(); learn.fit([1e-4,1e-3,1e-2], 3, cycle_len=1, cycle_mult=2)"
	assert_output --partial "# log_preds, y = learn.TTA()"
	# three fits, each printing fast.ai's epoch table as it goes: 1, 3 and 7 epochs
	[ "$(grep -c '^epoch      trn_loss   val_loss   accuracy' <<< "$output")" -eq 3 ]
	assert_output --regexp $'\n    6      [0-9.]+ +[0-9.]+ +[0-9.]+'
	assert_output --partial "lesson1: $OUT/submission.csv: the Kaggle submission for $D/data/test"
	# the last line: the accuracy without and with TTA, as confusion counts it
	local plain tta
	plain=$(awk -F '\t' '$2 == "accuracy" { printf "%.2f", 100 * $3 }' "$OUT/valid.tsv")
	tta=$(awk -F '\t' '$2 == "accuracy" { printf "%.2f", 100 * $3 }' "$OUT/valid.tta.tsv")
	assert_equal "${lines[-1]}" \
		"lesson1: $OUT/unfrozen.model: accuracy $plain % without TTA, $tta % with TTA"

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
		assert_equal "$(meta "$OUT/$f.scaled" scale)" 41
		assert_equal "$(meta "$OUT/$f.scaled" labelled)" 1
		assert_equal "$(meta "$OUT/$f.act" kind)" activations
		assert_equal "$(meta "$OUT/$f.act" classes)" cats,dogs
		assert_equal "$(meta "$OUT/$f.act" labelled)" 1
		assert_equal "$(meta "$OUT/$f.act" arch)" darknet
		# concat pool of the last body layer's 16 channels
		assert_equal "$(meta "$OUT/$f.act" features)" 32
	done
	assert_equal "$(records "$OUT/train.scaled")" 8
	assert_equal "$(records "$OUT/valid.scaled")" 3
	assert_equal "$(records "$OUT/test.scaled")" 3
	assert_equal "$(meta "$OUT/test.scaled" labelled)" 0
	# labels carried through in folder order: cats (0) first, then dogs (1)
	assert_equal "$(tensor dump -t label "$OUT/train.act" | awk '{printf "%s", $NF}')" 00001111
	assert_equal "$(tensor dump -t label "$OUT/valid.act" | awk '{printf "%s", $NF}')" 001
	assert_equal "$(tensor dump -t name -r 7 "$OUT/train.act" | awk '{print $NF}')" '"dogs/dogs.3.jpg"'
	# the model: darknet body, fast.ai head for the two classes, input 32
	assert_equal "$(meta "$OUT/model" kind)" model
	assert_equal "$(meta "$OUT/model" classes)" cats,dogs
	assert_equal "$(meta "$OUT/model" input_size)" 32
	# the LR finder and three fits
	head -1 "$OUT/lr.tsv" | grep -q '^iteration	lr	loss	smoothed$'
	assert_equal "$(meta "$OUT/head.model" frozen)" 2
	assert_equal "$(meta "$OUT/frozen.model" frozen)" 2
	assert_equal "$(meta "$OUT/unfrozen.model" frozen)" 0
	# 4 batches of 2 an epoch: 1 + 3 + 7 epochs of rows, a header each
	assert_equal "$(wc -l < "$OUT/head.log")" 5
	assert_equal "$(wc -l < "$OUT/frozen.log")" 13
	assert_equal "$(wc -l < "$OUT/unfrozen.log")" 29
	grep -q '	0.0001	0.001	0.01	' "$OUT/unfrozen.log"
	# each fit's table: its header and a line per epoch, as printed
	for f in head:1 frozen:3 unfrozen:7; do
		assert_equal "$(head -1 "$OUT/${f%:*}.out")" "epoch      trn_loss   val_loss   accuracy  "
		assert_equal "$(awk 'NR > 1 { printf "%s ", $1 }' "$OUT/${f%:*}.out")" "$(seq -s ' ' 0 $((${f#*:} - 1))) "
		grep -qF -- "$(tail -1 "$OUT/${f%:*}.out")" <<< "$made"
	done
	# predictions of the unfrozen model: plain and with TTA on valid, TTA on test
	for f in $PREDS; do
		assert_equal "$(meta "$OUT/$f" kind)" predictions
		assert_equal "$(meta "$OUT/$f" classes)" cats,dogs
		assert_equal "$(meta "$OUT/$f" model)" "$OUT/unfrozen.model"
		assert_equal "$(records "$OUT/$f")" 3
	done
	assert_equal "$(meta "$OUT/valid.pred" tta)" 0
	assert_equal "$(meta "$OUT/valid.tta.pred" tta)" 4
	assert_equal "$(meta "$OUT/test.tta.pred" tta)" 4
	assert_equal "$(meta "$OUT/valid.pred" labelled)" 1
	assert_equal "$(meta "$OUT/test.tta.pred" labelled)" 0
	# plain predictions are what the last fit's validation saw
	awk -F '\t' -v l="$(awk 'END { print $3 }' "$OUT/unfrozen.out")" \
		'$2 == "nll" { d = $3 - l; exit !(d < 1e-5 && d > -1e-5) }' "$OUT/valid.tsv"
	# the confusion reports, both
	[ "$(grep -c '^accuracy  ' "$OUT/confusion.txt")" -eq 2 ]
	grep -q "^== $OUT/valid.pred: learn.predict()$" "$OUT/confusion.txt"
	grep -q "^== $OUT/valid.tta.pred: learn.TTA()$" "$OUT/confusion.txt"
	grep -q '^confusion matrix' "$OUT/confusion.txt"
	grep -q '^most uncertain' "$OUT/confusion.txt"
	assert_equal "$(awk -F '\t' '$2 == "records" { print $3 }' "$OUT/valid.tta.tsv")" 3
	# the submission: a header, the ids in numeric order, P(dogs) of each
	assert_equal "$(cut -d, -f1 "$OUT/submission.csv" | paste -sd ' ')" "id 1 2 10"
	local id p want
	while IFS=, read -r id p; do
		[ "$id" = id ] && continue
		[[ $p =~ ^0\.[0-9]{6}$|^1\.000000$ ]] || fail "label $p"
		want=$(tensor dump "$OUT/test.tta.pred" |
			awk -v f="\"$id.jpg\"" '$2 == "logp" { q = $6 } $2 == "name" && $5 == f { printf "%.6f", exp(q) }')
		assert_equal "$p" "$want"
	done < "$OUT/submission.csv"
	# the report, when pipelines/report.sh is there
	output="$made"
	if [ "$report" = /nonexistent/report.sh ]; then
		assert_output --partial "lesson1: no /nonexistent/report.sh (yet): no pictures and no report"
	else
		assert_output --partial "lesson1: $OUT/report/report.html: the pictures and the report"
		[ -s "$OUT/report/report.html" ]
		grep -qi '<html' "$OUT/report/report.html"
		for f in lr_find schedule loss confusion; do
			[ "$(head -c 4 "$OUT/report/$f.png" | od -An -c | tr -d ' ')" = '211PNG' ] ||
				fail "no picture $f.png"
		done
		run lesson1 REPORT="$report" -q "$OUT/report/report.html"
		assert_success
	fi
}

@test "lesson1.mk: a second make does nothing" {
	finished
	local before
	before="$(mtimes)"
	# every file target is up to date (the default target is phony: it
	# only says where the results are)
	run lesson1 -q $(printf "$OUT/%s " $STREAMS $TEXTS)
	assert_success
	run lesson1 -n
	assert_success
	assert_line --index 0 'echo "lesson1: no /nonexistent/report.sh (yet): no pictures and no report"'
	assert_line --index 1 "echo \"lesson1: $OUT/submission.csv: the Kaggle submission for $D/data/test\""
	assert_line --index 2 --regexp '^awk '
	[ "${#lines[@]}" -eq 5 ]   # the awk command's three lines
	run lesson1
	assert_success
	assert_equal "${#lines[@]}" 3
	assert_line --index 2 --regexp "^lesson1: $OUT/unfrozen.model: accuracy [0-9.]+ % without TTA, [0-9.]+ % with TTA$"
	assert_equal "$(mtimes)" "$before"
	# the programs' threads are no setting: nothing to redo either
	run lesson1 -n JOBS=1
	assert_success
	refute_output --partial bin/
}

# same_as_ref: every stream and text of $OUT as in the reference run, byte
# for byte but for the folder's own name, which metadata and logs carry.
same_as_ref() {
	local f
	for f in $STREAMS; do
		diff <(tensor meta "$OUT/$f" | sed "s|$OUT/|W/|g") \
		     <(tensor meta "$D/ref/$f" | sed "s|$D/ref/|W/|g") || { echo "$f: metadata" >&2; return 1; }
		diff <(tensor dump "$OUT/$f") <(tensor dump "$D/ref/$f") || { echo "$f: records" >&2; return 1; }
	done
	for f in $TEXTS; do
		diff <(sed "s|$OUT/|W/|g" "$OUT/$f") <(sed "s|$D/ref/|W/|g" "$D/ref/$f") ||
			{ echo "$f differs" >&2; return 1; }
	done
}

@test "lesson1.mk: SHARDS=3 under make -j3: the sharded stages joined are the unsharded bytes" {
	run lesson1 SHARDS=3 -j3
	assert_success
	# three programs per sharded stage, each given its shard
	assert_output --partial "--shard 1/3"
	assert_output --partial "--shard 3/3"
	assert_output --partial "bin/tensor cat $OUT/shards/train.images.1-of-3"
	[ "$(ls "$OUT/shards" | wc -l)" -eq 30 ]   # 10 sharded files x 3
	rm -rf "$OUT/shards"
	same_as_ref
}

@test "pipelines/slurm/lesson1.sh: job arrays of shards, then the joins and fits, as the lesson" {
	# a stand-in for sbatch: each job run at once, in order (the
	# dependencies hold), an array's tasks one after another
	cat > "$BATS_TEST_TMPDIR/sbatch" <<-'EOF'
	#!/bin/bash
	set -eu
	arr= wrap= dep=
	for a in "$@"; do
		case $a in
		--array=*) arr=${a#--array=} ;;
		--wrap=*) wrap=${a#--wrap=} ;;
		--dependency=afterok:*) dep=${a#--dependency=afterok:} ;;
		esac
	done
	n=$(($(cat "$JOBS_FILE" 2>/dev/null || echo 100) + 1)); echo $n > "$JOBS_FILE"
	[ -z "$dep" ] || [ "$dep" -lt "$n" ]   # depends on a job submitted before
	echo "$n $arr $wrap" >> "$JOBS_FILE.log"
	if [ -n "$arr" ]; then
		for ((i = ${arr%-*}; i <= ${arr#*-}; i++)); do
			SLURM_ARRAY_TASK_ID=$i bash -c "$wrap" > /dev/null 2>&1
		done
	else
		bash -c "$wrap" > /dev/null 2>&1
	fi
	echo $n
	EOF
	chmod +x "$BATS_TEST_TMPDIR/sbatch"
	export JOBS_FILE="$BATS_TEST_TMPDIR/jobs"
	run env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL SBATCH="$BATS_TEST_TMPDIR/sbatch" \
		"$REPO/pipelines/slurm/lesson1.sh" -n 2 BIN="$BIN" DATA="$D/data" ARCH=darknet \
		WEIGHTS="$D/tiny.weights" CFG="$D/tiny.cfg" SZ=32 BS=2 JOBS=2 WORK="$OUT" \
		REPORT=/nonexistent/report.sh
	assert_success
	assert_output "101 102 103 104 105 106 107 108"
	# four arrays of two tasks, four single jobs
	[ "$(grep -c ' 1-2 ' "$JOBS_FILE.log")" -eq 4 ]
	grep -q "SHARDS=2" "$JOBS_FILE.log"
	rm -rf "$OUT/shards" "$OUT"/slurm-*
	same_as_ref
	run -2 "$REPO/pipelines/slurm/lesson1.sh" -n x
	assert_output "lesson1.sh: -n x: a number of shards, 1 or more"
	run -2 "$REPO/pipelines/slurm/lesson1.sh" nonsense
	assert_output "lesson1.sh: nonsense: VAR=value expected"
}

@test "lesson1.mk: a changed setting redoes the stages that use it, and only those" {
	finished
	run lesson1 -n LR=3e-2
	assert_success
	refute_output --partial bin/imgprep
	refute_output --partial bin/pretrained
	refute_output --partial bin/precompute
	refute_output --partial bin/lrfind
	assert_output --partial "-o $OUT/head.model --valid $OUT/valid.act --lr 3e-2"
	assert_output --partial "-o $OUT/frozen.model --valid $OUT/valid.images --lr 3e-2"
	assert_output --partial "-o $OUT/unfrozen.model"
	assert_output --partial "tta -n 4 --seed 0 -m $OUT/unfrozen.model"
	# make -n writes no settings: the same dry run says the same again
	assert_equal "$(lesson1 -n LR=3e-2)" "$output"
	run lesson1 LR=3e-2
	assert_success
	run lesson1 -q LR=3e-2 $(printf "$OUT/%s " $STREAMS $TEXTS)
	assert_success
	# and back: the head is refitted at 1e-2, to the reference's bytes
	run lesson1 -n
	assert_output --partial "--lr 1e-2"
	run lesson1
	assert_success
	cmp "$OUT/unfrozen.model" "$D/ref/unfrozen.model"
	cmp "$OUT/submission.csv" "$D/ref/submission.csv"
	# SZ: everything from the images on
	run lesson1 -n SZ=40
	assert_output --partial "imgprep -s 40"
	assert_output --partial "imgprep --scale 52"
}

@test "lesson1.mk: other weights rebuild the model and what follows, not the images" {
	finished
	/usr/bin/python3 "$BATS_TEST_DIRNAME/make_tiny_darknet.py" "$BATS_TEST_TMPDIR/tiny.cfg" \
		"$BATS_TEST_TMPDIR/other.weights" 2
	run lesson1 -n WEIGHTS="$BATS_TEST_TMPDIR/other.weights"
	assert_success
	refute_output --partial bin/imgprep
	assert_output --partial "pretrained -a darknet --cfg $D/tiny.cfg -w $BATS_TEST_TMPDIR/other.weights"
	assert_output --partial "precompute -m $OUT/model -j 2 $OUT/train.images"
	assert_output --partial "precompute -m $OUT/model -j 2 $OUT/valid.images"
	run lesson1 WEIGHTS="$BATS_TEST_TMPDIR/other.weights"
	assert_success
	run cmp -s "$OUT/train.act" "$D/ref/train.act"
	assert_failure
	run lesson1 -q WEIGHTS="$BATS_TEST_TMPDIR/other.weights" "$OUT/train.act" "$OUT/valid.act"
	assert_success
	# the first weights again, though older than the model: rebuilt too
	run lesson1 -n
	assert_output --partial "pretrained -a darknet --cfg $D/tiny.cfg -w $D/tiny.weights"
}

@test "lesson1.mk: a missing DATA folder is one line that says to run make data; no stage runs" {
	run ! lesson1 DATA="$BATS_TEST_TMPDIR/nodata"
	assert_line "lesson1: no $BATS_TEST_TMPDIR/nodata/train: run 'make data' (fast.ai's dogscats.zip into data/dogscats) or pass DATA=DIR holding train/CLASS/*.jpg and valid/CLASS/*.jpg"
	refute_output --partial "bin/imgprep"
	assert_equal "$(stage_outputs)" ""
	# OUT= is WORK's old name
	run ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -f "$REPO/pipelines/lesson1.mk" BIN="$BIN" \
		DATA="$BATS_TEST_TMPDIR/nodata" OUT="$BATS_TEST_TMPDIR/old"
	assert_output --partial "lesson1: no $BATS_TEST_TMPDIR/nodata/train: run 'make data'"
	[ -d "$BATS_TEST_TMPDIR/old" ]
}

@test "lesson1.mk: missing weights or cfg: one line each, before any stage runs" {
	run ! lesson1 WEIGHTS=
	assert_line "lesson1: ARCH=darknet needs WEIGHTS=FILE: its pretrained weights (README.md: make train)"
	run ! lesson1 WEIGHTS="$BATS_TEST_TMPDIR/no.weights"
	assert_line "lesson1: no $BATS_TEST_TMPDIR/no.weights: pass WEIGHTS= a darknet weights file that exists"
	run ! lesson1 CFG=
	assert_line "lesson1: ARCH=darknet needs CFG=FILE.cfg: the network WEIGHTS are for"
	run ! lesson1 ARCH=resnet34 WEIGHTS= CFG= SZ=224
	assert_line "lesson1: ARCH=resnet34 needs WEIGHTS=FILE: its pretrained weights (README.md: make train)"
	# the lesson's default: torchvision's file, fetched by make weights
	run ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$BATS_TEST_TMPDIR" -f "$REPO/pipelines/lesson1.mk" \
		BIN="$BIN" DATA="$D/data" WORK="$OUT"
	assert_line "lesson1: no weights/resnet34-b627a593.pth: run 'make weights' (torchvision's resnet34) or pass WEIGHTS=FILE"
	refute_output --partial "bin/imgprep"
	assert_equal "$(stage_outputs)" ""
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
	[ -f "$OUT/submission.csv" ]
}

@test "lesson1.mk: a failing precompute leaves no partial activations" {
	# images of 64 for a 32 network: precompute refuses them
	run ! lesson1 SZ=64
	assert_output --partial "images of size 64, the model $OUT/model needs 32"
	[ ! -e "$OUT/train.act" ]
	no_partial
}

@test "lesson1.mk: interrupted mid-fit (SIGINT), a rerun resumes to the same model, log and table" {
	finished
	# the unfrozen fit and all after it to do again
	rm "$OUT"/{unfrozen.*,valid.pred,valid.tta.pred,valid.tsv,valid.tta.tsv,confusion.txt,test.tta.pred,submission.csv}
	export REAL_TRAIN="$BIN/train"
	run ! lesson1 TRAIN="$D/interrupt-train"
	assert_output --regexp "train: stopped by signal 2 at epoch 1, batch [123]: resume with --resume $OUT/unfrozen.model.ckpt"
	[ ! -e "$OUT/unfrozen.model" ]
	assert_equal "$(meta "$OUT/unfrozen.model.ckpt" epoch)" 1
	[ "$(wc -l < "$OUT/unfrozen.out")" -eq 2 ]   # the header and epoch 0
	# the next make resumes from the checkpoint: not from frozen.model
	run lesson1 -n
	assert_output --partial "train --resume $OUT/unfrozen.model.ckpt -o $OUT/unfrozen.model"
	refute_output --partial "-m $OUT/frozen.model"
	# unless it is older than one of the fit's inputs or settings
	touch -d '2000-01-01' "$OUT/unfrozen.model.ckpt"
	run lesson1 -n
	assert_output --partial "rm -f $OUT/unfrozen.log $OUT/unfrozen.out $OUT/unfrozen.model.ckpt"
	assert_output --partial "train -m $OUT/frozen.model -o $OUT/unfrozen.model"
	touch "$OUT/unfrozen.model.ckpt"
	# what a kill between an epoch's line and its checkpoint leaves: lines
	# and log rows past the checkpoint, dropped on resuming
	printf '    1      9.9        9.9        0.5       \n' >> "$OUT/unfrozen.out"
	printf '1\t99\t0.0001\t0.001\t0.01\t9.9\t9.9\n' >> "$OUT/unfrozen.log"
	run lesson1
	assert_success
	# the table shown whole: the epoch before the interruption, then the rest
	assert_output --regexp $'\n    0      [0-9.]+ +[0-9.]+ +[0-9.]+ *\n'
	assert_output --regexp $'\n    6      [0-9.]+ +[0-9.]+ +[0-9.]+'
	[ "$(grep -c '^epoch      trn_loss' <<< "$output")" -eq 1 ]
	cmp "$OUT/unfrozen.model" "$D/ref/unfrozen.model"
	cmp "$OUT/unfrozen.log" "$D/ref/unfrozen.log"
	cmp "$OUT/unfrozen.out" "$D/ref/unfrozen.out"
	cmp "$OUT/submission.csv" "$D/ref/submission.csv"
	cmp "$OUT/valid.tta.tsv" "$D/ref/valid.tta.tsv"
	no_partial
	run lesson1 -q $(printf "$OUT/%s " $STREAMS $TEXTS)
	assert_success
}

@test "lesson1.mk: make data: no network is one clear line; the archive is checked, then unpacked" {
	local T="$BATS_TEST_TMPDIR"
	run ! lesson1 data DATA="$T/dl/dogscats" DATA_URL=http://127.0.0.1:9/dogscats.zip
	assert_output --partial "lesson1: cannot fetch http://127.0.0.1:9/dogscats.zip (no network?): put the file at $T/dl/dogscats.zip by other means and run make data again"
	[ ! -e "$T/dl/dogscats" ]
	[ ! -e "$T/dl/dogscats.zip.part" ]
	# an archive laid out as fast.ai's: dogscats/{train,valid,test1}
	mkdir "$T/z"
	cp -r "$D/data" "$T/z/dogscats"
	mv "$T/z/dogscats/test" "$T/z/dogscats/test1"
	(cd "$T/z" && zip -qr ../dogscats.zip dogscats)
	local sum
	sum=$(sha256sum "$T/dogscats.zip" | cut -d ' ' -f 1)
	# without DATA_SHA256 it says the sum, keeps the archive, unpacks nothing
	run ! lesson1 data DATA="$T/dl/dogscats" DATA_URL="file://$T/dogscats.zip"
	assert_output --partial "lesson1: $T/dl/dogscats.zip: sha256 $sum; DATA_SHA256 is not filled in (README.md): check that sum and run make DATA_SHA256=$sum data"
	[ -s "$T/dl/dogscats.zip" ]
	[ ! -e "$T/dl/dogscats" ]
	# a wrong sum removes it
	run ! lesson1 data DATA="$T/dl/dogscats" DATA_SHA256=0123abcd
	assert_output --partial "lesson1: $T/dl/dogscats.zip: sha256 $sum is not 0123abcd...: removed (damaged or not the file)"
	[ ! -e "$T/dl/dogscats.zip" ]
	[ ! -e "$T/dl/dogscats" ]
	run lesson1 data DATA="$T/dl/dogscats" DATA_URL="file://$T/dogscats.zip" DATA_SHA256="$sum"
	assert_success
	[ -f "$T/dl/dogscats/train/cats/cats.1.jpg" ]
	[ -f "$T/dl/dogscats/test1/10.jpg" ]
	[ ! -e "$T/dl/dogscats.unzip" ]
	run lesson1 data DATA="$T/dl/dogscats"
	assert_success
	refute_output --partial curl
	# test1/, as in fast.ai's archive, is the test folder
	run lesson1 -n DATA="$T/dl/dogscats"
	assert_output --partial "-o $OUT/test.scaled $T/dl/dogscats/test1"
}

@test "lesson1.mk: make weights: torchvision's file, checked against the sha256 in its name" {
	local T="$BATS_TEST_TMPDIR"
	run ! lesson1 weights
	assert_line "lesson1: make weights fetches torchvision's ResNets (ARCH=resnet18 resnet34 resnet50); for ARCH=darknet pass WEIGHTS=FILE (README.md)"
	# a file that is not torchvision's resnet34
	run ! lesson1 weights ARCH=resnet34 WEIGHTS="$T/w/resnet34-b627a593.pth" WEIGHTS_URL="file://$D/tiny.weights"
	assert_output --regexp "lesson1: $T/w/resnet34-b627a593.pth: sha256 [0-9a-f]{64} is not b627a593...: removed"
	[ ! -e "$T/w/resnet34-b627a593.pth" ]
	[ ! -e "$T/w/resnet34-b627a593.pth.part" ]
	run ! lesson1 weights ARCH=resnet34 WEIGHTS="$T/w/resnet34-b627a593.pth" WEIGHTS_URL=http://127.0.0.1:9/r34.pth
	assert_output --partial "lesson1: cannot fetch http://127.0.0.1:9/r34.pth (no network?)"
	# the same path with the file's own sum: fetched
	run lesson1 weights ARCH=resnet34 WEIGHTS="$T/w/resnet34-b627a593.pth" WEIGHTS_URL="file://$D/tiny.weights" \
		WEIGHTS_SHA256="$(sha256sum "$D/tiny.weights" | cut -d ' ' -f 1)"
	assert_success
	cmp "$T/w/resnet34-b627a593.pth" "$D/tiny.weights"
}

@test "make train: the top Makefile includes the lesson; make -n train prints it" {
	run env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$REPO" --no-print-directory -n train \
		DATA="$D/data" ARCH=darknet WEIGHTS="$D/tiny.weights" CFG="$D/tiny.cfg" SZ=32 WORK="$OUT"
	assert_success
	assert_output --partial "# learn.lr_find(); learn.sched.plot()"
	assert_output --partial "bin/train -m $OUT/model -o $OUT/head.model"
	assert_output --partial "# learn.unfreeze(); learn.fit([1e-4,1e-3,1e-2], 3, cycle_len=1, cycle_mult=2)"
	assert_output --partial "$OUT/submission.csv"
	[ ! -e "$OUT" ]
}
