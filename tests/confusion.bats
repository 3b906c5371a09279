#!/usr/bin/env bats
# confusion: accuracy, loss, the confusion matrix, precision and recall, and
# the lesson's lists, on hand-made predictions (tests/make_predictions.py)
# with hand-computed answers, and on precompute --full's real ones.
load helpers
bats_require_minimum_version 1.5.0

MP="$BATS_TEST_DIRNAME/make_predictions.py"

setup_file() {
	export T="$BATS_FILE_TMPDIR"
	# two classes, probabilities p(cats) p(dogs); the predicted class is the
	# larger: 7 of 10 right (c, e as dogs; h as a cat)
	"$PYTHON" "$MP" "$T/two.pred" cats,dogs <<-'EOF'
		cats/a.jpg 0 0.9  0.1
		cats/b.jpg 0 0.6  0.4
		cats/c.jpg 0 0.3  0.7
		cats/d.jpg 0 0.95 0.05
		cats/e.jpg 0 0.45 0.55
		dogs/f.jpg 1 0.2  0.8
		dogs/g.jpg 1 0.01 0.99
		dogs/h.jpg 1 0.7  0.3
		dogs/i.jpg 1 0.48 0.52
		dogs/j.jpg 1 0.4  0.6
	EOF
	# three classes; record 3's tie (dogs = birds) goes to the lower index
	"$PYTHON" "$MP" "$T/three.pred" cats,dogs,birds <<-'EOF'
		r0 0 0.5  0.3  0.2
		r1 1 0.34 0.33 0.33
		r2 2 0.1  0.1  0.8
		r3 2 0.2  0.4  0.4
		r4 1 0.05 0.9  0.05
		r5 0 0.2  0.7  0.1
	EOF
	"$PYTHON" "$MP" "$T/unl.pred" cats,dogs <<-'EOF'
		new/1.jpg - 0.25 0.75
		new/2.jpg - 0.875 0.125
		new/3.jpg - 0.5 0.5
	EOF
	# a tiny darknet with a fast.ai head for cats,dogs, and with its own
	# 10 ImageNet-style outputs; 32x32 images
	"$PYTHON" "$BATS_TEST_DIRNAME/make_tiny_darknet.py" "$T/tiny.cfg" "$T/tiny.weights" 3
	"$BIN/pretrained" -a darknet -w "$T/tiny.weights" --cfg "$T/tiny.cfg" -c cats,dogs \
		--seed 4 -o "$T/tiny.model"
	"$BIN/pretrained" -a darknet -w "$T/tiny.weights" --cfg "$T/tiny.cfg" --imagenet \
		-o "$T/tinyi.model"
	"$PYTHON" "$BATS_TEST_DIRNAME/make_images.py" "$T/plain.images" 48 32 cats,dogs --seed 2
}

