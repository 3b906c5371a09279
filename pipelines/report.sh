#!/bin/bash
# report.sh: the pictures and the HTML report of a lesson-1 run, the page
# fast.ai's lesson-1 notebook shows once the model is trained.
#
#   pipelines/report.sh -w WORK -i IMAGES_DIR -o REPORT_DIR
#
# WORK is the folder pipelines/lesson1.mk writes; what it uses from there
# (each may be absent: its section then says so instead of showing it):
#   lr.tsv                 lrfind(1)'s table          -> lr_find.png
#   head.log frozen.log unfrozen.log
#                          train --log of each fit    -> schedule.png, loss.png
#   head.out frozen.out unfrozen.out
#                          each fit's standard output (the epoch tables)
#                                                     -> the tables, loss.png
#   valid.pred             tta -n 0 (plain predictions)
#   valid.tta.pred         tta -n 4 (test-time augmentation)
#                          -> the accuracy before and after TTA; the one with
#                          TTA (else the plain one) -> confusion.png and the
#                          grids of confusion --tsv's lists
# IMAGES_DIR is the data's valid/ folder: the photos the predictions name.
# REPORT_DIR gets report.html, lr_find.png, schedule.png, loss.png,
# confusion.png and one grid per list (random_correct.png,
# random_incorrect.png, most_correct_I_CLASS.png, most_incorrect_I_CLASS.png
# for class I, most_uncertain.png; none for an empty list), each photo titled
# with its predicted class's probability and that class; the links are
# relative, so the folder can be copied or served as it is.  A photo the
# predictions name that is not in IMAGES_DIR is an error; one that does not
# decode is shown grey, and the page says so.  The schedule's y axis is
# logarithmic, so that differential rates show side by side.  It is written whole or not at all: into
# a temporary folder beside it, which then takes its place.  An existing
# REPORT_DIR must be an earlier report (or empty): it is replaced.
#
# Needs gnuplot (Debian: gnuplot-nox; the pngcairo terminal when it has
# it, else png) and ImageMagick (convert, montage, identify); confusion(1)
# and tensor(1) are $CONFUSION and $TENSOR, else found on PATH, else in
# ../bin from this script's folder.
#
# Exit status: 0 done, 1 failed ("report: what is wrong"), 2 usage.
set -eu
export LC_ALL=C
shopt -u patsub_replacement 2> /dev/null || true

USAGE="usage: pipelines/report.sh -w WORK -i IMAGES_DIR -o REPORT_DIR"
usage() {
	echo "$USAGE" >&2
	exit 2
}
die() {
	printf 'report: %s\n' "$*" >&2
	exit 1
}

work='' images='' out=''
while getopts :w:i:o:h opt; do
	case $opt in
	w) work=$OPTARG ;;
	i) images=$OPTARG ;;
	o) out=$OPTARG ;;
	h) usage ;;
	:) echo "report: option -$OPTARG needs an argument" >&2; usage ;;
	*) echo "report: invalid option -$OPTARG" >&2; usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# = 0 ] || { echo "report: unexpected argument $1" >&2; usage; }
if [ -z "$work" ] || [ -z "$images" ] || [ -z "$out" ]; then usage; fi

here=$(cd "$(dirname "$0")" && pwd)
# tool NAME: the program to run (on PATH, else in ../bin), or nothing
tool() {
	if command -v "$1" > /dev/null 2>&1; then
		command -v "$1"
	elif [ -x "$here/../bin/$1" ]; then
		printf '%s\n' "$here/../bin/$1"
	fi
}
CONFUSION=${CONFUSION:-$(tool confusion)}
TENSOR=${TENSOR:-$(tool tensor)}
for p in gnuplot convert montage identify; do
	command -v $p > /dev/null 2>&1 || case $p in
	gnuplot) die "gnuplot is not installed (Debian: gnuplot-nox)" ;;
	*) die "$p is not installed (Debian: imagemagick)" ;;
	esac
done
if gnuplot -e 'set terminal pngcairo' < /dev/null > /dev/null 2>&1; then
	TERM_PNG=pngcairo
else
	TERM_PNG=png
fi

# abs PATH: PATH from the root
abs() {
	case $1 in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s/%s\n' "$PWD" "$1" ;;
	esac
}
[ -d "$work" ] || die "$work: no such folder (WORK)"
[ -d "$images" ] || die "$images: no such folder (IMAGES_DIR)"
work=$(abs "$work")
images=$(abs "$images")
while [ "${out%/}" != "$out" ] && [ "$out" != / ]; do out=${out%/}; done
[ "$out" != / ] || die "/: not a report folder"
out=$(abs "$out")
if [ -e "$out" ] || [ -L "$out" ]; then
	if ! [ -d "$out" ] || [ -L "$out" ]; then die "$out: exists and is not a folder"; fi
	[ -e "$out/report.html" ] || [ -z "$(ls -A "$out")" ] ||
		die "$out: not empty and not a report (no report.html); name another folder"
