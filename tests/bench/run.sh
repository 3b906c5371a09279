#!/bin/sh
# `make bench`: runs every tests/bench/*.sh part (except this one), each
# under a header, carrying on after a part that fails; exits non-zero when
# any part failed.
cd "$(dirname "$0")" || exit 1
failed=""
for part in *.sh; do
	[ "$part" = run.sh ] && continue
	echo "=================== bench: ${part%.sh} ==================="
	if [ -x "$part" ]; then run="./$part"; else run="sh ./$part"; fi
	if ! $run; then
		echo "bench: ${part%.sh} FAILED"
		failed="$failed ${part%.sh}"
	fi
done
if [ -n "$failed" ]; then
	echo "bench: failed parts:$failed"
	exit 1
fi
echo "bench: all parts done"
