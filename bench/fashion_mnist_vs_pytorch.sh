#!/usr/bin/env bash
# Trains fashion_mnist_cnn and the same network in PyTorch (bench/fashion_mnist_pytorch.py, 2
# threads) one after the other in the same run, with the same epochs, batch, learning rate and seed,
# each under /usr/bin/time -v, and prints per-epoch seconds and accuracy, peak RSS and the ratios.
#   bench/fashion_mnist_vs_pytorch.sh [--resnet] [--flush-denormal] [epochs]   (default 5)
#   --resnet    fashion_mnist_resnet (examples/nets/small_resnet.hpp: batch norms, residual
#               blocks) and the same network in PyTorch, instead of fashion_mnist_cnn
#   --flush-denormal  PyTorch with torch.set_flush_denormal(True), as typegrad runs (FTZ/DAZ);
#               without it PyTorch's default (denormal arithmetic: 13x slower on the ResNet)
#   BUILD_DIR   build directory holding examples/fashion_mnist_cnn (default: build/)
#   DATA_DIR    the Fashion-MNIST IDX files (default: /usr/share/datasets/fashion-mnist)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
example=fashion_mnist_cnn net=cnn
torch_options=()
while [ $# -gt 0 ] && [ "${1#--}" != "$1" ]; do
  case "$1" in
    --resnet) example=fashion_mnist_resnet net=resnet ;;
    --flush-denormal) torch_options+=(--flush-denormal) ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
ours_bin="${BUILD_DIR:-$root/build}/examples/$example"
data="${DATA_DIR:-/usr/share/datasets/fashion-mnist}"
epochs="${1:-5}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
FMA_PEAK_BIN="$(dirname "$(dirname "$ours_bin")")/bench/fma_peak" "$root/bench/machine.sh"
/usr/bin/time -v "$ours_bin" --epochs "$epochs" --threads 2 --quiet --data-dir "$data" \
  --checkpoint "$work/ck.safetensors" > "$work/ours.out" 2> "$work/ours.time"
echo "--- typegrad ($example --threads 2)"
grep '^epoch' "$work/ours.out"
/usr/bin/time -v /usr/bin/python3 "$root/bench/fashion_mnist_pytorch.py" --net "$net" "${torch_options[@]}" \
  --epochs "$epochs" --threads 2 --data-dir "$data" > "$work/torch.out" 2> "$work/torch.time"
version=$(/usr/bin/python3 -c 'import torch; print(torch.__version__)')
echo "--- PyTorch $version (torch.set_num_threads(2)${torch_options[*]:+, ${torch_options[*]}})"
cat "$work/torch.out"
"$root/bench/machine.sh" load
python3 - "$work" <<'PY'
import re, sys
work = sys.argv[1]

def epochs(path):  # (seconds, accuracy) per epoch line
    return [(float(m.group(2)), float(m.group(1)))
            for m in re.finditer(r"test accuracy ([0-9.]+)\s+([0-9.]+) s", open(path).read())]

def peak_mib(path):
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(path).read()).group(1)) / 1024

def wall(path):
    t = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([0-9:.]+)", open(path).read()).group(1)
    s = 0.0
    for part in t.split(":"):
        s = s * 60 + float(part)
    return s

ours, theirs = epochs(f"{work}/ours.out"), epochs(f"{work}/torch.out")
print(f"{'epoch':>5} {'ours s':>8} {'torch s':>8} {'ratio':>6}  {'ours acc':>8} {'torch acc':>9}")
for i, ((os_, oa), (ts, ta)) in enumerate(zip(ours, theirs)):
    print(f"{i + 1:>5} {os_:>8.1f} {ts:>8.1f} {os_ / ts:>6.2f}  {oa:>8.4f} {ta:>9.4f}")
mo, mt = sum(s for s, _ in ours) / len(ours), sum(s for s, _ in theirs) / len(theirs)
print(f"{'mean':>5} {mo:>8.1f} {mt:>8.1f} {mo / mt:>6.2f}   (seconds per training epoch, ratio = ours / PyTorch)")
po, pt = peak_mib(f"{work}/ours.time"), peak_mib(f"{work}/torch.time")
print(f"peak RSS: ours {po:.0f} MiB, PyTorch {pt:.0f} MiB, ratio {po / pt:.2f}")
wo, wt = wall(f"{work}/ours.time"), wall(f"{work}/torch.time")
print(f"whole process (load, train, evaluate): ours {wo:.0f} s, PyTorch {wt:.0f} s, ratio {wo / wt:.2f}")
PY