fi
parent=$(dirname "$out")
mkdir -p -- "$parent" 2> /dev/null || die "$parent: cannot create the folder"
[ -d "$parent" ] || die "$parent: not a folder"
tmp=$(mktemp -d "$parent/.report.XXXXXX" 2> /dev/null) ||
	die "$out: cannot write in $parent"
trap 'rm -rf -- "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
s=$tmp/.work    # intermediate files, removed before the report takes its place
mkdir "$s"

# have FILE: WORK has FILE
have() { [ -f "$work/$1" ]; }

# ---------------------------------------------------------------------------
# The inputs, checked and turned into gnuplot's data files.

NUM='^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$'

# lr.tsv -> $s/lr.dat: iteration lr smoothed, the plot's window (sgdr.py
# LR_Finder.plot: points 10 to n-5; all of them, as lrfind(1) takes them,
# when there are too few), lr > 0; $s/lr.info: n lo hi min_lr min_loss
lr_points=0
if have lr.tsv; then
	RF=$work/lr.tsv RD=$s/lr.dat RI=$s/lr.info awk -F '\t' -v num="$NUM" '
	BEGIN { file = ENVIRON["RF"]; dat = ENVIRON["RD"]; info = ENVIRON["RI"] }
	function bad(m) { printf "%s: line %d: %s\n", file, NR, m > "/dev/stderr"; err = 1; exit 1 }
	NR == 1 {
		if ($0 != "iteration\tlr\tloss\tsmoothed")
			bad("not an lrfind table (header: iteration, lr, loss, smoothed)")
		next
	}
	{
		if (NF != 4) bad("4 fields expected, " NF " found")
		for (i = 1; i <= 4; i++) if ($i !~ num) bad("field " i " is not a number: " $i)
		n++; lr[n] = $2 + 0; sm[n] = $4 + 0
	}
	END {
		if (err) exit 1
		if (NR == 0) { printf "%s: empty\n", file > "/dev/stderr"; exit 1 }
		lo = 11; hi = n - 5
		if (hi < lo) { lo = 1; hi = n }
		at = 0
		for (i = lo; i <= hi; i++) {
			if (lr[i] <= 0) continue
			printf "%d %.9g %.9g\n", i - 1, lr[i], sm[i] > dat
			if (!at || sm[i] < sm[at]) at = i
		}
		close(dat)
		printf "%d %d %d %s %s\n", n, lo - 1, hi - 1, at ? lr[at] : "-", at ? sm[at] : "-" > info
	}' "$work/lr.tsv" 2> "$s/err" || die "$(head -n 1 "$s/err")"
	read -r lr_points lr_lo lr_hi lr_min lr_minloss < "$s/lr.info"
fi

# parse_log FIT OFFSET: WORK/FIT.log -> $s/FIT.sched (x lr0 lr1 ...),
# $s/FIT.loss (x smoothed), $s/FIT.ends (epoch x of its last batch),
# $s/FIT.info (groups, last iteration, first x).  x = OFFSET + iteration; a
# batch logged twice (a run resumed from a checkpoint older than the log)
# counts once, the later row.
parse_log() {
	RF=$work/$1.log RP=$s/$1 awk -F '\t' -v off="$2" -v num="$NUM" '
	BEGIN { file = ENVIRON["RF"]; pre = ENVIRON["RP"] }
	function bad(m) { printf "%s: line %d: %s\n", file, NR, m > "/dev/stderr"; err = 1; exit 1 }
	NR == 1 {
		ng = NF - 4
		ok = ng >= 1 && $1 == "epoch" && $2 == "iteration" && $(NF - 1) == "loss" && $NF == "smoothed"
		for (g = 0; ok && g < ng; g++) ok = $(3 + g) == "lr" g
		if (!ok) bad("not a train --log header (epoch, iteration, lr0 ..., loss, smoothed)")
		head = $0
		next
	}
	$0 == head { next }
	{
		if (NF != ng + 4) bad((ng + 4) " fields expected, " NF " found")
		for (i = 1; i <= NF; i++) if ($i !~ num) bad("field " i " is not a number: " $i)
		if ($1 !~ /^[0-9]+$/ || $2 !~ /^[0-9]+$/ || $2 == 0)
			bad("the epoch and the iteration are not counts")
		it = $2 + 0
		if (!(it in row)) { if (!rows++ || it < lo) lo = it; if (it > hi) hi = it }
		row[it] = $0
	}
	END {
		if (err) exit 1
		if (NR == 0) { printf "%s: empty\n", file > "/dev/stderr"; exit 1 }
		for (it = lo; rows && it <= hi; it++) {
			if (!(it in row)) continue
			split(row[it], f, "\t")
			x = off + it
			line = x
			for (g = 0; g < ng; g++) line = line " " (f[3 + g] > 0 ? f[3 + g] : "?")
			print line > (pre ".sched")
			print x, f[ng + 4] > (pre ".loss")
			end[f[1] + 0] = x
		}
		for (e in end) print e, end[e] > (pre ".ends")
		printf "%d %d %d\n", ng, rows ? hi : 0, off + lo > (pre ".info")
	}' "$work/$1.log" 2> "$s/err" || die "$(head -n 1 "$s/err")"
}

