"""The study driver's helpers: time left on the progress line (FLOPs, not run counts), GPU workers."""
import pytest

from pygzlaw.model.config import model_config, train_flops_per_token
from pygzlaw.study.run import _time_left_s, run_cost


def _run(model, D, seq_len=64):
    return {"config": {"model": model, "seq_len": seq_len}, "D": D}


def test_run_cost_is_model_flops():
    want = train_flops_per_token(model_config("w32", 401, 64)) * 65536
    assert run_cost(_run("w32", 65536), 401) == pytest.approx(want)
    # a wider model and more tokens cost more: the grid's last runs are its largest
    assert run_cost(_run("w128", 1 << 20), 401) > 50 * run_cost(_run("w32", 65536), 401)


def test_unresolvable_model_has_no_cost():
    assert run_cost(_run("w7", 1000), 401) is None       # not a multiple of 8
    assert run_cost(_run("w32", 1000), None) is None     # grammar's vocabulary unknown


def test_time_left_models_start_up_and_flops():
    # finished runs took 1 s + 1e-9 s per FLOP: the fit recovers it
    done = [(c, 1.0 + 1e-9 * c) for c in (1e9, 2e9, 4e9, 8e9)]
    # queued: 2 runs of 1e10 FLOPs (11 s each), in flight: one of 2e9 (3 s, half done), 2 slots
    assert _time_left_s(done, [2e9], [1e10, 1e10], 2) == pytest.approx((22 + 1.5) / 2)


def test_time_left_counts_runs_until_a_fit_is_possible():
    # two runs done (2 s each, start-up included): the 3 left count as 2 s each, on 1 slot
    done = [(1e9, 2.0), (1e9, 2.0)]
    assert _time_left_s(done, [], [1e11, 1e9, 1e9], 1) == pytest.approx(6.0)
    assert _time_left_s([], [], [1e11], 1) == 0.0          # nothing measured yet
    # a fit with a negative slope (noise) falls back to the mean run: 2 s
    noisy = [(1e9, 3.0), (2e9, 2.0), (3e9, 1.0)]
    assert _time_left_s(noisy, [], [6e9], 1) == pytest.approx(2.0)


def test_gpu_workers_take_the_drivers_visible_gpus():
    from pygzlaw.study.run import worker_gpus

    assert worker_gpus(2, "") == ["0", "1"]
    assert worker_gpus(2, "4,5,6") == ["4", "5"]
    assert worker_gpus(1, " GPU-uuid-a , GPU-uuid-b") == ["GPU-uuid-a"]
    with pytest.raises(ValueError, match=r"gpus=3 but CUDA_VISIBLE_DEVICES='4,5' shows 2 GPU\(s\)"):
        worker_gpus(3, "4,5")
