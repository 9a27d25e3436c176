#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md in one call, on a CUDA machine, in under 15 minutes:
#   supernet step against the reference MixedOp, PC-DARTS memory, the scaling table (64-512 px) and AMP against
#   float32 at 512 px. Each benchmark writes its JSON to bench/results/ and its row to docs/benchmarks.md; both are
#   copied to OUT_DIR with a log per benchmark.
#
#   bench/gpu.sh [OUT_DIR]            (default: $OUT, else bench/results/gpu)
#   bench/gpu.sh --smoke [OUT_DIR]    tiny sizes (--quick), runs anywhere, CPU included: checks the script itself
set -u
cd "$(dirname "$0")/.."
SMOKE=0
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; shift; fi
OUT_DIR="${1:-${OUT:-bench/results/gpu}}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
QUICK=()
[ "$SMOKE" = 1 ] && QUICK=(--quick)
"$PY" - <<'PY' > "$OUT_DIR/device.txt" 2>&1
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0), round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1), "GiB")
PY
cat "$OUT_DIR/device.txt"
before=$(date +%s)
status=0
# name, time limit (s), parameters: the limits add up to under 15 minutes.
run() {
    local name=$1 limit=$2; shift 2
    # The smoke run takes each benchmark's own --quick sizes, and a CPU's time: the limits are the GPU's.
    if [ "$SMOKE" = 1 ]; then set --; limit=$(( limit * 4 )); fi
    echo "== $name (limit ${limit}s)"
    local t0=$(date +%s)
    timeout "$limit" "$PY" -m bench "$name" "$@" "${QUICK[@]}" > "$OUT_DIR/$name.log" 2>&1
    local rc=$?
    echo "   rc=$rc in $(( $(date +%s) - t0 ))s; $(grep -m1 '"figure"' "$OUT_DIR/$name.log" || tail -n 2 "$OUT_DIR/$name.log")"
    [ $rc -eq 0 ] || status=1
}
run supernet_step 120 batch=8 size=256 steps=10 channels=16 depth=2
run pcdarts_memory 150 tile=256 batch=8 channels=16 depth=2 steps=10
run scaling 300 sizes=64,128,256,512 batches=1,4,16 channels=8,16,32 depths=1,2,3 base_size=256 base_batch=4 base_channels=16 base_depth=2 steps=5
run amp_step 150 size=512 batch=8 channels=16 depth=2 steps=10
find bench/results -maxdepth 1 -name '*.json' -newermt "@$before" -exec cp {} "$OUT_DIR"/ \;
[ -f docs/scaling.png ] && [ docs/scaling.png -nt "$OUT_DIR/device.txt" ] && cp docs/scaling.png "$OUT_DIR/scaling-gpu.png"
tail -n 8 docs/benchmarks.md > "$OUT_DIR/benchmarks-rows.md"
echo "== done in $(( $(date +%s) - before ))s; results in $OUT_DIR"
exit $status