# parse_out FIT: WORK/FIT.out (fast.ai epoch table) -> $s/FIT.table
# (epoch trn_loss [val_loss accuracy]), an epoch printed twice (resumed) once
parse_out() {
	RF=$work/$1.out RT=$s/$1.table awk -v num="$NUM" '
	BEGIN { file = ENVIRON["RF"]; tab = ENVIRON["RT"] }
	function bad(m) { printf "%s: line %d: %s\n", file, NR, m > "/dev/stderr"; err = 1; exit 1 }
	function val(v) { return v ~ num || v ~ /^-?(nan|inf)$/ }
	/^[ \t]*$/ { next }
	$1 == "epoch" && $2 == "trn_loss" {
		if (NF == 4 && $3 == "val_loss" && $4 == "accuracy") v = 1
		else if (NF == 2) v = 0
		else bad("not a fast.ai epoch table header")
		if (seen && v != hv) bad("a second table of other columns")
		seen = 1; hv = v
		next
	}
	{
		if (!seen) bad("no epoch table header (epoch, trn_loss, ...) before it")
		if (NF != 2 + 2 * hv || $1 !~ /^[0-9]+$/) bad("not an epoch table row")
		for (i = 2; i <= NF; i++) if (!val($i)) bad("field " i " is not a number: " $i)
		e = $1 + 0
		if (!(e in row)) order[++n] = e
		row[e] = $0
	}
	END {
		if (err) exit 1
		if (!seen) { printf "%s: no epoch table\n", file > "/dev/stderr"; exit 1 }
		for (i = 1; i <= n; i++) { $0 = row[order[i]]; $1 = $1; print > tab }
		close(tab)
	}' "$work/$1.out" 2> "$s/err" || die "$(head -n 1 "$s/err")"
	[ -e "$s/$1.table" ] || : > "$s/$1.table"
}

FITS="head frozen unfrozen"
declare -A fit_desc=(
	[head]="The head alone, on the precomputed activations (precompute=True)"
	[frozen]="The head on augmented images through the frozen body, with SGDR"
	[unfrozen]="The whole network, unfrozen, on augmented images, with differential learning rates and SGDR"
)
off=0 groups=0
: > "$s/bounds"    # x name: where each fit starts
for f in $FITS; do
	if have "$f.log"; then
		parse_log "$f" "$off"
		read -r ng last first < "$s/$f.info"
		if [ -e "$s/$f.sched" ]; then
			echo "$first $f" >> "$s/bounds"
			off=$((off + last))
			[ "$ng" -gt "$groups" ] && groups=$ng
		fi
	fi
	if have "$f.out"; then
		parse_out "$f"
	fi
done

# the schedule: one file, the rows of every fit padded to the most groups
: > "$s/sched.dat"
: > "$s/loss.dat"
: > "$s/val.dat"
for f in $FITS; do
	[ -e "$s/$f.sched" ] || continue
	# a blank line between fits: gnuplot draws each fit's lines apart
	[ -s "$s/sched.dat" ] && echo | tee -a "$s/sched.dat" "$s/loss.dat" "$s/val.dat" > /dev/null
	awk -v G="$groups" '{ l = $0; for (i = NF; i <= G; i++) l = l " ?"; print l }' \
		"$s/$f.sched" >> "$s/sched.dat"
	cat "$s/$f.loss" >> "$s/loss.dat"
	# validation loss at the last batch of its epoch
	if [ -s "$s/$f.table" ] && [ "$(awk '{ print NF; exit }' "$s/$f.table")" = 4 ]; then
		awk 'NR == FNR { x[$1] = $2; next }
			($1 in x) && $3 ~ /^[-+.0-9eE]+$/ { print x[$1], $3 }' \
			"$s/$f.ends" "$s/$f.table" >> "$s/val.dat"
	fi
