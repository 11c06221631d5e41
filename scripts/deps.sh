#!/usr/bin/env bash
# Installs the Debian 12 packages typegrad needs to build and test; does nothing when all are there.
# Runs apt-get as root (or through sudo). See README.md, "Dependencies", for why each is needed.
set -euo pipefail

packages=(
  g++ cmake make                       # C++20 compiler and build tools
  libboost-dev libboost-test-dev       # Boost.Hana (graph core), Boost.Test (test suite)
  libfmt-dev                           # printing of expressions, tensors and errors
  libtbb-dev                           # the scheduler: flow graph and parallel loops
  zlib1g-dev                           # gzip-compressed IDX files (MNIST, Fashion-MNIST)
  nlohmann-json3-dev                   # safetensors checkpoint headers (JSON)
  libboost-program-options-dev         # command-line options of the training examples
  dataset-fashion-mnist                # the real data for the examples and one loader test
  python3-numpy                        # the test that NumPy reads our checkpoints
  libopenmpi-dev openmpi-bin           # typegrad::distributed (data-parallel training) and mpirun
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

echo "deps.sh: installing ${missing[*]}"
as_root=()
((EUID == 0)) || as_root=(sudo)
"${as_root[@]}" apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
