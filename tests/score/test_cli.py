"""``pygzlaw score`` on a .npy token array."""
import argparse
import json

import numpy as np
import pytest

from pygzlaw.score import cli as score_cli
from pygzlaw.score import score_tokens
from pygzlaw.score.stats import summarize


def run(argv):
    parser = argparse.ArgumentParser(prog="pygzlaw")
    score_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_score_npy(tmp_path, capsys):
    tokens = np.random.default_rng(0).integers(0, 100, (50, 256)).astype(np.uint16)
    np.save(tmp_path / "t.npy", tokens)
    assert run(["score", str(tmp_path / "t.npy"), "--json", str(tmp_path / "s.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    want = summarize(score_tokens(tokens).ratio)
    assert out["stats"]["median"] == want["median"] and out["stats"]["std"] == want["std"]
    assert json.loads((tmp_path / "s.json").read_text()) == out
    assert run(["score", str(tmp_path / "t.npy"), "--sample", "10"]) == 0
    assert json.loads(capsys.readouterr().out)["n_docs"] == 10


def test_score_rejects_1d(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(10))
    with pytest.raises(ValueError, match=r"shape \(10,\); need \(n_docs, doc_tokens\)"):
        run(["score", str(tmp_path / "v.npy")])
