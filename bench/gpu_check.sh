#!/usr/bin/env bash
# One prepared GPU check for a machine with an NVIDIA GPU (run from the repo root):
# kernel and model tests on CUDA, a 2-step bf16 train smoke test, single-GPU FSDP2 under
# torchrun, then the GPU benchmarks (MFU of gpt-275m, each Triton kernel vs its reference and
# torch.compile, fused cross-entropy peak memory). Each step is time-boxed; results land in
# ${OUT:-bench/results}/. Expects a CUDA build of torch already installed (see README).
set -uo pipefail
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
log() { echo "== $(date -u +%H:%M:%S) $*"; }
log "device"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" | tee -a "$OUT/gpu.txt"
python3 -m pip install -q -e . pytest pytest-xdist hypothesis 2>&1 | tail -1
log "kernel + model tests on CUDA (tests/kernels pick cuda when present)"
timeout 300 python3 -m pytest -q -x tests/kernels tests/model 2>&1 | tail -5 | tee "$OUT/gpu-tests.txt"
log "bf16 train smoke test (gpt-20m, 8 steps)"
timeout 240 pygzlaw train --model gpt-20m --grammar main-3 --tokens 65536 --device cuda \
    --lr 3e-4 --out "$OUT/gpu-train" 2>&1 | tail -6
log "compiled bf16 train smoke test (gpt-20m, --compile on): may compile=auto turn on for CUDA?"
timeout 300 pygzlaw train --model gpt-20m --grammar main-3 --tokens 65536 --device cuda \
    --lr 3e-4 --compile on --out "$OUT/gpu-train-compiled" 2>&1 | tail -6
log "FSDP2 under torchrun on one GPU (nccl)"
timeout 240 torchrun --standalone --nproc_per_node=1 -m pygzlaw train --model gpt-20m \
    --grammar main-3 --tokens 65536 --lr 3e-4 --out "$OUT/gpu-fsdp" 2>&1 | tail -4
log "bench kernels"
timeout 400 pygzlaw bench kernels --json "$OUT/kernels-gpu.json" 2>&1 | tail -20
log "bench trainer (MFU of gpt-275m bf16, eager and compiled + kernels summary)"
timeout 600 pygzlaw bench trainer --json "$OUT/trainer-gpu.json" 2>&1 | tail -20
log "done"
