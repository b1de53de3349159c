"""FSDP2 over gloo: 2 ranks under torchrun match a single process; a sharded checkpoint resumes.

Each torchrun call binds its rendezvous to a free loopback port and runs under a timeout, so
a hung collective fails the test instead of hanging CI.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("torch")

from trainutil import free_port, losses_of, tiny  # noqa: E402

TIMEOUT_S = 240
# 6 steps of 2 micro-batches (FSDP2 syncs gradients on the second only)
ARGS = ["--model", "w16", "--grammar", "vocab300-1", "--tokens", "768", "--batch-docs", "4",
        "--grad-accum", "2",
        "--seq-len", "16", "--lr", "1e-2", "--val-docs", "8", "--device", "cpu", "--threads", "1",
        "--h-docs", "0", "--quiet", "--checkpoint-every", "3", "--json"]


def _torchrun(out_dir, *extra) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}",
           "-m", "pygzlaw", "train", *ARGS, "--out", str(out_dir), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout[proc.stdout.index("{"):])   # rank 0 prints the record


def _losses(out_dir):
    rows = [json.loads(x) for x in open(os.path.join(out_dir, "metrics.jsonl"))]
    return [r["loss"] for r in rows if not r.get("final")]


def test_two_ranks_match_one_process_and_resume(tmp_path):
    single, rec1 = losses_of(tiny(n_tokens=768, grad_accum=2, val_docs=8))
    rec2 = _torchrun(tmp_path / "a")
    two = _losses(tmp_path / "a")
    assert rec2["world_size"] == 2 and rec2["n_steps"] == 6
    assert two == pytest.approx(single, rel=1e-6, abs=1e-6)    # fp32: summation order only
    assert rec2["val_loss"] == pytest.approx(rec1.val_loss, rel=1e-6)
    assert sorted(os.listdir(tmp_path / "a" / "checkpoints")) == ["step-000003", "step-000006"]

    # resume the sharded (DCP) checkpoint of step 3 in a fresh directory
    os.makedirs(tmp_path / "b" / "checkpoints")
    shutil.copytree(tmp_path / "a" / "checkpoints" / "step-000003",
                    tmp_path / "b" / "checkpoints" / "step-000003")
    rec3 = _torchrun(tmp_path / "b", "--resume")
    assert _losses(tmp_path / "b") == two[3:]                 # bitwise, steps 4..6
    assert rec3["val_loss"] == rec2["val_loss"] and rec3["resumed_from_step"] == 3


def test_the_gpu_fsdp_smoke_script_dry_runs_on_cpu(tmp_path):
    """bench/gpu_fsdp_smoke.py (run by bench/gpu_check.sh over NCCL) on gloo in fp32: the
    sharded model trains exactly as the plain one and its checkpoint saves and loads."""
    script = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "gpu_fsdp_smoke.py")
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, script, str(tmp_path), "--cpu"], capture_output=True,
                         text=True, timeout=240, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["ok"] and res["max_abs_diff"] < 1e-4 and len(res["fsdp_losses"]) == 3
    assert (tmp_path / "ckpt").is_dir()
