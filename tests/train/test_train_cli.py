"""``pygzlaw train`` end to end on a tiny run, and its one-line errors naming the flag."""
import json

import pytest

pytest.importorskip("torch")

from pygzlaw.cli import main  # noqa: E402

TINY = ["train", "--model", "w16", "--grammar", "vocab300-2", "--tokens", "256", "--batch-docs",
        "4", "--seq-len", "16", "--val-docs", "8", "--device", "cpu", "--threads", "1",
        "--h-docs", "20", "--quiet"]


def test_tiny_run_prints_and_writes_the_record(tmp_path, capsys):
    assert main(TINY + ["--out", str(tmp_path), "--lr", "1e-2"]) == 0
    out = capsys.readouterr().out
    assert "w16" in out and "vocab300-2" in out and "D 256 tokens in 4 steps" in out
    rec = json.loads((tmp_path / "record.json").read_text())
    assert rec["n_tokens"] == 256 and rec["config"]["lr"] == 1e-2 and rec["H"] > 0
    assert f"val {rec['val_loss']:.4f}" in out
    assert (tmp_path / "checkpoints" / "step-000004" / "meta.json").is_file()


def test_json_output(capsys):
    assert main(TINY + ["--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["n_steps"] == 4 and rec["grammar"] == "vocab300-2"


@pytest.mark.parametrize("extra, message", [
    (["--tokens", "50"], "--tokens=50 is fewer than one step"),
    (["--batch-docs", "0"], "--batch-docs=0 must be an int >= 1"),
    (["--lr", "-1"], "--lr=-1.0 must be > 0"),
    (["--checkpoint-every", "2"], "--checkpoint-every needs --out"),
    (["--model", "w20"], "--model='w20': size family width=20"),
    (["--grammar", "main-0"], "--grammar='main-0' is not a preset or a file"),
    (["--resume"], "--resume needs --out (where the checkpoints are)"),
    (["--threads", "0"], "--threads=0 must be an int >= 1"),
])
def test_error_is_one_line_naming_the_flag(extra, message, capsys):
    assert main(TINY + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pygzlaw train: error: ") and message in err and "\n" not in err


def test_grammar_required_without_data(capsys):
    argv = [a for a in TINY if a not in ("--grammar", "vocab300-2")]
    assert main(argv) == 2
    assert "--grammar is required" in capsys.readouterr().err


def test_switches_and_none_are_worded_for_the_command_line():
    from pygzlaw.train.cli import _flag_message

    assert _flag_message("resume=True needs out_dir (x)") == "--resume needs --out (x)"
    assert _flag_message("threads=0 must be an int >= 1 or None") == "--threads=0 must be an int >= 1"


def test_ctrl_c_names_the_last_checkpoint_and_resume(tmp_path, monkeypatch, capsys):
    import pygzlaw.train as train_pkg

    assert main(TINY + ["--out", str(tmp_path), "--checkpoint-every", "2"]) == 0
    capsys.readouterr()

    def interrupted(config, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_pkg, "train", interrupted)
    assert main(TINY + ["--out", str(tmp_path), "--resume"]) == 130
    err = capsys.readouterr().err
    assert "the last checkpoint is" in err and "step-000004" in err and "--resume" in err
    assert main(TINY) == 130
    assert "stopped before any checkpoint (none are written without --out)" in capsys.readouterr().err


def test_a_compiled_record_prints_its_steady_speed_and_compile_time(capsys):
    from pygzlaw.train.cli import _print_record
    from pygzlaw.train.config import RunRecord

    rec = RunRecord(n_params=1000, n_params_non_embedding=10, n_tokens=4096, flops=1.0,
                    train_loss=1.0, val_loss=1.0, wall_s=30.0, tokens_per_s=31_600.0, mfu=None,
                    data_wait_fraction=0.0, config={"model": "w64"}, grammar="main-3",
                    grammar_seed=0, H=None, version="x", n_steps=244, compiled=True,
                    tokens_per_s_steady=53_100.0, compile_s=25.0)
    _print_record(rec)
    out = capsys.readouterr().out
    assert "31,600 tokens/s" in out and "53,100 tokens/s after the first step" in out
    assert "compiled for 25 s" in out