@test "confusion: the report on hand-made predictions, as computed by hand" {
	run -0 bash -c "confusion '$T/two.pred' | awk -v RS= -v ORS='\n\n' '!/^random/' | sed '\$d'"
	# loss: -(ln .9 + ln .6 + ln .3 + ln .95 + ln .45 + ln .8 + ln .99 + ln .3
	# + ln .52 + ln .6) / 10 = 5.27188 / 10; precision cats 3/4, dogs 4/6,
	# recall 3/5, 4/5; most correct by p(class) down, most incorrect by
	# p(true class) up, most uncertain by the largest p up (b before j at .6)
	assert_output "accuracy  0.7000  (7 of 10)
loss      0.5272  (mean negative log-likelihood)

confusion matrix (rows: true class, columns: predicted)
       cats  dogs
cats      3     2
dogs      1     4

class  precision  recall   true  predicted
cats      0.7500  0.6000      5          4
dogs      0.6667  0.8000      5          6

most correct cats
  p(pred)  p(true)  true       predicted  name
   0.9500   0.9500  cats       cats       cats/d.jpg
   0.9000   0.9000  cats       cats       cats/a.jpg
   0.6000   0.6000  cats       cats       cats/b.jpg

most correct dogs
  p(pred)  p(true)  true       predicted  name
   0.9900   0.9900  dogs       dogs       dogs/g.jpg
   0.8000   0.8000  dogs       dogs       dogs/f.jpg
   0.6000   0.6000  dogs       dogs       dogs/j.jpg
   0.5200   0.5200  dogs       dogs       dogs/i.jpg

most incorrect cats
  p(pred)  p(true)  true       predicted  name
   0.7000   0.3000  cats       dogs       cats/c.jpg
   0.5500   0.4500  cats       dogs       cats/e.jpg

most incorrect dogs
  p(pred)  p(true)  true       predicted  name
   0.7000   0.3000  dogs       cats       dogs/h.jpg

most uncertain
  p(pred)  p(true)  true       predicted  name
   0.5200   0.5200  dogs       dogs       dogs/i.jpg
   0.5500   0.4500  cats       dogs       cats/e.jpg
   0.6000   0.6000  cats       cats       cats/b.jpg
   0.6000   0.6000  dogs       dogs       dogs/j.jpg"
	# -k 1 keeps the first of each list; -k 0 prints empty lists
	run -0 confusion -k 1 "$T/two.pred"
	assert_output --partial "most correct dogs
  p(pred)  p(true)  true       predicted  name
   0.9900   0.9900  dogs       dogs       dogs/g.jpg

most incorrect"
	run -0 confusion -k 0 - < "$T/two.pred"
	assert_output --partial "most uncertain
  (none)"
}

@test "confusion --tsv: the sections and columns of the man page, by hand; awk and Python read it" {
	run -0 bash -c "confusion --tsv '$T/two.pred' | grep -v '^random_'"
	assert_output "$(printf '%s\n' \
		'summary	records	10' 'summary	correct	7' 'summary	accuracy	0.7' \
		'summary	nll	0.527188' \
		'confusion	cats	cats	3' 'confusion	cats	dogs	2' \
		'confusion	dogs	cats	1' 'confusion	dogs	dogs	4' \
		'class	cats	0.75	0.6	5	4' 'class	dogs	0.666667	0.8	5	6' \
		'most_correct	1	3	cats	cats	0.95	0.95	cats/d.jpg' \
		'most_correct	2	0	cats	cats	0.9	0.9	cats/a.jpg' \
		'most_correct	3	1	cats	cats	0.6	0.6	cats/b.jpg' \
		'most_correct	1	6	dogs	dogs	0.99	0.99	dogs/g.jpg' \
		'most_correct	2	5	dogs	dogs	0.8	0.8	dogs/f.jpg' \
		'most_correct	3	9	dogs	dogs	0.6	0.6	dogs/j.jpg' \
		'most_correct	4	8	dogs	dogs	0.52	0.52	dogs/i.jpg' \
		'most_incorrect	1	2	cats	dogs	0.7	0.3	cats/c.jpg' \
		'most_incorrect	2	4	cats	dogs	0.55	0.45	cats/e.jpg' \
		'most_incorrect	1	7	dogs	cats	0.7	0.3	dogs/h.jpg' \
		'most_uncertain	1	8	dogs	dogs	0.52	0.52	dogs/i.jpg' \
		'most_uncertain	2	4	cats	dogs	0.55	0.45	cats/e.jpg' \
		'most_uncertain	3	1	cats	cats	0.6	0.6	cats/b.jpg' \
		'most_uncertain	4	9	dogs	dogs	0.6	0.6	dogs/j.jpg')"
	confusion --tsv "$T/two.pred" > "$T/two.tsv"
	# awk: the matrix adds up to the records, the field counts per section
	awk -F '\t' '$1 == "summary" && $2 == "records" { n = $3 }
		$1 == "confusion" { s += $4 }
		$1 == "summary" && NF != 3 || $1 == "confusion" && NF != 4 ||
		$1 == "class" && NF != 6 || $1 ~ /^(random|most)_/ && NF != 8 { bad = 1 }
		END { exit !(n == 10 && s == 10 && !bad) }' "$T/two.tsv"
	"$PYTHON" - "$T/two.tsv" <<-'EOF'
		import sys
		rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
		order = []
		for r in rows:
		    if not order or order[-1] != r[0]:
		        order.append(r[0])
		assert order == ["summary", "confusion", "class", "random_correct", "random_incorrect",
		                 "most_correct", "most_incorrect", "most_uncertain"], order
		for r in rows:
		    if r[0].startswith(("random_", "most_")):
		        rank, idx, p1, p2 = int(r[1]), int(r[2]), float(r[5]), float(r[6])
		        assert rank >= 1 and 0 <= idx < 10 and 0 <= p1 <= 1 and 0 <= p2 <= 1
		        assert (r[3] == r[4]) == (r[0] in ("random_correct", "most_correct")) or \
		            r[0] == "most_uncertain"
	EOF
}