done

# predictions: confusion --tsv of each stream
# pred_tsv FILE: WORK/FILE -> $s/FILE.tsv
pred_tsv() {
	[ -n "$CONFUSION" ] || die "confusion is not found (set CONFUSION= or PATH)"
	"$CONFUSION" --tsv "$work/$1" > "$s/$1.tsv" 2> "$s/err" ||
		die "$(head -n 1 "$s/err")"
}
have valid.pred && pred_tsv valid.pred
have valid.tta.pred && pred_tsv valid.tta.pred
main=
if have valid.tta.pred; then
	main=valid.tta.pred
elif have valid.pred; then
	main=valid.pred
fi
# summary KEY FILE
summary() {
	awk -F '\t' -v k="$1" '$1 == "summary" && $2 == k { print $3 }' "$s/$2.tsv"
}
# tta_n FILE: the stream's augmented passes (meta tta), or nothing
tta_n() {
	if [ -n "$TENSOR" ]; then "$TENSOR" meta -k tta "$work/$1" 2> /dev/null || true; fi
}

# ---------------------------------------------------------------------------
# Figures (gnuplot, run in $s on its relative file names)

# gq TEXT: TEXT as a gnuplot string
gq() {
	printf "'%s'" "${1//\'/\'\'}"
}
# plot NAME W H: run gnuplot's script on standard input into $tmp/NAME.png
plot() {
	{
		echo "set terminal $TERM_PNG size $2,$3"
		echo "set termoption noenhanced"
		echo "set output $(gq "../$1.png")"
		cat
	} > "$s/$1.gp"
	(cd "$s" && gnuplot "$1.gp") > /dev/null 2> "$s/err" || {
		sed -n 1,3p "$s/err" >&2
		die "gnuplot failed on $1.png"
	}
	[ -s "$tmp/$1.png" ] || die "gnuplot wrote no $1.png"
}
# fit boundaries as gnuplot commands: a dashed line before each fit but
# the first, its name at the top
bounds_gp() {
	local x f first=1
	while read -r x f; do
		[ $first = 1 ] || echo "set arrow from $x - 0.5, graph 0 to $x - 0.5, graph 1 nohead dt 2 lc rgb 'gray50'"
		echo "set label $(gq "$f") at $x, graph 0.96 left offset 0.5, 0 tc rgb 'gray30'"
		first=0
	done < "$s/bounds"
}

if [ "$lr_points" -gt 0 ] && [ -s "$s/lr.dat" ]; then
	lrlabel=
	if [ "$lr_min" != - ]; then
		lrlabel=$(awk -v l="$lr_min" 'BEGIN { printf "lowest at %.3g; suggested %.3g", l, l / 10 }')
		lrlabel="set label $(gq "$lrlabel") at $lr_min, $lr_minloss point pt 7 ps 1.2 lc rgb '#d62728' offset 1, 1"
	fi
	plot lr_find 800 500 <<-EOF
		set title 'Learning rate finder'
		set xlabel 'learning rate (log scale)'
		set ylabel 'loss (smoothed)'
		set logscale x
		set format x '%.0e'
		set grid
		set key top left
		$lrlabel
		plot 'lr.dat' using 2:3 with lines lw 2 lc rgb '#1f77b4' title 'smoothed loss'
	EOF
fi

if [ -s "$s/sched.dat" ]; then
	plot schedule 900 500 <<-EOF
		set title 'Learning rate of each layer group'
		set xlabel 'iteration (the fits one after the other)'
		set ylabel 'learning rate (log scale)'
		set logscale y
		set format y '%.0e'
		set datafile missing '?'
		set grid
		set key below height 0.5
		set autoscale xfix
		$(bounds_gp)
		plot for [g=0:$((groups - 1))] 'sched.dat' using 1:(column(g + 2)) with lines lw 2 title sprintf('group %d', g)
	EOF
fi

if [ -s "$s/loss.dat" ]; then
	valplot=
	grep -q "[0-9]" "$s/val.dat" &&
		valplot=", 'val.dat' using 1:2 with linespoints pt 7 lw 2 lc rgb '#d62728' title 'validation loss (per epoch)'"
	plot loss 900 500 <<-EOF
		set title 'Loss'
		set xlabel 'iteration (the fits one after the other)'
		set ylabel 'loss'
		set grid
		set key below height 0.5
		set autoscale xfix
		$(bounds_gp)
		plot 'loss.dat' using 1:2 with lines lw 1.5 lc rgb '#1f77b4' title 'training loss (smoothed)'$valplot
	EOF
