#!/bin/sh
# Runs one libFuzzer harness for a while on a scratch copy of its seed corpus
# and prints its figures.  usage: tests/fuzz/run.sh NAME SECONDS BUILDDIR
set -u
name=$1 secs=$2 fb=$3
seeds=tests/fuzz/corpus/$name
work=$fb/corpus-$name
mkdir -p "$work" "$fb/crashes"
[ -d "$seeds" ] && cp -n "$seeds"/* "$work"/ 2>/dev/null
dict=
[ -f "tests/fuzz/$name.dict" ] && dict=-dict=tests/fuzz/$name.dict
log=$fb/fuzz_$name.log
# ASan's allocator limit catches any allocation sized from untrusted input.
"$fb/fuzz_$name" -max_total_time="$secs" -print_final_stats=1 -malloc_limit_mb=1024 \
	-rss_limit_mb=2048 -timeout=10 -artifact_prefix="$fb/crashes/$name-" $dict \
	"$work" >"$log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
crashes=$(ls "$fb/crashes" | grep -c "^$name-" || true)
echo "fuzz_$name: ${secs}s, ${execs:-?} executions, corpus $(ls "$work" | wc -l) inputs, $crashes crash files (log: $log)"
if [ $rc -ne 0 ]; then
	tail -40 "$log"
	exit 1
fi
