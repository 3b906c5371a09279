#!/usr/bin/env bats
# pipelines/report.sh: the pictures and the HTML page of a lesson run, on a
# tiny run of the real programs (tests/report_work.sh); the page checked by
# parsing it and by loading it in headless Chromium.
load helpers
bats_require_minimum_version 1.5.0

REPORT="$REPO/pipelines/report.sh"

setup_file() {
	export T="$BATS_FILE_TMPDIR"
	BIN="$BIN" "$BATS_TEST_DIRNAME/report_work.sh" "$T"
	"$REPORT" -w "$T/work" -i "$T/data/valid" -o "$T/report"
	confusion --tsv "$T/work/valid.tta.pred" > "$T/tta.tsv"
	confusion --tsv "$T/work/valid.pred" > "$T/plain.tsv"
}

# grids TSV: the grid files a report of confusion --tsv TSV has, one a line
grids() {
	awk -F '\t' '
	$1 == "class" { c[n++] = $2 }
	$1 ~ /^(random|most)_/ { has[$1 ($1 ~ /^most_(in)?correct$/ ? " " $4 : "")] = 1 }
	END {
		if (has["random_correct"]) print "random_correct.png"
		if (has["random_incorrect"]) print "random_incorrect.png"
		for (k = 0; k < n; k++) if (has["most_correct " c[k]]) print "most_correct_" k "_" c[k] ".png"
		for (k = 0; k < n; k++) if (has["most_incorrect " c[k]]) print "most_incorrect_" k "_" c[k] ".png"
		if (has["most_uncertain"]) print "most_uncertain.png"
	}' "$1"
}

