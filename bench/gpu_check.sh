#!/usr/bin/env bash
# The one prepared GPU check (run from the repo root on a machine with one NVIDIA GPU and a CUDA
# torch + triton already installed; no package index needed). Every step is time-boxed and the
# whole script stops starting steps past BUDGET_S (default 540 s), so one call fits a 600 s
# limit. Results land in ${OUT:-bench/results}/ as they come (a killed step keeps its log).
#   1 versions  2 native build in place (bench/gpu_build.py; no pip)  3 CUDA tests of kernels
#   and model  4 bf16 train smoke, eager and --compile on  5 FSDP2 over NCCL on one GPU
#   6 gpu_section: MFU of gpt-275m bf16 eager and compiled + every kernel vs its reference,
#     torch.compile and Liger, fused cross-entropy memory (pygzlaw.bench.kernels)
set -uo pipefail
OUT=${OUT:-bench/results}
BUDGET_S=${BUDGET_S:-540}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
START=$(date +%s)
step() {  # step NAME TIMEOUT_S CMD...: run unless the budget is spent; log to $OUT/NAME.log
    local name=$1 t=$2; shift 2
    local used=$(( $(date +%s) - START ))
    if (( used + 30 > BUDGET_S )); then echo "== SKIP $name (budget: ${used}s used)"; return; fi
    (( t > BUDGET_S - used )) && t=$(( BUDGET_S - used ))
    echo "== $(date -u +%H:%M:%S) $name (timeout ${t}s)"
    timeout "$t" "$@" > "$OUT/$name.log" 2>&1
    echo "== $name: rc $? in $(( $(date +%s) - START - used ))s"; tail -6 "$OUT/$name.log"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import sys, torch, triton; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" >> "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
step build 90 python3 bench/gpu_build.py
step tests 150 python3 -m pytest -q -x -p no:cacheprovider tests/kernels tests/model
step train-eager 60 python3 -m pygzlaw train --model gpt-20m --grammar main-3 --tokens 65536 \
    --device cuda --lr 3e-4 --h-docs 0 --quiet --compile off --out "$OUT/gpu-train"
step train-compiled 120 python3 -m pygzlaw train --model gpt-20m --grammar main-3 --tokens 65536 \
    --device cuda --lr 3e-4 --h-docs 0 --quiet --compile on --out "$OUT/gpu-train-compiled"
step fsdp-nccl 60 python3 bench/gpu_fsdp_smoke.py "$OUT/gpu-fsdp"
step gpu-section 240 python3 -c "import json; from pygzlaw.bench.trainer import gpu_section; \
d = gpu_section(True); open('$OUT/gpu-section.json', 'w').write(json.dumps(d, indent=1, default=str)); \
print(json.dumps({k: v for k, v in d.items() if k != 'kernels'}, default=str))"
echo "== done in $(( $(date +%s) - START ))s"