@test "confusion: the random lists: the seed decides them; right ones right, wrong ones wrong" {
	confusion --tsv --seed 7 "$T/two.pred" > "$T/s7a"
	confusion --tsv --seed 7 "$T/two.pred" > "$T/s7b"
	cmp "$T/s7a" "$T/s7b"
	[ "$(grep -c '^random_correct' "$T/s7a")" -eq 4 ]
	[ "$(grep -c '^random_incorrect' "$T/s7a")" -eq 3 ]   # only 3 are wrong
	awk -F '\t' '$1 == "random_correct" && $4 != $5 || $1 == "random_incorrect" && $4 == $5 { exit 1 }' "$T/s7a"
	# no image twice in a list
	[ "$(grep '^random_correct' "$T/s7a" | cut -f 3 | sort -u | wc -l)" -eq 4 ]
	# other seeds, other draws (only the random lines change)
	n=0
	for s in 1 2 3 4 5 6 8 9; do
		confusion --tsv --seed $s "$T/two.pred" > "$T/s$s"
		cmp -s "$T/s7a" "$T/s$s" || n=$((n + 1))
		diff <(grep -v '^random_' "$T/s7a") <(grep -v '^random_' "$T/s$s")
	done
	[ "$n" -ge 5 ]
	# -k beyond the candidates: each of the 7 right ones once, in some order
	run -0 bash -c "confusion --tsv -k 50 --seed 3 '$T/two.pred' | awk -F '\t' '\$1 == \"random_correct\" { print \$3 }' | sort -n | tr '\n' ' '"
	assert_output "0 1 3 5 6 8 9 "
	# the text report draws the same images
	run -0 bash -c "confusion --seed 7 '$T/two.pred' | awk -v RS= '/^random correct/' | awk 'NR > 2 { print \$5 }'"
	assert_output "$(awk -F '\t' '$1 == "random_correct" { print $8 }' "$T/s7a")"
}

@test "confusion: three classes (the least uncertain is the largest smallest probability)" {
	run -0 bash -c "confusion --tsv '$T/three.pred' | grep -v '^random_'"
	# loss: -(ln .5 + ln .33 + ln .8 + ln .4 + ln .9 + ln .2) / 6 = 4.656044 / 6;
	# precision: cats 1/2, dogs 1/3, birds 1/1; recall 1/2 each;
	# uncertain by the largest probability: r1 .34, r3 .4, r0 .5, r5 .7
	assert_output "$(printf '%s\n' \
		'summary	records	6' 'summary	correct	3' 'summary	accuracy	0.5' \
		'summary	nll	0.776007' \
		'confusion	cats	cats	1' 'confusion	cats	dogs	1' 'confusion	cats	birds	0' \
		'confusion	dogs	cats	1' 'confusion	dogs	dogs	1' 'confusion	dogs	birds	0' \
		'confusion	birds	cats	0' 'confusion	birds	dogs	1' 'confusion	birds	birds	1' \
		'class	cats	0.5	0.5	2	2' 'class	dogs	0.333333	0.5	2	3' \
		'class	birds	1	0.5	2	1' \
		'most_correct	1	0	cats	cats	0.5	0.5	r0' \
		'most_correct	1	4	dogs	dogs	0.9	0.9	r4' \
		'most_correct	1	2	birds	birds	0.8	0.8	r2' \
		'most_incorrect	1	5	cats	dogs	0.7	0.2	r5' \
		'most_incorrect	1	1	dogs	cats	0.34	0.33	r1' \
		'most_incorrect	1	3	birds	dogs	0.4	0.4	r3' \
		'most_uncertain	1	1	dogs	cats	0.34	0.33	r1' \
		'most_uncertain	2	3	birds	dogs	0.4	0.4	r3' \
		'most_uncertain	3	0	cats	cats	0.5	0.5	r0' \
		'most_uncertain	4	5	cats	dogs	0.7	0.2	r5')"
	run -0 bash -c "confusion '$T/three.pred' | sed -n 4,8p"
	assert_output "confusion matrix (rows: true class, columns: predicted)
        cats   dogs  birds
cats       1      1      0
dogs       1      1      0
birds      0      1      1"
}

