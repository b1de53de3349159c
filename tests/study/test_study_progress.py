"""The study's progress line: time left weighs runs by their FLOPs, not their count."""
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


def test_time_left_scales_with_work_not_runs():
    # 10 s for 100 units; 300 units queued -> 30 s
    assert _time_left_s(10.0, 100.0, 0.0, 300.0) == pytest.approx(30.0)
    # work in flight counts half done: 10 s for 100 + 50, left 300 + 50
    assert _time_left_s(10.0, 100.0, 100.0, 300.0) == pytest.approx(10.0 / 150 * 350)
    assert _time_left_s(5.0, 0.0, 0.0, 10.0) == 0.0       # nothing measured yet
