#!/usr/bin/env bash
# Runs bench_cnn and bench/cnn_pytorch.py on the same cases, one case at a time alternating
# between the two (so both see the same machine load), and prints our/PyTorch ratios and our
# GFLOP/s as a fraction of the FMA peak measured in the same run (1 thread with --cpu, else all
# cores), with the CPU and the load average before and after (bench/machine.sh). This VM's speed
# drifts by 10-30% within minutes, so %peak is against the peak measured right before and after
# our run of each case (their mean), not only the one at the start.
#   bench/cnn_vs_pytorch.sh [--cpu] [case ...]   (default: every case of bench_cnn)
#   --cpu       both sides on one thread, timed by process CPU time (robust to other load)
#   BUILD_DIR   build directory holding bench/bench_cnn (default: build/)
# typegrad's GEMM honours TYPEGRAD_ISA (avx512, avx2 or portable: the kernels it runs; unset,
# the best the CPU runs); bench_cnn's header names the kernels in use.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="${BUILD_DIR:-$root/build}/bench/bench_cnn"
mode=()
if [ "${1:-}" = "--cpu" ]; then
  mode=(--cpu)
  shift
fi
cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
  mapfile -t cases < <("$bench" --list)
fi
ours=$(mktemp) theirs=$(mktemp) peaks=$(mktemp)
trap 'rm -f "$ours" "$theirs" "$peaks"' EXIT
fma_peak="$(dirname "$bench")/fma_peak"
machine=$(FMA_PEAK_BIN="$fma_peak" "$root/bench/machine.sh")
echo "$machine"
# From fma_peak's line on stdin, the peak on the threads our run uses (1 with --cpu, else all).
peak_of() {
  if [ ${#mode[@]} -gt 0 ]; then sed -n 's/.*threads=1 gflops=\([0-9.]*\) .*/\1/p'
  else sed -n 's/.*threads=[0-9]* gflops=[0-9.]* threads=[0-9]* gflops=\([0-9.]*\).*/\1/p'; fi
}
peak=$(peak_of <<<"$machine")
echo "TYPEGRAD_ISA=${TYPEGRAD_ISA:-(unset)}"
peak_now() {
  [ -x "$fma_peak" ] || return 0
  "$fma_peak" | peak_of
}
for c in "${cases[@]}"; do
  before=$(peak_now)
  "$bench" "${mode[@]}" "$c" | tee -a "$ours" | grep '^#' || true
  after=$(peak_now)
  [ -n "$before" ] && echo "$c $before $after" >> "$peaks"
  /usr/bin/python3 "$root/bench/cnn_pytorch.py" "${mode[@]}" "$c" | tee -a "$theirs" | grep '^#' || true
done
"$root/bench/machine.sh" load
python3 - "$ours" "$theirs" "${peak:-0}" "$peaks" <<'PY'
import sys
peak = float(sys.argv[3] or 0)
case_peak = {}  # per case: the mean of the peaks measured right before and after our run
for line in open(sys.argv[4]):
    name, before, after = line.split()
    case_peak[name] = (float(before) + float(after)) / 2

def read(path):
    rows = {}
    for line in open(path):
        if line.startswith("case="):
            fields = dict(f.split("=", 1) for f in line.split())
            rows[fields["case"]] = fields
    return rows

ours, theirs = read(sys.argv[1]), read(sys.argv[2])
units = lambda row: "gflops" if "fwd_gflops" in row else "gbps"
print(f"{'case':<5} {'ours fwd':>10} {'torch fwd':>10} {'ratio':>6} {'%peak':>6}   {'ours f+b':>10} {'torch f+b':>10} {'ratio':>6} {'%peak':>6}  {'peak':>5}  torch format")
for name, o in ours.items():
    t = theirs.get(name)
    if t is None:
        continue
    u = units(o)
    p = case_peak.get(name, peak)
    pct = lambda v: f"{100 * v / p:>6.0f}" if p and u == "gflops" else f"{'':>6}"
    of, tf = float(o[f"fwd_{u}"]), float(t[f"fwd_{u}"])
    ob, tb = float(o[f"fwdbwd_{u}"]), float(t[f"fwdbwd_{u}"])
    print(f"{name:<5} {of:>10.1f} {tf:>10.1f} {of / tf:>6.2f} {pct(of)}   {ob:>10.1f} {tb:>10.1f} {ob / tb:>6.2f} {pct(ob)}  {p:>5.0f}  {t.get('format', '')}")
print(f"(units: {u.replace('gflops', 'GFLOP/s').replace('gbps', 'GB/s')}; ratio = ours / PyTorch; %peak = ours / the FMA peak"
      f" measured right before and after our run of the case (column peak, GFLOP/s; {peak:.0f} at the start))")
PY
