#!/bin/sh
# ctest checkpoint_numpy: typegrad writes a checkpoint that NumPy reads and checks, NumPy writes
# one that typegrad reads and checks. Exits 77 (ctest: skipped) without python3 or numpy.
#   numpy_checkpoint.sh <checkpoint_tool> <numpy_checkpoint.py> <scratch dir>
set -eu
tool=$1 script=$2 dir=$3
python=${TYPEGRAD_PYTHON:-/usr/bin/python3}  # overridable, e.g. to check the skip path
if [ ! -x "$python" ] || ! "$python" -c 'import numpy' 2>/dev/null; then
  echo "skipped: needs $python with numpy (apt-get install python3-numpy)"
  exit 77
fi
mkdir -p "$dir"
"$tool" write "$dir/typegrad.safetensors"
"$python" "$script" check "$dir/typegrad.safetensors"
"$python" "$script" write "$dir/numpy.safetensors"
"$tool" read "$dir/numpy.safetensors"
echo "typegrad read the checkpoint NumPy wrote"
