#!/bin/bash
# A tiny lesson run for tests/report.bats, made by the real programs: photos
# (ImageMagick), a tiny darknet network (tests/make_tiny_darknet.py), then
# what pipelines/lesson1.mk leaves in its folder for pipelines/report.sh:
# lr.tsv, the three fits' --log files and standard outputs, and the
# predictions of tta -n 0 and tta -n 4 on the validation photos.
#
#   tests/report_work.sh DIR [DATA]     (programs from $BIN, default ./bin)
#
# DIR/data/{train,valid}/{cats,dogs}/*.jpg are the photos (made here, or a
# link to DATA, a dataset of that layout: to time the report on real
# photos), DIR/work the run.
set -eu -o pipefail
[ $# = 1 ] || [ $# = 2 ] || { echo "usage: tests/report_work.sh DIR [DATA]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$here/../bin}
D=$1
W=$D/work
mkdir -p "$W"

if [ $# = 2 ]; then
	ln -sfn "$(cd "$2" && pwd)" "$D/data"
else
	# photos: train 12 cats, 12 dogs; valid 8 and 8; of varied sizes, the two
	# classes drawn from different colours so that the model learns something
	seed=0
	for s in train valid; do
		for c in cats dogs; do
			mkdir -p "$D/data/$s/$c"
			case $c in cats) g=red-orange ;; *) g=blue-green ;; esac
			n=12
			[ $s = valid ] && n=8
			for ((i = 1; i <= n; i++)); do
				seed=$((seed + 1))
				convert -seed $seed -size $((36 + 5 * (i % 4)))x$((32 + 3 * (seed % 5))) \
					"plasma:$g" "$D/data/$s/$c/$c.$i.jpg"
			done
		done
	done
	# a grey one among the cats: some predictions go wrong
	convert -seed 77 -size 40x36 plasma:grey40-grey60 "$D/data/valid/cats/cat.9.jpg"
fi

/usr/bin/python3 "$here/make_tiny_darknet.py" "$D/tiny.cfg" "$D/tiny.weights" 3
J=(-j 2)
"$BIN/imgprep" -s 32 "${J[@]}" -o "$D/train.images" "$D/data/train" 2> /dev/null
"$BIN/imgprep" -s 32 "${J[@]}" --classes-from "$D/train.images" -o "$D/valid.images" \
	"$D/data/valid" 2> /dev/null
"$BIN/imgprep" --scale 41 "${J[@]}" --classes-from "$D/train.images" -o "$D/train.scaled" \
	"$D/data/train" 2> /dev/null
"$BIN/imgprep" --scale 32 "${J[@]}" --classes-from "$D/train.images" -o "$D/valid.scaled" \
	"$D/data/valid" 2> /dev/null
"$BIN/pretrained" -a darknet -w "$D/tiny.weights" --cfg "$D/tiny.cfg" \
	--classes-from "$D/train.images" --seed 4 -o "$D/model"
"$BIN/precompute" -m "$D/model" "${J[@]}" "$D/train.images" > "$D/train.act"
"$BIN/precompute" -m "$D/model" "${J[@]}" "$D/valid.images" > "$D/valid.act"
"$BIN/lrfind" -m "$D/model" -b "${BS:-4}" --iters 60 "${J[@]}" "$D/train.act" > "$W/lr.tsv" 2> /dev/null

F=(-b "${BS:-4}" --seed 1 "${J[@]}")
"$BIN/train" -m "$D/model" -o "$D/head.model" --valid "$D/valid.act" --lr 1e-2 \
	--cycles 2 "${F[@]}" --log "$W/head.log" "$D/train.act" > "$W/head.out"
"$BIN/augment" -s 32 --epochs 3 --seed 1 "${J[@]}" "$D/train.scaled" |
	"$BIN/train" -m "$D/head.model" -o "$D/frozen.model" --valid "$D/valid.images" \
		--lr 1e-2 --cycles 3 --cycle-len 1 "${F[@]}" --log "$W/frozen.log" - > "$W/frozen.out"
"$BIN/augment" -s 32 --epochs 3 --seed 2 "${J[@]}" "$D/train.scaled" |
	"$BIN/train" -m "$D/frozen.model" -o "$D/unfrozen.model" --valid "$D/valid.images" \
		--unfreeze --lr 1e-4,1e-3,1e-2 --cycles 2 --cycle-len 1 --cycle-mult 2 "${F[@]}" \
		--log "$W/unfrozen.log" - > "$W/unfrozen.out"
"$BIN/tta" -m "$D/unfrozen.model" -n 0 "${J[@]}" "$D/valid.images" > "$W/valid.pred"
"$BIN/tta" -m "$D/unfrozen.model" -n 4 "${J[@]}" "$D/valid.scaled" > "$W/valid.tta.pred"
