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


@pytest.mark.parametrize("dtype, values, flags, want", [
    (np.int16, [[1, 2], [3, 200]], ["--token-bytes", "1"],
     ["row 1 token 1 = 200", "1-byte signed", "--unsigned", "--token-bytes 2"]),
    (np.int64, [[70000, 1]], ["--token-bytes", "2", "--unsigned"],
     ["row 0 token 0 = 70000", "2-byte unsigned", "--token-bytes 4"]),
    (np.int32, [[5, -1]], ["--unsigned"], ["token 1 = -1", "drop --unsigned"]),
])
def test_out_of_range_ids_name_row_value_and_the_cli_flags(tmp_path, dtype, values, flags, want):
    np.save(tmp_path / "t.npy", np.array(values, dtype=dtype))
    with pytest.raises(ValueError) as exc:
        run(["score", str(tmp_path / "t.npy"), *flags])
    msg = str(exc.value)
    assert str(tmp_path / "t.npy") in msg and "signed=False" not in msg and "token_bytes" not in msg
    for w in want:
        assert w in msg


def test_sampled_row_is_named_by_its_row_in_the_file(tmp_path):
    a = np.zeros((40, 4), dtype=np.int32)
    a[37, 2] = 1 << 20
    np.save(tmp_path / "t.npy", a)
    with pytest.raises(ValueError, match=r"row 37 token 2 = 1048576 .*--token-bytes 4"):
        run(["score", str(tmp_path / "t.npy"), "--token-bytes", "2", "--sample", "40"])


def test_float_array_is_refused(tmp_path):
    np.save(tmp_path / "t.npy", np.zeros((2, 3)))
    with pytest.raises(ValueError, match="float64 is not an integer type"):
        run(["score", str(tmp_path / "t.npy")])


@pytest.mark.parametrize("shape", [(3, 0), (0, 5)])
def test_empty_arrays_are_refused_without_python_keywords(tmp_path, shape):
    np.save(tmp_path / "t.npy", np.zeros(shape, dtype=np.int32))
    with pytest.raises(ValueError, match=r"nothing to score") as exc:
        run(["score", str(tmp_path / "t.npy")])
    assert "empty=" not in str(exc.value)


@pytest.mark.parametrize("name", ["shard-00000.bin", "shard-00000.parquet", "data"])
def test_score_points_other_formats_to_scan(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x01\x00" * 8)
    with pytest.raises(ValueError, match=r"reads one 2-D \.npy token array.*pygzlaw scan DIR"):
        run(["score", str(tmp_path / name)])