fi

# the classes, in index order, as confusion --tsv writes them (escaped)
classes=()
if [ -n "$main" ]; then
	while IFS= read -r c; do classes+=("$c"); done < <(awk -F '\t' '$1 == "class" { print $2 }' "$s/$main.tsv")
	K=${#classes[@]}
	[ "$K" -gt 0 ] || die "$work/$main: confusion gave no classes"
	awk -F '\t' -v K="$K" '
		NR == FNR { if ($1 == "class") id[$2] = n++; next }
		$1 == "confusion" { c[id[$2], id[$3]] = $4; if ($4 > max) max = $4 }
		END { for (t = 0; t < K; t++) for (p = 0; p < K; p++) print p, t, c[t, p] + 0
		      print max + 0 > "/dev/stderr" }' "$s/$main.tsv" "$s/$main.tsv" > "$s/cm.dat" 2> "$s/cm.max"
	cmmax=$(cat "$s/cm.max")
	tics=
	for ((k = 0; k < K; k++)); do
		# a tic label is a format: % as %%
		tics="$tics${tics:+, }$(gq "${classes[k]//%/%%}") $k"
	done
	side=$((K * 90 + 260))
	[ $side -gt 2000 ] && side=2000
	rot=
	[ "$K" -gt 4 ] && rot="rotate by -45"
	plot confusion $((side + 100)) $side <<-EOF
		set title 'Confusion matrix'
		set xlabel 'Predicted label'
		set ylabel 'True label'
		set size ratio -1
		set xrange [-0.5:$K - 0.5]
		set yrange [$K - 0.5:-0.5]
		set xtics ($tics) $rot scale 0
		set ytics ($tics) scale 0
		set palette defined (0 '#f7fbff', 1 '#08306b')
		set cbrange [0:$((cmmax > 0 ? cmmax : 1))]
		set cblabel 'images'
		unset key
		thr = $cmmax / 2.0
		plot 'cm.dat' using 1:2:3 with image, \
		     '' using 1:2:(\$3 > thr ? sprintf('%d', \$3) : '') with labels tc rgb 'white' font ',14', \
		     '' using 1:2:(\$3 > thr ? '' : sprintf('%d', \$3)) with labels tc rgb 'black' font ',14'
	EOF
fi

# ---------------------------------------------------------------------------
# Grids of the lists (ImageMagick)

TILE=200
# a font ImageMagick knows (its default, Helvetica, needs Ghostscript's)
imfont=$(convert -list font 2> /dev/null | awk '$1 == "Font:" { f[++n] = $2 }
	END { for (i = 1; i <= n; i++) if (f[i] == "DejaVu-Sans") { print f[i]; exit }
	      if (n) print f[1] }')
# tile N NAME: $s/tN.png, the photo IMAGES_DIR/NAME (NAME as confusion
# escapes it) fitted in TILE x TILE; a grey tile when it does not decode
unreadable=()
tile() {
	local name src ext
	printf -v name '%b' "$2"
	src=$images/$name
	[ -f "$src" ] || die "$src: no such photo (is -i the data's valid/ folder?)"
	# by a link of a plain name: ImageMagick reads no "format:" or "[frame]"
	# in it
	ext=${name##*.}
	case $ext in *[!A-Za-z0-9]* | "$name") ext=img ;; esac
	ln -sf -- "$src" "$s/p$1.$ext"
	if ! convert "${s}/p$1.${ext}[0]" -auto-orient -thumbnail "${TILE}x${TILE}" \
		-strip "$s/t$1.png" > /dev/null 2>&1; then
		unreadable+=("$2")
		convert -size "${TILE}x${TILE}" xc:'#d0d0d0' -fill '#555555' ${imfont:+-font "$imfont"} \
			-pointsize 18 -gravity center -annotate 0 'unreadable' "$s/t$1.png"
	fi
}
# label TEXT: TEXT as ImageMagick takes a -label or -title (no % or \ escapes)
im_text() {
	local t=${1//\\/\\\\}
	printf '%s' "${t//%/%%}"
}
# safe TEXT: a file-name part
safe() {
	local t=${1//[^A-Za-z0-9._-]/_}
	printf '%s' "${t:0:40}"
}

# lists: "file<TAB>title<TAB>section<TAB>class" of each grid, in page order
: > "$s/lists"
if [ -n "$main" ]; then
	{
		printf 'random_correct\tCorrectly classified (at random)\trandom_correct\t\n'
		printf 'random_incorrect\tIncorrectly classified (at random)\trandom_incorrect\t\n'
		for ((k = 0; k < K; k++)); do
			printf 'most_correct_%d_%s\tMost correct %s\tmost_correct\t%s\n' \
				"$k" "$(safe "${classes[k]}")" "${classes[k]}" "${classes[k]}"
		done
		for ((k = 0; k < K; k++)); do
			printf 'most_incorrect_%d_%s\tMost incorrect %s\tmost_incorrect\t%s\n' \
				"$k" "$(safe "${classes[k]}")" "${classes[k]}" "${classes[k]}"
		done
		printf 'most_uncertain\tMost uncertain predictions\tmost_uncertain\t\n'
	} > "$s/lists"
	n=0
	declare -A tile_of=()
	while IFS=$'\t' read -r file title sec cls; do
		# rank index true predicted p_predicted p_true name
		RS_=$sec RC=$cls awk -F '\t' 'BEGIN { sec = ENVIRON["RS_"]; cls = ENVIRON["RC"] }
			$1 == sec && (cls == "" || $4 == cls)' "$s/$main.tsv" > "$s/$file.rows"
		[ -s "$s/$file.rows" ] || continue
		args=()
		while IFS=$'\t' read -r _ _ _ _ pred ppred _ name; do
			# a photo in several lists is made a tile once
			if [ -z "${tile_of[$name]:-}" ]; then
				n=$((n + 1))
				tile "$n" "$name"
				tile_of[$name]=$n
			fi
			args+=(-label "$(im_text "$(printf '%.4f %s' "$ppred" "$pred")")" "$s/t${tile_of[$name]}.png")
		done < "$s/$file.rows"
		cols=${#args[@]}
		cols=$((cols / 3))
		[ $cols -gt 4 ] && cols=4
		montage "${args[@]}" -tile "${cols}x" -geometry "${TILE}x${TILE}+6+6" \
			-background white -fill black ${imfont:+-font "$imfont"} -pointsize 15 \
			"$s/grid.png" 2> "$s/err" ||
			die "montage failed on $file.png: $(head -n 1 "$s/err")"
		# the title above it, centred, the wider of the two
		convert -background white -fill black ${imfont:+-font "$imfont"} -pointsize 24 \
			\( "label:$(im_text "$title")" -bordercolor white -border 12x6 \) \
			"$s/grid.png" -gravity center -append \
			+repage "$tmp/$file.png" 2> "$s/err" ||
			die "convert failed on $file.png: $(head -n 1 "$s/err")"
	done < "$s/lists"
fi

# ---------------------------------------------------------------------------
# The page

# h TEXT: TEXT escaped for HTML
h() {
	local t=${1//&/&amp;}
	t=${t//</&lt;}
	t=${t//>/&gt;}
	t=${t//\"/&quot;}
	printf '%s' "$t"
}
# img NAME ALT CAPTION: a figure of $tmp/NAME.png
img() {
	local wh
	wh=$(identify -format '%w %h' "$tmp/$1.png" 2> /dev/null) ||
		die "$1.png: not a picture identify reads"
	printf '<figure>\n<img src="%s.png" alt="%s" width="%s" height="%s">\n' \
		"$1" "$(h "$2")" "${wh% *}" "${wh#* }"
	[ -z "$3" ] || printf '<figcaption>%s</figcaption>\n' "$3"
	printf '</figure>\n'
}
absent() {
	printf '<p class="absent">%s</p>\n' "$1"
}
# epoch_table FIT: the fit's epoch table as HTML
epoch_table() {
	awk -v q='"' '
	function h(t) { gsub(/&/, "\\&amp;", t); gsub(/</, "\\&lt;", t); gsub(/>/, "\\&gt;", t); return t }
	NR == 1 {
		print "<table class=" q "epochs" q ">"
		printf "<thead><tr><th>epoch</th><th>trn_loss</th>"
		if (NF == 4) printf "<th>val_loss</th><th>accuracy</th>"
		print "</tr></thead>"
		print "<tbody>"
	}
	{
		printf "<tr>"
		for (i = 1; i <= NF; i++) printf "<td>%s</td>", h($i)
		print "</tr>"
	}
	END { if (NR) print "</tbody>\n</table>" }' "$s/$1.table"
}

page() {
	local f title
	cat <<-EOF
		<!DOCTYPE html>
		<html lang="en">
		<head>
		<meta charset="utf-8">
		<meta name="viewport" content="width=device-width, initial-scale=1">
		<title>cnnpipe lesson 1: $(h "$(basename "$work")")</title>
		<style>
		body { font-family: sans-serif; max-width: 70em; margin: 1em auto; padding: 0 1em; color: #222; }
		h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
		figure { margin: 1em 0; }
		figcaption { font-size: 0.9em; color: #555; margin-top: 0.3em; }
		img { max-width: 100%; height: auto; }
		table { border-collapse: collapse; margin: 0.5em 0 1em; }
		th, td { border: 1px solid #ccc; padding: 0.2em 0.7em; text-align: right; font-variant-numeric: tabular-nums; }
		th { background: #f4f4f4; }
		td:first-child, th:first-child { text-align: left; }
		.absent { color: #8a5a00; background: #fff6e0; padding: 0.4em 0.7em; border-left: 3px solid #e0a000; }
		code { font-size: 0.95em; }
		</style>
		</head>
		<body>
		<header>
		<h1>Dogs vs. Cats: lesson 1, the report</h1>
		<p>The run in <code>$(h "$work")</code>; the photos from <code>$(h "$images")</code>.</p>
		</header>
		<main>
	EOF

	echo '<section id="lr-find">'
	echo '<h2>Learning rate finder</h2>'
	if ! have lr.tsv; then
		absent "lr.tsv is absent: no learning-rate finder plot."
	elif [ -e "$tmp/lr_find.png" ]; then
		local cap window
		if [ "$lr_lo" = 0 ] && [ "$lr_hi" = $((lr_points - 1)) ]; then
			window="all $lr_points points (too few to skip fast.ai's first 10 and last 5)"
		else
			window="iterations $lr_lo to $lr_hi of 0 to $((lr_points - 1)) (fast.ai skips the first 10 and the last 5)"
		fi
		cap="The smoothed training loss against the learning rate (<code>lr.tsv</code>, lrfind), $window."
		[ "$lr_min" = - ] || cap="$cap It is lowest at $(printf '%.3g' "$lr_min"); lrfind suggests a rate ten times lower."
		img lr_find "smoothed loss against the learning rate" "$cap"
	else
		absent "lr.tsv has no points with a positive learning rate to plot."
	fi
	echo '</section>'

	echo '<section id="training">'
	echo '<h2>Training</h2>'
	for f in $FITS; do
		printf '<h3>%s</h3>\n<p>%s.</p>\n' "$f" "$(h "${fit_desc[$f]}")"
		if ! have "$f.out"; then
			absent "$f.out is absent: no epoch table for this fit."
		elif [ ! -s "$s/$f.table" ]; then
			absent "$f.out has no epochs."
		else
			epoch_table "$f"
		fi
	done
	echo '</section>'

	echo '<section id="schedule">'
	echo '<h2>Learning rate schedule</h2>'
	if [ -e "$tmp/schedule.png" ]; then
		img schedule "learning rate of each layer group against the iteration" \
			"The rate of each layer group at every batch (<code>$(logs_used)</code>, train --log), the fits one after the other: the restarts of SGDR are the jumps.$(logs_missing)"
	else
		absent "No train --log file (head.log, frozen.log, unfrozen.log) with rows: no schedule plot."
	fi
	echo '</section>'

	echo '<section id="loss">'
	echo '<h2>Loss</h2>'
	if [ -e "$tmp/loss.png" ]; then
		local vcap
		if grep -q "[0-9]" "$s/val.dat"; then
			vcap=" The validation loss of each epoch (the epoch tables, <code>.out</code>) is drawn at its last batch."
		else
			vcap=" No epoch table with a validation loss goes with the logs: no validation loss."
		fi
		img loss "training and validation loss against the iteration" \
			"The smoothed training loss at every batch (<code>$(logs_used)</code>).$vcap$(logs_missing)"
	else
		absent "No train --log file (head.log, frozen.log, unfrozen.log) with rows: no loss plot."
	fi
	echo '</section>'

	echo '<section id="accuracy">'
	echo '<h2>Accuracy, before and after test-time augmentation</h2>'
	if [ -z "$main" ]; then
		absent "valid.pred and valid.tta.pred are absent: no predictions to measure."
	else
		echo '<table class="accuracy">'
		echo '<thead><tr><th>predictions</th><th>accuracy</th><th>loss (NLL)</th><th>correct</th><th>images</th></tr></thead>'
		echo '<tbody>'
		for f in valid.pred valid.tta.pred; do
			have "$f" || continue
			local n
			n=$(tta_n "$f")
			case $f in
			valid.pred) title="without TTA (<code>valid.pred</code>${n:+, tta -n $(h "$n")})" ;;
			*) title="with TTA (<code>valid.tta.pred</code>${n:+, tta -n $(h "$n")})" ;;
			esac
			printf '<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n' "$title" \
				"$(h "$(summary accuracy "$f")")" "$(h "$(summary nll "$f")")" \
				"$(h "$(summary correct "$f")")" "$(h "$(summary records "$f")")"
		done
		echo '</tbody>'
		echo '</table>'
		have valid.pred || absent "valid.pred (tta -n 0) is absent: no accuracy without TTA."
		have valid.tta.pred || absent "valid.tta.pred (tta -n 4) is absent: no accuracy with TTA."
	fi
	echo '</section>'

	echo '<section id="confusion">'
	echo '<h2>Confusion matrix</h2>'
	if [ -z "$main" ]; then
		absent "valid.pred and valid.tta.pred are absent: no confusion matrix."
	else
		img confusion "confusion matrix" \
			"Rows the true class, columns the predicted one (<code>confusion --tsv $(h "$main")</code>)."
		echo '<table class="classes">'
		echo '<thead><tr><th>class</th><th>precision</th><th>recall</th><th>images</th><th>predicted</th></tr></thead>'
		echo '<tbody>'
		awk -F '\t' '
		function h(t) { gsub(/&/, "\\&amp;", t); gsub(/</, "\\&lt;", t); gsub(/>/, "\\&gt;", t); return t }
		$1 == "class" { printf "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", h($2), h($3), h($4), h($5), h($6) }' \
			"$s/$main.tsv"
		echo '</tbody>'
		echo '</table>'
	fi
	echo '</section>'

	echo '<section id="analysis">'
	echo '<h2>Analysing the results</h2>'
	if [ -z "$main" ]; then
		absent "valid.pred and valid.tta.pred are absent: no images to look at."
	else
		printf '<p>The lists of <code>confusion --tsv %s</code>; each photo is titled with its predicted class&#39;s probability and that class.</p>\n' "$(h "$main")"
		if [ ${#unreadable[@]} -gt 0 ]; then
			local u names=
			for u in "${unreadable[@]}"; do names="$names${names:+, }<code>$(h "$u")</code>"; done
			absent "Photos that ImageMagick could not read, shown grey: $names."
		fi
		while IFS=$'\t' read -r file title sec cls; do
			printf '<h3>%s</h3>\n' "$(h "$title")"
			if [ -s "$s/$file.rows" ]; then
				img "$file" "$title" "$(awk -F '\t' '
				function h(t) { gsub(/&/, "\\&amp;", t); gsub(/</, "\\&lt;", t); gsub(/>/, "\\&gt;", t); return t }
				{ printf "%s<code>%s</code>", (NR > 1 ? ", " : ""), h($8) }' "$s/$file.rows")"
			else
				echo '<p>(none)</p>'
			fi
		done < "$s/lists"
	fi
	echo '</section>'

	cat <<-EOF
		</main>
		<footer>
		<p>Made by <code>pipelines/report.sh</code> of cnnpipe with gnuplot ($TERM_PNG) and ImageMagick.</p>
		</footer>
		</body>
		</html>
	EOF
}
# the log files that went into the plots, and the ones that did not
logs_used() {
	local f l=
	for f in $FITS; do [ -e "$s/$f.sched" ] && l="$l${l:+, }$f.log"; done
	printf '%s' "$l"
}
logs_missing() {
	local f l=
	for f in $FITS; do [ -e "$s/$f.sched" ] || l="$l${l:+, }$f.log"; done
	[ -z "$l" ] || printf ' Absent or empty, so not shown: %s.' "$l"
}

page > "$tmp/report.html"

# ---------------------------------------------------------------------------
# Into place: the new folder takes the old one's place

rm -rf -- "$s"
chmod "$(umask -S)" "$tmp"
if [ -e "$out" ]; then
	old=$(mktemp -d "$parent/.report-old.XXXXXX") || die "$out: cannot write in $parent"
	mv -- "$out" "$old/r" || die "$out: cannot move the old report aside"
	if ! mv -- "$tmp" "$out"; then
		mv -- "$old/r" "$out" || true
		rm -rf -- "$old"
		die "$out: cannot put the report in place"
	fi
	rm -rf -- "$old"
else
	mv -- "$tmp" "$out" || die "$out: cannot put the report in place"
fi
trap - EXIT