# pngs DIR MINW MINH: every PNG in DIR is one, of at least MINW x MINH and
# at most 4000 x 4000
pngs() {
	local f wh
	for f in "$1"/*.png; do
		wh=$(identify -format '%m %w %h\n' "$f")
		echo "$f: $wh"
		# shellcheck disable=SC2086 # the three words
		set -- "$1" "$2" "$3" $wh
		[ "$4" = PNG ] && [ "$5" -ge "$2" ] && [ "$6" -ge "$3" ] &&
			[ "$5" -le 4000 ] && [ "$6" -le 4000 ] || return 1
	done
}

# check_html DIR: report.html in DIR parsed: HTML5 (doctype, lang, charset,
# title; known elements, balanced, unique ids), every src and href relative
# to a file in DIR, every img with alt and its PNG's true size, every PNG of
# DIR shown, every section with something besides its heading; prints the
# h3 headings and the text of the .absent notes
check_html() {
	"$PYTHON" - "$1" <<-'EOF'
		import os, subprocess, sys
		from html.parser import HTMLParser
		from urllib.parse import urlsplit, unquote
		d = sys.argv[1]
		VOID = {"meta", "img", "br", "hr", "link", "source", "wbr"}
		KNOWN = VOID | {"html", "head", "title", "style", "body", "header", "main",
		                "footer", "section", "h1", "h2", "h3", "p", "code", "figure",
		                "figcaption", "table", "thead", "tbody", "tr", "th", "td", "a",
		                "nav", "ul", "ol", "li", "pre"}
		class P(HTMLParser):
		    def __init__(s):
		        super().__init__(convert_charrefs=True)
		        s.stack, s.ids, s.refs, s.imgs, s.decl = [], set(), [], [], None
		        s.first, s.charset, s.title = None, False, ""
		        s.sections, s.h3, s.absent, s.text = [], [], [], None
		    def handle_decl(s, decl):
		        assert s.first is None, "the doctype comes first"
		        s.decl = decl
		    def handle_starttag(s, t, a):
		        a = dict(a)
		        if s.first is None:
		            s.first = t
		        assert t in KNOWN, "unexpected element " + t
		        if "id" in a:
		            assert a["id"] not in s.ids, "duplicate id " + a["id"]
		            s.ids.add(a["id"])
		        for k in ("src", "href"):
		            if k in a:
		                s.refs.append(a[k])
		        if t == "meta" and a.get("charset", "").lower() == "utf-8":
		            s.charset = True
		        if t == "html":
		            assert a.get("lang"), "html without lang"
		        if t == "img":
		            assert a.get("alt"), "img without alt"
		            s.imgs.append(a)
		        if t == "section":
		            s.sections.append([a.get("id"), 0])
		        elif s.sections and "section" in s.stack and t not in ("h2",) and \
		                s.stack[-1] == "section":
		            s.sections[-1][1] += 1
		        if t in ("title", "h3") or (t == "p" and a.get("class") == "absent"):
		            s.text = [t, ""]
		        if t not in VOID:
		            s.stack.append(t)
		    def handle_startendtag(s, t, a):
		        raise AssertionError("self-closing tag " + t)
		    def handle_endtag(s, t):
		        assert t not in VOID, "end tag of void element " + t
		        assert s.stack and s.stack[-1] == t, "</%s> closes %s" % (t, s.stack[-1:])
		        s.stack.pop()
		        if s.text and s.text[0] == t:
		            if t == "title":
		                s.title = s.text[1]
		            elif t == "h3":
		                s.h3.append(s.text[1])
		            else:
		                s.absent.append(s.text[1])
		            s.text = None
		    def handle_data(s, data):
		        if s.text:
		            s.text[1] += data
		p = P()
		p.feed(open(os.path.join(d, "report.html"), encoding="utf-8").read())
		p.close()
		assert p.decl == "DOCTYPE html", "doctype: %r" % p.decl
		assert p.first == "html" and not p.stack, "unclosed: %s" % p.stack
		assert p.charset and p.title.strip(), "charset, title"
		for r in p.refs:
		    u = urlsplit(r)
		    assert not u.scheme and not u.netloc and not u.path.startswith("/") \
		        and ".." not in u.path.split("/"), "not a relative link: " + r
		    assert os.path.isfile(os.path.join(d, unquote(u.path))), "no such file: " + r
		shown = set()
		for a in p.imgs:
		    w, h = subprocess.check_output(["identify", "-format", "%w %h",
		                                    os.path.join(d, a["src"])]).split()
		    assert (a.get("width"), a.get("height")) == (w.decode(), h.decode()), a
		    shown.add(a["src"])
		pngs = {f for f in os.listdir(d) if f.endswith(".png")}
		assert shown == pngs, "shown %s, in the folder %s" % (sorted(shown), sorted(pngs))
		for sid, n in p.sections:
		    assert n > 0, "empty section " + str(sid)
		for t in p.h3:
		    print("h3:", t)
		for t in p.absent:
		    print("absent:", " ".join(t.split()))
	EOF
}

@test "report: the figures and a grid per list, PNGs of sensible sizes, nothing else" {
	ls -A "$T/report" | sort > "$T/got"
	{ printf '%s\n' confusion.png loss.png lr_find.png report.html schedule.png; grids "$T/tta.tsv"; } |
		sort > "$T/want"
	diff "$T/want" "$T/got"
	grep -q '^most_incorrect_' "$T/want"    # a real test: some are wrong
	pngs "$T/report" 200 150
	# the plots' sizes, the grids a row of up to 4 tiles of at most 200
	[ "$(identify -format '%w %h' "$T/report/lr_find.png")" = "800 500" ]
	[ "$(identify -format '%w %h' "$T/report/schedule.png")" = "900 500" ]
	[ "$(identify -format '%w %h' "$T/report/loss.png")" = "900 500" ]
	run -0 identify -format '%w %h' "$T/report/most_uncertain.png"
	[ "${output% *}" -le $((4 * 212)) ] && [ "${output#* }" -ge 200 ]
	# no temporary folder left beside it
	run -0 find "$T" -maxdepth 1 -name '.report*'
	assert_output ""
}

@test "report: report.html is HTML5 whose every link is a file of the folder and every image shown" {
	run -0 check_html "$T/report"
	refute_output --partial "absent:"
	# a heading for every list, the classes in order
	assert_output --partial "h3: Correctly classified (at random)"
	assert_output --partial "h3: Most correct cats
h3: Most correct dogs
h3: Most incorrect cats
h3: Most incorrect dogs
h3: Most uncertain predictions"
}

@test "report: the epoch tables of each fit and the accuracy before and after TTA" {
	local f
	for f in head frozen unfrozen; do
		# every row of the table, its numbers as train printed them
		while read -r e trn val acc; do
			[ "$e" = epoch ] && continue
			grep -qF "<tr><td>$e</td><td>$trn</td><td>$val</td><td>$acc</td></tr>" "$T/report/report.html"
		done < "$T/work/$f.out"
	done
	[ "$(grep -c '<table class="epochs">' "$T/report/report.html")" = 3 ]
	for f in plain tta; do
		acc=$(awk -F '\t' '$2 == "accuracy" { print $3 }' "$T/$f.tsv")
		nll=$(awk -F '\t' '$2 == "nll" { print $3 }' "$T/$f.tsv")
		grep -qF "<td>$acc</td><td>$nll</td>" "$T/report/report.html"
	done
	grep -qF 'without TTA (<code>valid.pred</code>, tta -n 0)' "$T/report/report.html"
	grep -qF 'with TTA (<code>valid.tta.pred</code>, tta -n 4)' "$T/report/report.html"
	# the matrix of the TTA predictions
	grep -qF 'confusion --tsv valid.tta.pred' "$T/report/report.html"
	# the lr finder's window, as fast.ai plots it
	n=$(($(wc -l < "$T/work/lr.tsv") - 1))
	grep -qF "iterations 10 to $((n - 6)) of 0 to $((n - 1))" "$T/report/report.html"
}

@test "report: headless Chromium renders the page, every image decoded, no section empty" {
	command -v chromium > /dev/null || skip "chromium is not installed"
	local R="$BATS_TEST_TMPDIR/r"
	cp -r "$T/report" "$R"
	# the page with a script that marks what did not render
	cat > "$BATS_TEST_TMPDIR/check.js" <<-'EOF'
		<script>
		window.addEventListener('load', function () {
		  var imgs = document.images, bad = 0, empty = 0;
		  for (var i = 0; i < imgs.length; i++)
		    if (!imgs[i].complete || imgs[i].naturalWidth === 0 || imgs[i].clientWidth === 0) {
		      imgs[i].setAttribute('data-broken', ''); bad++;
		    }
		  var secs = document.querySelectorAll('section');
		  for (var j = 0; j < secs.length; j++) {
		    var k, kids = secs[j].children, n = 0;
		    for (k = 0; k < kids.length; k++)
		      if (!/^H2$/.test(kids[k].tagName) && kids[k].getBoundingClientRect().height > 0) n++;
		    if (!n) { secs[j].setAttribute('data-empty', ''); empty++; }
		  }
		  document.body.setAttribute('data-check',
		    'images=' + imgs.length + ' broken=' + bad + ' sections=' + secs.length + ' empty=' + empty);
		});
		</script>
	EOF
	awk 'FNR == NR { js = js $0 "\n"; next } /<\/body>/ { printf "%s", js } { print }' \
		"$BATS_TEST_TMPDIR/check.js" "$R/report.html" > "$R/check.html"
	# chromium $1: the DOM of $1 once loaded
	dom() {
		timeout 120 chromium --headless --disable-gpu --no-sandbox --disable-dev-shm-usage \
			--user-data-dir="$BATS_TEST_TMPDIR/profile" --virtual-time-budget=10000 \
			--dump-dom "file://$1" 2> /dev/null
	}
	n=$(grep -o '<img ' "$R/report.html" | wc -l)
	run -0 dom "$R/check.html"
	assert_output --partial "data-check=\"images=$n broken=0 sections=7 empty=0\""
	refute_output --partial 'data-broken=""'
	# and the check sees a broken image: a PNG that is not one
	printf 'not a picture' > "$R/loss.png"
	run -0 dom "$R/check.html"
	assert_output --partial "data-check=\"images=$n broken=1 sections=7 empty=0\""
}

@test "report: a WORK with some files: the missing sections say so, never a broken image" {
	local W="$BATS_TEST_TMPDIR/w" O="$BATS_TEST_TMPDIR/o"
	mkdir "$W"
	cp "$T/work/frozen.log" "$T/work/unfrozen.out" "$T/work/valid.pred" "$W/"
	run -0 "$REPORT" -w "$W" -i "$T/data/valid" -o "$O"
	confusion --tsv "$W/valid.pred" > "$BATS_TEST_TMPDIR/p.tsv"
	ls "$O" | sort > "$BATS_TEST_TMPDIR/got"
	{ printf '%s\n' confusion.png loss.png report.html schedule.png; grids "$BATS_TEST_TMPDIR/p.tsv"; } |
		sort > "$BATS_TEST_TMPDIR/want"
	diff "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
	pngs "$O" 200 150
	run -0 check_html "$O"
	assert_output --partial "absent: lr.tsv is absent: no learning-rate finder plot."
	assert_output --partial "absent: head.out is absent: no epoch table for this fit."
	assert_output --partial "absent: frozen.out is absent"
	refute_output --partial "absent: unfrozen.out"
	assert_output --partial "absent: valid.tta.pred (tta -n 4) is absent: no accuracy with TTA."
	grep -qF 'confusion --tsv valid.pred' "$O/report.html"
	grep -qF 'Absent or empty, so not shown: head.log, unfrozen.log.' "$O/report.html"

	# nothing at all: a page of notes
	rm -r "${W:?}"/* "$O"
	run -0 "$REPORT" -w "$W" -i "$T/data/valid" -o "$O"
	[ "$(ls "$O")" = report.html ]
	run -0 check_html "$O"
	assert_output --partial "absent: lr.tsv is absent"
	assert_output --partial "absent: No train --log file"
	assert_output --partial "absent: valid.pred and valid.tta.pred are absent: no images to look at."
	refute_output --partial "h3: Most"
}

@test "report: a short lr.tsv is plotted whole, as lrfind takes it" {
	local W="$BATS_TEST_TMPDIR/w"
	mkdir "$W"
	head -n 13 "$T/work/lr.tsv" > "$W/lr.tsv"
	run -0 "$REPORT" -w "$W" -i "$T/data/valid" -o "$BATS_TEST_TMPDIR/o"
	grep -qF "all 12 points (too few to skip" "$BATS_TEST_TMPDIR/o/report.html"
	pngs "$BATS_TEST_TMPDIR/o" 800 500
}

@test "report: names and classes with HTML and ImageMagick specials; a photo that does not decode" {
	local D="$BATS_TEST_TMPDIR" c1='a<b>&"c"' c2="100%'s"
	mkdir -p "$D/img/x" "$D/w"
	local names=('x/%d[0].jpg' 'x/label:@n.jpg' 'x/<i>&amp;.jpg' 'x/broken.jpg' 'x/back\slash.jpg')
	local i=0 n
	for n in "${names[@]}"; do
		i=$((i + 1))
		# (by a plain name: convert reads %d in the name it writes)
		convert -seed $i -size 30x20 plasma:red-blue "$D/p.jpg"
		mv "$D/p.jpg" "$D/img/$n"
	done
	printf 'not a JPEG' > "$D/img/x/broken.jpg"
	"$PYTHON" "$BATS_TEST_DIRNAME/make_predictions.py" "$D/w/valid.pred" "$c1,$c2" <<-EOF
		${names[0]} 0 0.9 0.1
		${names[1]} 0 0.2 0.8
		${names[2]} 1 0.3 0.7
		${names[3]} 1 0.6 0.4
		${names[4]} 0 0.7 0.3
	EOF
	run -0 "$REPORT" -w "$D/w" -i "$D/img" -o "$D/o"
	pngs "$D/o" 200 150
	run -0 check_html "$D/o"
	assert_output --partial "h3: Most correct $c1"
	assert_output --partial "h3: Most incorrect $c2"
	assert_output --partial "absent: Photos that ImageMagick could not read, shown grey: x/broken.jpg."
	grep -qF '<code>x/&lt;i&gt;&amp;amp;.jpg</code>' "$D/o/report.html"
	[ -e "$D/o/most_correct_0_a_b___c_.png" ] && [ -e "$D/o/most_incorrect_1_100__s.png" ]
}

@test "report: a second run replaces the report whole; a folder that is not a report is left alone" {
	local O="$BATS_TEST_TMPDIR/o" W="$BATS_TEST_TMPDIR/w"
	cp -r "$T/report" "$O"
	touch "$O/stale.png"
	mkdir "$W"
	cp "$T/work/valid.pred" "$W/"
	run -0 "$REPORT" -w "$W" -i "$T/data/valid" -o "$O/"
	[ ! -e "$O/stale.png" ] && [ ! -e "$O/lr_find.png" ] && [ -e "$O/confusion.png" ]
	run -0 find "$BATS_TEST_TMPDIR" -maxdepth 1 -name '.report*'
	assert_output ""
	mkdir "$BATS_TEST_TMPDIR/mine"
	echo keep > "$BATS_TEST_TMPDIR/mine/notes"
	run -1 "$REPORT" -w "$W" -i "$T/data/valid" -o "$BATS_TEST_TMPDIR/mine"
	assert_output "report: $BATS_TEST_TMPDIR/mine: not empty and not a report (no report.html); name another folder"
	[ "$(ls "$BATS_TEST_TMPDIR/mine")" = notes ]
}

@test "report: a missing WORK or IMAGES_DIR, a missing photo" {
	run -1 "$REPORT" -w "$BATS_TEST_TMPDIR/nowork" -i "$T/data/valid" -o "$BATS_TEST_TMPDIR/o"
	assert_output "report: $BATS_TEST_TMPDIR/nowork: no such folder (WORK)"
	run -1 "$REPORT" -w "$T/work" -i "$BATS_TEST_TMPDIR/noimg" -o "$BATS_TEST_TMPDIR/o"
	assert_output "report: $BATS_TEST_TMPDIR/noimg: no such folder (IMAGES_DIR)"
	# a folder without the photos
	mkdir "$BATS_TEST_TMPDIR/empty"
	run -1 "$REPORT" -w "$T/work" -i "$BATS_TEST_TMPDIR/empty" -o "$BATS_TEST_TMPDIR/o"
	assert_output --regexp "^report: $BATS_TEST_TMPDIR/empty/(cats|dogs)/[a-z]+\.[0-9]+\.jpg: no such photo \(is -i the data's valid/ folder\?\)$"
	[ ! -e "$BATS_TEST_TMPDIR/o" ]
	run -0 find "$BATS_TEST_TMPDIR" -maxdepth 1 -name '.report*'
	assert_output ""
}

@test "report: a corrupt predictions stream or log fails, the old report intact" {
	local W="$BATS_TEST_TMPDIR/w" O="$BATS_TEST_TMPDIR/o"
	cp -r "$T/work" "$W"
	cp -r "$T/report" "$O"
	(cd "$O" && md5sum ./*) > "$BATS_TEST_TMPDIR/sums"
	head -c 300 "$T/work/valid.tta.pred" > "$W/valid.tta.pred"
	run -1 --separate-stderr "$REPORT" -w "$W" -i "$T/data/valid" -o "$O"
	[ "${stderr%%: *}" = report ] && [ "${#stderr_lines[@]}" = 1 ]
	[[ $stderr == "report: confusion: $W/valid.tta.pred: "* ]]
	cp "$T/work/valid.tta.pred" "$W/"
	# a log row cut short
	sed -i '5s/\t[^\t]*$//' "$W/frozen.log"
	run -1 "$REPORT" -w "$W" -i "$T/data/valid" -o "$O"
	assert_output "report: $W/frozen.log: line 5: 7 fields expected, 6 found"
	cp "$T/work/frozen.log" "$W/"
	echo "Traceback (most recent call last):" >> "$W/head.out"
	run -1 "$REPORT" -w "$W" -i "$T/data/valid" -o "$O"
	assert_output "report: $W/head.out: line 4: not an epoch table row"
	cp "$T/work/head.out" "$W/"
	printf 'iteration\tlr\n' > "$W/lr.tsv"
	run -1 "$REPORT" -w "$W" -i "$T/data/valid" -o "$O"
	assert_output "report: $W/lr.tsv: line 1: not an lrfind table (header: iteration, lr, loss, smoothed)"
	(cd "$O" && md5sum -c --quiet "$BATS_TEST_TMPDIR/sums")
	[ "$(ls "$O" | wc -l)" = "$(wc -l < "$BATS_TEST_TMPDIR/sums")" ]
	run -0 find "$BATS_TEST_TMPDIR" -maxdepth 1 -name '.report*'
	assert_output ""
}

@test "report: an unwritable REPORT_DIR" {
	local F="$BATS_TEST_TMPDIR/file"
	echo x > "$F"
	run -1 "$REPORT" -w "$T/work" -i "$T/data/valid" -o "$F"
	assert_output "report: $F: exists and is not a folder"
	run -1 "$REPORT" -w "$T/work" -i "$T/data/valid" -o "$F/report"
	assert_output "report: $F: cannot create the folder"
	run -1 "$REPORT" -w "$T/work" -i "$T/data/valid" -o "$F/sub/report"
	assert_output "report: $F/sub: cannot create the folder"
	[ "$(cat "$F")" = x ]
	if [ "$(id -u)" != 0 ]; then    # root writes anywhere: nothing to see then
		mkdir "$BATS_TEST_TMPDIR/ro"
		chmod a-w "$BATS_TEST_TMPDIR/ro"
		run -1 "$REPORT" -w "$T/work" -i "$T/data/valid" -o "$BATS_TEST_TMPDIR/ro/report"
		assert_output "report: $BATS_TEST_TMPDIR/ro/report: cannot write in $BATS_TEST_TMPDIR/ro"
	fi
}

@test "report: usage" {
	run -2 "$REPORT" -h
	assert_output "usage: pipelines/report.sh -w WORK -i IMAGES_DIR -o REPORT_DIR"
	run -2 "$REPORT" -w "$T/work" -i "$T/data/valid"
	assert_output "usage: pipelines/report.sh -w WORK -i IMAGES_DIR -o REPORT_DIR"
	run -2 "$REPORT" -x
	assert_line -n 0 "report: invalid option -x"
	run -2 "$REPORT" -w
	assert_line -n 0 "report: option -w needs an argument"
	run -2 "$REPORT" -w "$T/work" -i "$T/data/valid" -o "$BATS_TEST_TMPDIR/o" extra
	assert_line -n 0 "report: unexpected argument extra"
	[ ! -e "$BATS_TEST_TMPDIR/o" ]
}
