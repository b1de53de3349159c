"""TrainConfig checks (each error names its field), serialisation, RunRecord rows. No torch."""
import pytest

from pygzlaw.train import RunRecord, TrainConfig
from trainutil import tiny


@pytest.mark.parametrize("changes, pattern", [
    ({"n_tokens": 63}, r"n_tokens=63 is fewer than one step"),
    ({"n_tokens": 0}, r"n_tokens=0 must be an int >= 1"),
    ({"batch_docs": 0}, r"batch_docs=0"),
    ({"seq_len": 1}, r"seq_len=1"),
    ({"grad_accum": 0}, r"grad_accum=0"),
    ({"lr": 0.0}, r"lr=0.0 must be > 0"),
    ({"lr": float("nan")}, r"lr=nan must be a finite number"),
    ({"min_lr_ratio": 1.5}, r"min_lr_ratio=1.5"),
    ({"betas": (0.9,)}, r"betas="),
    ({"grad_clip": -1.0}, r"grad_clip=-1.0"),
    ({"val_docs": 0}, r"val_docs=0"),
    ({"device": "tpu"}, r"device='tpu'"),
    ({"dtype": "float16"}, r"dtype='float16'"),
    ({"kernels": "cuda"}, r"kernels='cuda'"),
    ({"threads": 0}, r"threads=0"),
    ({"checkpoint_every_steps": 2}, r"checkpoint_every_steps needs out_dir"),
    ({"resume": True}, r"resume=True needs out_dir"),
    ({"model": ""}, r"model='' is empty"),
    ({"model": 3}, r"model=3 must be a preset name or a ModelConfig"),
])
def test_bad_field_is_named(changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        tiny(**changes).validate()


def test_steps_and_batch_arithmetic():
    c = tiny(n_tokens=10_000, batch_docs=4, grad_accum=3, seq_len=16)
    assert c.global_batch_docs == 12 and c.tokens_per_step == 192
    assert c.n_steps == 10_000 // 192


def test_round_trip_through_dict():
    c = tiny(betas=(0.8, 0.95))
    assert TrainConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) \['bogus'\]"):
        TrainConfig.from_dict({**c.to_dict(), "bogus": 1})


def test_round_trip_with_model_config():
    from pygzlaw.model import ModelConfig

    m = ModelConfig(vocab_size=301, seq_len=16, d_model=16, n_layers=1, n_heads=2)
    c = tiny(model=m)
    d = c.to_dict()
    assert d["model"]["d_model"] == 16
    assert TrainConfig.from_dict(d) == c


def _record(**changes):
    base = dict(n_params=1000, n_params_non_embedding=400, n_tokens=64_000, flops=6 * 1000 * 64_000,
                train_loss=2.5, val_loss=2.4, wall_s=1.0, tokens_per_s=64_000.0, mfu=None,
                data_wait_fraction=0.001, config=tiny().to_dict(), grammar="vocab300-1",
                grammar_seed=0, H=0.25, version="0.1.0", n_steps=10)
    base.update(changes)
    return RunRecord(**base)


def test_row_columns_are_read_by_laws_io(tmp_path):
    import csv

    from pygzlaw.laws.io import read_points

    rows = [_record(n_params=n, flops=6.0 * n * 64_000, val_loss=l).to_row()
            for n, l in ((1000, 2.4), (2000, 2.2), (4000, 2.1))]
    path = tmp_path / "runs.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    pts = read_points(path)
    assert pts.n_params.tolist() == [1000, 2000, 4000]
    assert pts.n_tokens.tolist() == [64_000] * 3
    assert pts.loss.tolist() == [2.4, 2.2, 2.1]          # loss = final validation loss
    assert pts.h.tolist() == [0.25] * 3
    assert pts.dataset == ["vocab300-1-g0"] * 3


def test_row_has_no_duplicate_alias_columns():
    from pygzlaw.laws.io import _ALIASES

    row = _record().to_row()
    low = {k.lower() for k in row}
    for key, names in _ALIASES.items():
        hits = [n for n in names if n in low]
        assert len(hits) <= 1, f"{key} could be read from {hits}"
