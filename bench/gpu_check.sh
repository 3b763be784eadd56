#!/usr/bin/env bash
# One command for a lent GPU, sized for <= 9 minutes on one H200 once started; no downloads (models from scratch,
# data built on the machine). Writes everything to $OUT (the device tool's folder) or outputs/gpu_check:
#   (a) regularizer.md  step-time overhead of Seq-VCR at the paper's shape: GPT-2-small from scratch, bf16 autocast,
#                       B=32, T=48, d_proj=2048, vanilla vs ours (Gram) vs literal d×d (bench_regularizer.py --gpu)
#   (b) table.md, curves.png, *.json  4×4 multiplication, GPT-2-small shape from scratch, bf16, vanilla vs
#                       Seq-VCR + Pause(2), 1,500 steps through the real recipe with the exact-match curve
#                       (bench/sweep.py, plan "gpu"; one seed: a first look, not a verdict)
#   log.txt             everything printed
#
#   bash bench/gpu_check.sh               # on the GPU machine
#   bash bench/gpu_check.sh --cpu-smoke   # here, on CPU, tiny shapes (~1-2 min): checks the whole path works
#
# The device image has transformers 5.17 and no `datasets`; the project needs transformers >= 5.23. Run
# `bash bench/gpu_deps.sh` here first: it packs the pure-Python packages this project needs from the local venv
# into outputs/gpu_deps.tar.gz, which the device call must name in `carry`; this script unpacks it when present.
set -uo pipefail
cd "$(dirname "$0")/.."
SMOKE=0
[ "${1:-}" = "--cpu-smoke" ] && SMOKE=1
OUT="${OUT:-outputs/gpu_check}"
RUNS="${GPU_CHECK_RUNS:-/tmp/gpu_check_runs}"   # models stay here; only small files go to $OUT
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1

if [ -f outputs/gpu_deps.tar.gz ]; then
    mkdir -p /tmp/gpu_deps && tar -xzf outputs/gpu_deps.tar.gz -C /tmp/gpu_deps
    export PYTHONPATH="/tmp/gpu_deps${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD:$PWD/bench${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
echo "gpu_check $(date -u +%FT%TZ) smoke=$SMOKE commit=$(git rev-parse --short HEAD 2>/dev/null || echo ?) python=$PY"
$PY - <<'PY' || { echo "missing or old packages: run 'bash bench/gpu_deps.sh' here and carry outputs/gpu_deps.tar.gz"; exit 2; }
import datasets, peft, torch, transformers
print(f"torch {torch.__version__} (cuda {torch.cuda.is_available()}), transformers {transformers.__version__}, "
      f"datasets {datasets.__version__}, peft {peft.__version__}")
major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
assert (major, minor) >= (5, 23), "transformers >= 5.23 needed"
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

if [ "$SMOKE" = 1 ]; then
    REG=(--quick --bf16); PLAN=smoke; REG_LIMIT=300; RUN_LIMIT=300
else
    REG=(--gpu); PLAN=gpu; REG_LIMIT=150; RUN_LIMIT=360
fi

echo "== (a) regularizer overhead =="
start=$SECONDS
timeout "$REG_LIMIT" $PY bench/bench_regularizer.py "${REG[@]}" | tee "$OUT/regularizer.md" || echo "(a) failed or timed out"
echo "(a) took $((SECONDS - start)) s"

echo "== (b) vanilla vs Seq-VCR + Pause, plan $PLAN =="
start=$SECONDS
rm -rf "$RUNS"
timeout "$RUN_LIMIT" $PY bench/sweep.py --root "$RUNS" run --plan "$PLAN" || echo "(b) failed or timed out; tables show what finished"
echo "(b) took $((SECONDS - start)) s"
$PY bench/sweep.py --root "$RUNS" table --results "$RUNS" | tee "$OUT/table.md"
$PY bench/sweep.py --root "$RUNS" plot --results "$RUNS" && cp "$RUNS"/plots/*.png "$OUT/curves.png"
for f in "$RUNS"/*/result.json; do [ -f "$f" ] && cp "$f" "$OUT/$(basename "$(dirname "$f")").json"; done
ls -la "$OUT"
