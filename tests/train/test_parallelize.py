"""FSDP2 through pygzlaw.train.parallelize: 2 gloo ranks on 127.0.0.1 against one process.

Sharded init must equal unsharded init exactly (init draws every parameter on its full shape),
and a few AdamW steps must match the single-process run on the same global batches."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from parallelize_case import CONFIGS, SEED, train_steps
from torch.distributed.fsdp import MixedPrecisionPolicy
from trainutil import free_port

from pygzlaw.model import GPT
from pygzlaw.train.parallelize import build_model, default_mp_policy, parallelize

HERE = Path(__file__).resolve().parent
WORLD = 2
TIMEOUT_S = 180


def _run_ranks(out_dir: Path) -> None:
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "WORLD_SIZE": str(WORLD), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    if Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"                # stay on loopback
    procs = [subprocess.Popen([sys.executable, str(HERE / "_parallelize_worker.py"), str(out_dir)],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in range(WORLD)]
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=TIMEOUT_S)[0])
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"FSDP2 workers did not finish in {TIMEOUT_S} s")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    for r, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"rank {r} exited {p.returncode}:\n{out[-4000:]}"


def _single(cfg):
    model = GPT(cfg)
    model.init_weights(SEED)
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses, grads = train_steps(model)
    return init, losses, grads, {n: p.detach().clone() for n, p in model.named_parameters()}


def test_two_ranks_match_one_process(tmp_path):
    """One test for every case: the 2-rank run costs ~15 s of process start-up and imports,
    and a shared fixture would run it once per xdist worker."""
    _run_ranks(tmp_path)
    sharded = torch.load(tmp_path / "result.pt", weights_only=True)
    for case, cfg in CONFIGS.items():
        init, losses, grads, final = _single(cfg)
        got = sharded[case]
        assert got["init"].keys() == init.keys(), case
        for n in init:
            assert torch.equal(got["init"][n], init[n]), (case, n)   # same draws, exactly
        # the embedding (37 rows) really is split unevenly across the 2 ranks
        assert got["local_shapes"]["tok_embeddings.weight"] == (19, 32), case
        assert len(got["losses"]) == len(losses) == 3, case
        assert got["losses"] == pytest.approx(losses, abs=1e-5), case
        assert losses[-1] < losses[0], case                 # the steps did train
        for n in grads:                                     # FSDP averaged the two halves
            torch.testing.assert_close(got["grads"][n], grads[n], rtol=1e-5, atol=1e-7,
                                       msg=f"{case} grad {n}")
        for n in final:
            torch.testing.assert_close(got["final"][n], final[n], rtol=0, atol=1e-5,
                                       msg=f"{case} {n}")
            assert not torch.equal(final[n], init[n]), (case, n)
        if case == "untied":
            # bf16 parameters with fp32 reduction (the GPU policy) run on gloo and stay close
            assert sharded["bf16_losses"] == pytest.approx(losses, abs=3e-2)


def test_without_a_process_group_nothing_is_sharded():
    model = build_model(CONFIGS["untied"], "cpu", seed=SEED)
    assert parallelize(model) is model
    assert not any(hasattr(p, "placements") for p in model.parameters())
    ref = GPT(CONFIGS["untied"])
    ref.init_weights(SEED)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), ref.parameters()))
    with pytest.raises(ValueError, match=r"shard=True\) needs a mesh or an initialised process"):
        build_model(CONFIGS["untied"], "cpu", shard=True)


def test_default_policy():
    gpu = default_mp_policy("cuda")
    assert (gpu.param_dtype, gpu.reduce_dtype) == (torch.bfloat16, torch.float32)
    cpu = default_mp_policy("cpu")
    assert cpu.param_dtype is None and cpu.reduce_dtype is None
    assert isinstance(cpu, MixedPrecisionPolicy)