@test "confusion --list: unlabelled predictions, one line per record; also labelled ones" {
	run -0 confusion --list "$T/unl.pred"
	assert_output "$(printf '%s\n' 'new/1.jpg	dogs	0.7500' 'new/2.jpg	cats	0.8750' \
		'new/3.jpg	cats	0.5000')"
	run -0 bash -c "cat '$T/unl.pred' | confusion --list"
	assert_line --index 2 "new/3.jpg	cats	0.5000"
	run -0 confusion --list "$T/two.pred"
	[ "${#lines[@]}" -eq 10 ]
	assert_line --index 7 "dogs/h.jpg	cats	0.7000"
	# names are escaped; a record without a name is #index
	"$PYTHON" - "$BATS_TEST_DIRNAME" "$T/esc.pred" <<-'EOF'
		import sys
		sys.path.insert(0, sys.argv[1])
		from cnnpipe_stream import write_stream
		import numpy as np
		lp = np.log(np.array([0.5, 0.5], np.float32))
		write_stream(sys.argv[2], {"kind": "predictions", "classes": "x\ty,z", "labelled": "0"},
		             [{"logp": lp, "name": "tab\there\\"}, {"logp": lp}])
	EOF
	run -0 confusion --list "$T/esc.pred"
	assert_output "$(printf '%s\n' 'tab\there\\	x\ty	0.5000' '#1	x\ty	0.5000')"
}

@test "confusion: reads precompute --full (a real predictions stream): the report matches Python's" {
	precompute -m "$T/tiny.model" --full -j 2 "$T/plain.images" > "$T/real.pred"
	run -0 confusion "$T/real.pred"
	assert_line --index 0 --regexp '^accuracy  [01]\.[0-9]{4}  \([0-9]+ of 48\)$'
	assert_output --partial "most uncertain"
	confusion --tsv "$T/real.pred" > "$T/real.tsv"
	# accuracy, loss and matrix recomputed from the stream itself
	"$PYTHON" - "$BATS_TEST_DIRNAME" "$T/real.pred" "$T/real.tsv" <<-'EOF'
		import sys
		sys.path.insert(0, sys.argv[1])
		from cnnpipe_stream import read_stream
		import numpy as np
		meta, recs, _ = read_stream(sys.argv[2])
		lp = np.stack([r["logp"] for r in recs]).astype(np.float64)
		y = np.array([int(r["label"]) for r in recs])
		pred = lp.argmax(1)
		rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[3])]
		s = {r[1]: r[2] for r in rows if r[0] == "summary"}
		assert int(s["records"]) == 48 and int(s["correct"]) == (pred == y).sum(), s
		assert abs(float(s["nll"]) - (-lp[np.arange(48), y].mean())) < 1e-5, s
		names = meta["classes"].split(",")
		cm = {(r[1], r[2]): int(r[3]) for r in rows if r[0] == "confusion"}
		for t in range(2):
		    for p in range(2):
		        assert cm[names[t], names[p]] == ((y == t) & (pred == p)).sum()
		unc = [int(r[2]) for r in rows if r[0] == "most_uncertain"]
		mx = np.exp(lp).max(1)
		assert unc == sorted(range(48), key=lambda n: (np.float32(mx[n]), n))[:4], unc
	EOF
	run -0 confusion --list "$T/real.pred"
	[ "${#lines[@]}" -eq 48 ]
	assert_line --index 0 --regexp '^0/[0-9]{5}\.jpg	(cats|dogs)	[01]\.[0-9]{4}$'
}

