"""The training loop on a tiny CPU model: learning, resume, errors, checkpoints, the record."""
import json
import math
import os

import pytest

torch = pytest.importorskip("torch")

from pygzlaw.train import RunRecord, train  # noqa: E402
from pygzlaw.train import loop  # noqa: E402
from pygzlaw.train.loop import NonFiniteLossError, lr_at  # noqa: E402
from trainutil import BATCH, SEQ, losses_of, tiny  # noqa: E402


def test_loss_falls_and_record_is_complete(tmp_path):
    config = tiny(n_tokens=20 * BATCH * SEQ, lr=2e-2, val_every_steps=10, out_dir=str(tmp_path),
                  h_docs=50)
    losses, r = losses_of(config)
    assert len(losses) == 20
    assert losses[0] == pytest.approx(math.log(301), abs=0.3)  # ~uniform over 301 ids at init
    assert max(losses[-3:]) < losses[0] - 1.0                  # learned the unigram at least
    assert r.val_loss < losses[0] - 1.0
    from pygzlaw.model import chinchilla_flops_per_token, count_params, model_config

    mcfg = model_config("w16", 301, SEQ)
    assert (r.n_params, r.n_params_non_embedding) == tuple(count_params(mcfg))
    assert r.n_tokens == 20 * BATCH * SEQ and r.n_steps == 20 and r.vocab_size == 301
    assert r.flops == chinchilla_flops_per_token(mcfg) * r.n_tokens
    assert 0 < r.H < 1 and r.mfu is None and 0 <= r.data_wait_fraction < 1
    assert r.tokens_per_s > 0 and r.wall_s > 0 and r.config == config.to_dict()
    # the record and the metrics log on disk
    on_disk = json.loads((tmp_path / "record.json").read_text())
    assert RunRecord.from_dict(on_disk) == r
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows if not x.get("final")] == list(range(1, 21))
    assert [x["loss"] for x in rows if not x.get("final")] == losses
    assert rows[9]["val_loss"] is not None and rows[-1] == {"step": 20, "val_loss": r.val_loss,
                                                           "final": True}
    assert {"lr", "tokens_per_s", "mfu", "data_wait_fraction", "peak_memory_bytes"} <= set(rows[0])


def test_same_config_same_losses():
    a, ra = losses_of(tiny())
    b, rb = losses_of(tiny())
    assert a == b and ra.val_loss == rb.val_loss
    c, _ = losses_of(tiny(seed=1))
    assert c != a


def test_grad_accum_matches_one_big_batch():
    big, rb = losses_of(tiny(batch_docs=2 * BATCH, n_tokens=4 * 2 * BATCH * SEQ))
    acc, ra = losses_of(tiny(batch_docs=BATCH, grad_accum=2, n_tokens=4 * 2 * BATCH * SEQ))
    assert acc == pytest.approx(big, rel=1e-5)
    assert ra.val_loss == pytest.approx(rb.val_loss, rel=1e-5)


class _Crash(Exception):
    pass


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    config = tiny(n_tokens=6 * BATCH * SEQ, warmup_steps=2, out_dir=str(tmp_path / "a"))
    full, rec_full = losses_of(config)

    cut = config.replace(out_dir=str(tmp_path / "b"), checkpoint_every_steps=3)
    seen = []

    def crash_after_4(row):
        seen.append(row["loss"])
        if row["step"] == 4:
            raise _Crash()

    with pytest.raises(_Crash):
        train(cut, on_step=crash_after_4)
    assert sorted(os.listdir(tmp_path / "b" / "checkpoints")) == ["step-000003"]
    resumed = []
    rec = train(cut.replace(resume=True), on_step=lambda row: resumed.append(row["loss"]))
    assert seen == full[:4]
    assert resumed == full[3:]                                # bitwise, steps 4..6
    assert rec.val_loss == rec_full.val_loss and rec.resumed_from_step == 3
    assert rec.n_tokens == rec_full.n_tokens
    # metrics.jsonl of the cut run: the rows after step 3 that the stopped process logged
    # (step 4) were dropped on resume and logged again once: steps 1..6 each once, one final row
    rows = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if not r.get("final")] == [1, 2, 3, 4, 5, 6]
    assert sum(bool(r.get("final")) for r in rows) == 1
    # resuming a finished run trains nothing: its record (speed included) and log stand as they were
    log_before = (tmp_path / "a" / "metrics.jsonl").read_text()
    again = train(config.replace(resume=True))
    assert again.to_dict() == rec_full.to_dict()
    assert (tmp_path / "a" / "metrics.jsonl").read_text() == log_before
    with pytest.raises(ValueError, match=r"resume: .*step-000006 was written by a different run "
                                         r"\(n_tokens: 384 -> 192\)"):
        train(config.replace(resume=True, n_tokens=3 * BATCH * SEQ))
    with pytest.raises(ValueError, match=r"out_dir=.* holds checkpoints of an earlier run "
                                         r"\(step-000006\); resume=True continues it"):
        train(config)


