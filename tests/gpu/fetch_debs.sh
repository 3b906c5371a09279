#!/bin/sh
# The Debian build dependencies (libjpeg-turbo, stb, OpenBLAS and what its
# library needs) as .deb files in tests/gpu/debs/ (git-ignored), for a GPU
# machine that has the CUDA toolkit and PyTorch but no package registry:
# tests/gpu/run.sh unpacks them there (dpkg -x) and builds with
# DEPS_PREFIX pointing at the result.  Run it here, on a machine with apt.
set -eu
D="$(cd "$(dirname "$0")" && pwd)/debs"
mkdir -p "$D"
cd "$D"
apt-get download libjpeg62-turbo-dev libjpeg62-turbo libstb-dev libstb0 \
	libopenblas-pthread-dev libopenblas0-pthread libgfortran5 libquadmath0
# epochs put a ':' (%3a) in the names; plain names travel everywhere
for f in *%3a*; do
	[ -e "$f" ] && mv "$f" "$(echo "$f" | sed 's/[0-9]*%3a//')"
done
ls "$D"