@test "confusion --list: new photos, unlabelled: images | precompute --full | confusion --list" {
	"$PYTHON" - "$BATS_TEST_DIRNAME" "$T/plain.images" "$T/new.images" <<-'EOF'
		import sys
		sys.path.insert(0, sys.argv[1])
		from cnnpipe_stream import read_stream, write_stream
		meta, recs, _ = read_stream(sys.argv[2])
		meta["labelled"] = "0"
		del meta["classes"]
		write_stream(sys.argv[3], meta, [{"image": r["image"], "name": r["name"]} for r in recs[:5]])
	EOF
	run -0 bash -c "precompute -m '$T/tiny.model' --full '$T/new.images' | confusion --list"
	[ "${#lines[@]}" -eq 5 ]
	for i in 0 1 2 3 4; do
		assert_line --index $i --regexp '^0/[0-9]{5}\.jpg	(cats|dogs)	[01]\.[0-9]{4}$'
	done
	run ! bash -c "precompute -m '$T/tiny.model' --full '$T/new.images' | confusion"
	assert_failure 1
	assert_output --partial "confusion: -: unlabelled predictions (labelled=0)"
	assert_output --partial "--list"
}

@test "confusion: an ImageNet classifier's predictions of labelled images: listed, not compared" {
	precompute -m "$T/tinyi.model" --full "$T/plain.images" > "$T/imnet.pred"
	run ! confusion "$T/imnet.pred"
	assert_failure 1
	assert_output --partial "imnet.pred: its labels index the 2 classes of 'classes', not the model's 10 outputs"
	run -0 confusion --list "$T/imnet.pred"
	[ "${#lines[@]}" -eq 48 ]
	assert_line --index 0 --regexp '^0/[0-9]{5}\.jpg	[0-9]	[01]\.[0-9]{4}$'
}

@test "confusion: refuses what is not predictions, with the file and what is wrong" {
	run ! confusion "$T/plain.images"
	assert_failure 1
	assert_output "confusion: $T/plain.images: not a predictions stream (kind=images)"
	: > "$T/empty"
	run ! confusion "$T/empty"
	assert_failure 1
	assert_output --partial "confusion: $T/empty: byte 0: empty stream"
	run ! confusion "$T/none.pred"
	assert_failure 1
	assert_output --partial "confusion: $T/none.pred: "
	# truncated: cut inside a record
	head -c 1000 "$T/two.pred" > "$T/cut.pred"
	run ! confusion "$T/cut.pred"
	assert_failure 1
	assert_output --regexp "^confusion: $T/cut.pred: byte [0-9]+: truncated"
	run ! confusion --list "$T/cut.pred"
	assert_failure 1
	assert_output --partial "truncated"
	# a full disk is a failed run
	[ -w /dev/full ] || skip "/dev/full is absent"
	run ! bash -c "confusion '$T/two.pred' > /dev/full"
	assert_failure 1
	assert_output --partial "confusion: write error on standard output"
}

