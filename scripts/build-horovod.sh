#!/usr/bin/env bash
# Builds Horovod 0.28.1 (its last release) against the venv's torch and installs it there.
#   scripts/build-horovod.sh [PYTHON]     (PYTHON defaults to .venv/bin/python)
# Why a script: 0.28.1's CMake files ask for C++14 while torch 2.x headers need C++17, so the sdist does not
# build as shipped. Upstream raised CMAKE_CXX_STANDARD to 17 after that release; we apply the same change to
# the top-level CMakeLists.txt and horovod/torch/CMakeLists.txt, then build with Gloo and MPI (OpenMPI from
# Debian), without TensorFlow and MXNet. The wheel is cached per torch version, so a rebuild takes seconds.
set -euo pipefail

PY=${1:-.venv/bin/python}
VERSION=0.28.1
die() { echo "build-horovod: $*" >&2; exit 1; }

[ -x "$PY" ] || die "$PY not found: run 'make venv' first"
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
if "$PY" -c "import horovod.torch" >/dev/null 2>&1; then
  echo "horovod: already installed ($("$PY" -c 'import horovod; print(horovod.__version__)'))"
  exit 0
fi
command -v mpicxx >/dev/null || die "mpicxx not found: install OpenMPI (apt-get install openmpi-bin libopenmpi-dev)"
command -v cmake >/dev/null || die "cmake not found: apt-get install cmake"
command -v g++ >/dev/null || die "g++ not found: apt-get install g++"

TORCH_VERSION=$("$PY" -c "import torch; print(torch.__version__)") || die "torch is not importable from $PY"
CACHE=${NASFORGE_WHEEL_CACHE:-$HOME/.cache/nasforge/wheels}/horovod-$VERSION-torch-$TORCH_VERSION
mkdir -p "$CACHE"
wheel=$(ls "$CACHE"/horovod-*.whl 2>/dev/null | head -1 || true)

if [ -z "$wheel" ]; then
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  echo "horovod: fetching the $VERSION sdist"
  "$PY" -m pip download -q --no-deps --no-binary :all: "horovod==$VERSION" -d "$work" || die "could not download the horovod $VERSION sdist from PyPI"
  tar -xzf "$work"/horovod-$VERSION.tar.gz -C "$work"
  src=$work/horovod-$VERSION
  for f in "$src/CMakeLists.txt" "$src/horovod/torch/CMakeLists.txt"; do
    grep -q 'CMAKE_CXX_STANDARD 14' "$f" || die "$f no longer sets C++14; check whether the patch is still needed"
    sed -i 's/CMAKE_CXX_STANDARD 14/CMAKE_CXX_STANDARD 17/' "$f"
  done
  echo "horovod: building (about two minutes on 2 cores)"
  # The build needs the venv's torch, so no isolated build environment.
  "$PY" -m pip install -q wheel setuptools cloudpickle psutil pyyaml packaging cffi
  ( cd "$src" && HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITH_MPI=1 \
      HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 MAKEFLAGS="-j$(nproc)" \
      "$PY" -m pip wheel -q --no-deps --no-build-isolation . -w "$CACHE" ) > "$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log" >&2; die "the build failed (log above)"; }
  wheel=$(ls "$CACHE"/horovod-*.whl | head -1)
fi
"$PY" -m pip install -q --no-deps "$wheel"
"$PY" -m pip install -q cloudpickle psutil pyyaml packaging cffi
"$PY" -c "import horovod.torch" || die "installed, but 'import horovod.torch' fails"
echo "horovod: installed from $wheel"