def test_non_finite_loss_stops_with_the_step_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    real = loop._micro_loss
    calls = []

    def poisoned(model, x, y, autocast):
        calls.append(1)
        loss = real(model, x, y, autocast)
        return loss * float("nan") if len(calls) == 5 else loss

    monkeypatch.setattr(loop, "_micro_loss", poisoned)
    config = tiny(out_dir=str(tmp_path), checkpoint_every_steps=2)
    with pytest.raises(NonFiniteLossError, match=r"training loss is nan at step 5 of 6 .*"
                                                 r"the last good checkpoint is .*step-000004"):
        train(config)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["step-000002", "step-000004"]
    assert not (tmp_path / "record.json").exists()


def test_heads_not_dividing_width_is_named():
    from pygzlaw.model import ModelConfig

    with pytest.raises(ValueError, match=r"n_heads=3 does not divide d_model=16"):
        tiny(model=ModelConfig(vocab_size=301, seq_len=SEQ, d_model=16, n_layers=1, n_heads=3))


def test_unknown_model_preset_is_named():
    with pytest.raises(ValueError, match=r"model='gpt-3m': unknown model 'gpt-3m'"):
        train(tiny(model="gpt-3m"))


def test_vocabulary_smaller_than_the_data_is_refused():
    from pygzlaw.model import ModelConfig

    small = ModelConfig(vocab_size=300, seq_len=SEQ, d_model=16, n_layers=1, n_heads=2)
    with pytest.raises(ValueError, match=r"model vocab_size=300 is smaller than the data's "
                                         r"vocabulary \(301 ids: largest id 300\)"):
        train(tiny(model=small))


def test_tokens_fewer_than_one_step_is_named():
    with pytest.raises(ValueError, match=r"n_tokens=63 is fewer than one step"):
        train(tiny(n_tokens=63))


def test_batch_not_divisible_by_ranks_is_named(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match=r"batch_docs=4 is not divisible by the number of ranks "
                                         r"\(3\)"):
        train(tiny())


def test_lr_schedule():
    c = tiny(n_tokens=10 * BATCH * SEQ, lr=1.0, warmup_steps=2, min_lr_ratio=0.1)
    lrs = [lr_at(s, c) for s in range(10)]
    assert lrs[:3] == [0.5, 1.0, 1.0]
    assert all(a >= b for a, b in zip(lrs[2:], lrs[3:]))
    assert lrs[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 7 / 8)))
    assert lr_at(0, tiny()) == tiny().lr                       # no warmup: the paper's setting


def test_training_on_a_dataset_equals_sampling(tmp_path):
    from pygzlaw.cli import main

    data = tmp_path / "ds"
    assert main(["generate", "--preset", "vocab300-1", "--seed", "1234", "--tokens", str(30 * SEQ),
                 "--doc-tokens", str(SEQ), "--shard-docs", "10", "--threads", "1",
                 "--out", str(data), "--quiet", "--json"]) == 0
    sampled, rs = losses_of(tiny())
    from_disk, rd = losses_of(tiny(data_dir=str(data), grammar="dataset"))
    assert from_disk == sampled and rd.val_loss == rs.val_loss
    assert rd.grammar == "vocab300-1"


@pytest.mark.parametrize("fmt, fsdp, hint", [("dcp", False, "resume it under torchrun with 2+ ranks"),
                                             ("torch", True, "resume it in a single process")])
def test_checkpoint_of_the_other_rank_kind_says_how_to_resume_it(tmp_path, fmt, fsdp, hint):
    from pygzlaw.train import checkpoint as ckpt

    (tmp_path / "meta.json").write_text(json.dumps({"format": fmt, "world_size": 2 if fmt == "dcp" else 1,
                                                    "step": 3}))
    import re

    with pytest.raises(ValueError, match=f"is a '{fmt}' checkpoint .*; {re.escape(hint)}, or use a new out_dir"):
        ckpt.load(str(tmp_path), None, None, fsdp=fsdp)