@test "confusion: refuses records without logp of the header's K, labels out of range, NaN" {
	printf 'a 0 0.5 0.5\nb 1 0.2 0.3 0.5\n' | "$PYTHON" "$MP" "$T/k3.pred" x,y
	run ! confusion "$T/k3.pred"
	assert_failure 1
	assert_output "confusion: $T/k3.pred: record 1: logp is f32 (3), not f32 (2) for the header's 2 classes"
	printf 'a 0 0.5 0.5\n' | "$PYTHON" "$MP" "$T/f64.pred" x,y --f64
	run ! confusion --list "$T/f64.pred"
	assert_failure 1
	assert_output --partial "record 0: logp is f64 (2), not f32 (2)"
	printf 'a 0 0.5 0.5\nb 1 0.5 0.5\n' | "$PYTHON" "$MP" "$T/nolp.pred" x,y --no-logp 1
	run ! confusion "$T/nolp.pred"
	assert_failure 1
	assert_output "confusion: $T/nolp.pred: record 1: no logp tensor"
	printf 'a 0 0.5 0.5\nb 2 0.5 0.5\n' | "$PYTHON" "$MP" "$T/lab.pred" x,y
	run ! confusion "$T/lab.pred"
	assert_failure 1
	assert_output "confusion: $T/lab.pred: record 1: label 2 is out of range: 2 classes (0 to 1)"
	printf 'a -1 0.5 0.5\n' | "$PYTHON" "$MP" "$T/neg.pred" x,y
	run ! confusion --tsv "$T/neg.pred"
	assert_failure 1
	assert_output --partial "record 0: label -1 is out of range"
	printf 'a 0 nan -1\n' | "$PYTHON" "$MP" "$T/nan.pred" x,y --logp
	run ! confusion "$T/nan.pred"
	assert_failure 1
	assert_output "confusion: $T/nan.pred: record 0: logp[0] is nan, not a log-probability"
	# -inf is a probability of 0
	printf 'a 0 0 -inf\n' | "$PYTHON" "$MP" "$T/inf.pred" x,y --logp
	run -0 confusion --tsv "$T/inf.pred"
	assert_line "summary	nll	0"
	assert_line "most_correct	1	0	x	x	1	1	a"
}

@test "confusion: refuses a header that does not add up, unlabelled input, no records" {
	printf 'a 0 0.5 0.5\n' | "$PYTHON" "$MP" "$T/nc.pred" x,y --meta num_classes=3
	run ! confusion "$T/nc.pred"
	assert_failure 1
	assert_output "confusion: $T/nc.pred: classes names 2 classes, num_classes is 3"
	printf 'a 0 0.5 0.5\n' | "$PYTHON" "$MP" "$T/nk.pred" x,y --meta num_classes= --meta classes=
	run ! confusion "$T/nk.pred"
	assert_failure 1
	assert_output "confusion: $T/nk.pred: no num_classes or classes in its metadata"
	printf 'a 0 0.5 0.5\n' | "$PYTHON" "$MP" "$T/nn.pred" x,y --meta num_classes=two
	run ! confusion "$T/nn.pred"
	assert_failure 1
	assert_output --partial "num_classes 'two' is not a number of classes"
	run ! confusion "$T/unl.pred"
	assert_failure 1
	assert_output "confusion: $T/unl.pred: unlabelled predictions (labelled=0): no accuracy or confusion matrix without labels; confusion --list lists the predicted classes"
	run ! confusion --tsv "$T/unl.pred"
	assert_failure 1
	"$PYTHON" "$MP" "$T/zero.pred" x,y --meta labelled=1 < /dev/null
	run ! confusion "$T/zero.pred"
	assert_failure 1
	assert_output "confusion: $T/zero.pred: no predictions (0 records)"
	run -0 confusion --list "$T/zero.pred"
	assert_output ""
	printf 'a 0 0.5 0.5\n' | "$PYTHON" "$MP" "$T/ncl.pred" x,y --meta classes=
	run ! confusion "$T/ncl.pred"
	assert_failure 1
	assert_output "confusion: $T/ncl.pred: its labels name no classes (no 'classes' in its metadata): no confusion matrix; --list lists the predicted classes"
	run -0 confusion --list "$T/ncl.pred"
	assert_output "a	0	0.5000"
	# labelled=1 but a record without its label
	printf 'a - 0.5 0.5\n' | "$PYTHON" "$MP" "$T/nl.pred" x,y --meta labelled=1
	run ! confusion "$T/nl.pred"
	assert_failure 1
	assert_output "confusion: $T/nl.pred: record 0: no label in a labelled stream"
}

@test "confusion: usage errors exit 2 with the usage line" {
	for args in "--tsv --list" "-k -1" "-k x" "--seed -3" "a b" "--bogus"; do
		run ! confusion $args
		assert_failure 2
		assert_output --partial "usage: confusion [-k N] [--seed N] [--tsv | --list] [PREDICTIONS]"
	done
	run -0 confusion --help
	assert_output "usage: confusion [-k N] [--seed N] [--tsv | --list] [PREDICTIONS]"
}
