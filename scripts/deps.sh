#!/bin/sh
# Check the Debian packages cnnpipe needs; install the missing ones when root,
# otherwise print the one apt-get command to run and stop.
# usage: scripts/deps.sh [build|test]
set -u
need="libjpeg62-turbo-dev libstb-dev libopenblas-dev"
if [ "${1:-build}" = test ]; then
	need="$need bats bats-assert bats-support python3-torchvision python3-pil imagemagick libjpeg-turbo-progs clang libclang-rt-14-dev mandoc groff-base gnuplot-nox chromium curl unzip libopenmpi-dev openmpi-bin"
fi
missing=
for p in $need; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)
	[ "$st" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
	echo "deps: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $missing >/dev/null && exit 0
	echo "deps: apt-get install failed for:$missing" >&2
	exit 1
fi
echo "deps: missing packages; run: sudo apt-get install$missing" >&2
exit 1
