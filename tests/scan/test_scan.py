"""Scanner end to end: windows equal the scorer's, bad input counted, resume, shards."""
import io
import json
import os
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from pygzlaw.scan import ScanConfig, scan, scan_merge
from pygzlaw.scan.manifest import MANIFEST_NAME
from pygzlaw.score import score_tokens
from pygzlaw.score.reference import gzip_size_reference, serialize_tokens_reference
from pygzlaw.score.stats import summarize


def cli_main(argv):
    """Run our subcommands the way pygzlaw.cli.main does (without other stages' modules)."""
    import argparse

    from pygzlaw.scan import cli as scan_cli
    from pygzlaw.score import cli as score_cli

    parser = argparse.ArgumentParser(prog="pygzlaw")
    sub = parser.add_subparsers(dest="command")
    scan_cli.register(sub)
    score_cli.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def expected_ratios(texts, window, keep_tail=False):
    ratios = []
    for t in texts:
        b = t.encode()
        n = len(b) // window
        wins = [b[i * window:(i + 1) * window] for i in range(n)]
        if keep_tail and len(b) % window:
            wins.append(b[n * window:])
        ratios += [gzip_size_reference(w) / len(w) for w in wins]
    return ratios


def by_file(summary):
    return {os.path.basename(f["unit"]): f for f in summary["files"]}


def test_scan_all_formats(corpus, tmp_path):
    root, docs = corpus
    out = tmp_path / "out"
    s = scan([root], out_dir=out, window_bytes=256, per_window=True, progress=False)
    files = by_file(s)
    assert sorted(files) == sorted(docs)
    assert s["n_skipped_paths"] == 1  # notes.md
    for name, texts in docs.items():
        f = files[name]
        want = expected_ratios(texts, 256)
        assert f["n_windows"] == len(want)
        table = pq.read_table(out / f["parquet"])
        assert table.column("ratio").to_pylist() == want  # exact, in document order
        assert f["stats"]["median"] == summarize(want)["median"]
        tails = [len(t.encode()) % 256 for t in texts]
        assert f["n_tails"] == sum(1 for x in tails if x)
        assert f["tail_units"] == sum(tails)
    # bad input: every line reported with its line number
    a = files["a.jsonl"]["bad_input"]
    assert a == {"invalid_json": 1, "missing_field": 1, "not_text": 1, "undecodable": 1}
    assert files["e.parquet"]["bad_input"] == {"missing_field": 1}
    lines = {(os.path.basename(e["file"]), e["line"], e["kind"]) for e in s["bad_examples"]}
    assert ("a.jsonl", 61, "invalid_json") in lines and ("c.jsonl.gz", 65, "undecodable") in lines
    assert ("e.parquet", 31, "missing_field") in lines
    assert s["overall"]["n_windows"] == sum(f["n_windows"] for f in s["files"])
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["overall"] == s["overall"]


def test_keep_tail_and_line_mode(corpus):
    root, docs = corpus
    s = scan([root / "d.txt"], window_bytes=300, keep_tail=True, progress=False)
    want = expected_ratios(docs["d.txt"], 300, keep_tail=True)
    assert s["overall"]["stats"]["median"] == summarize(want)["median"]
    assert s["overall"]["n_windows"] == len(want)
    lines = ["alpha beta " * 40, "", "gamma " * 90]
    p = root / "lines.txt"
    p.write_text("\n".join(lines))
    s = scan([p], window_bytes=128, txt_unit="line", progress=False)
    assert s["overall"]["n_docs"] == 3
    assert s["overall"]["stats"]["median"] == summarize(expected_ratios(lines, 128))["median"]


def test_txt_file_mode_spans_read_chunks(tmp_path, monkeypatch):
    from pygzlaw.scan import readers

    monkeypatch.setattr(readers, "READ_CHUNK_BYTES", 1000)  # many parts per document
    text = "\n".join("line %d of some text here" % i for i in range(2000))
    (tmp_path / "big.txt").write_text(text)
    s = scan([tmp_path / "big.txt"], window_bytes=512, progress=False)
    assert s["overall"]["n_windows"] == len(text) // 512
    assert s["overall"]["stats"]["median"] == summarize(expected_ratios([text], 512))["median"]


def test_corrupt_compressed_file_counted_and_scan_continues(corpus, tmp_path):
    root, _ = corpus
    good = (root / "sub" / "b.jsonl.zst").read_bytes()
    (root / "sub" / "bad.jsonl.zst").write_bytes(good[: len(good) // 2] + b"\x00" * 50)
    (root / "sub" / "bad2.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    s = scan([root / "sub"], window_bytes=256, progress=False)
    files = by_file(s)
    assert "corrupt_compressed" in files["bad.jsonl.zst"]["bad_input"]
    assert files["bad2.jsonl.gz"]["bad_input"] == {"corrupt_compressed": 1}
    assert files["b.jsonl.zst"]["n_windows"] > 0


def test_strict_exit_code(corpus, tmp_path, capsys):
    root, _ = corpus
    assert cli_main(["scan", str(root / "d.txt"), "--no-progress"]) == 0
    assert cli_main(["scan", str(root / "a.jsonl"), "--no-progress"]) == 0
    assert cli_main(["scan", str(root / "a.jsonl"), "--no-progress", "--strict"]) == 1
    out = capsys.readouterr().out
    assert "a.jsonl:61: invalid_json" in out


def test_resume_skips_finished_units_and_survives_torn_manifest(corpus, tmp_path):
    root, _ = corpus
    out = tmp_path / "out"
    full = scan([root], out_dir=out, window_bytes=200, progress=False)
    man = out / MANIFEST_NAME
    lines = man.read_bytes().split(b"\n")
    # Simulate a kill during the last append: drop the last record, leave half of it.
    last = lines[-2]
    man.write_bytes(b"\n".join(lines[:-2]) + b"\n" + last[: len(last) // 2])
    again = scan([root], out_dir=out, window_bytes=200, progress=False)
    assert again["throughput"]["units_scanned_this_run"] == 1
    assert again["throughput"]["units_resumed"] == len(full["files"]) - 1
    assert again["overall"] == full["overall"]
    third = scan([root], out_dir=out, window_bytes=200, progress=False)
    assert third["throughput"]["units_scanned_this_run"] == 0
    with pytest.raises(ValueError, match=r"different configuration \(differs in: window_bytes\)"):
        scan([root], out_dir=out, window_bytes=100, progress=False)


def test_shards_partition_and_merge_equals_full_scan(corpus, tmp_path):
    root, _ = corpus
    full = scan([root], window_bytes=256, progress=False)
    parts = [scan([root], out_dir=tmp_path / f"s{i}", window_bytes=256, shard=f"{i}/3",
                  progress=False) for i in range(3)]
    units = [f["unit"] for p in parts for f in p["files"]]
    assert sorted(units) == sorted(f["unit"] for f in full["files"])
    merged = scan_merge([tmp_path / f"s{i}" for i in range(3)], out_path=tmp_path / "m.json")
    assert merged["overall"]["stats"] == full["overall"]["stats"]
    assert merged["overall"]["n_windows"] == full["overall"]["n_windows"]
    with pytest.raises(ValueError, match="appears in both"):
        scan_merge([tmp_path / "s0", tmp_path / "s0"])
    other = scan([root / "d.txt"], out_dir=tmp_path / "o", window_bytes=100, progress=False)
    with pytest.raises(ValueError, match="configuration differs .* window_bytes"):
        scan_merge([tmp_path / "s0", other])
    assert cli_main(["scan-merge", str(tmp_path / "s1"), str(tmp_path / "s2"),
                     "--out", str(tmp_path / "m2.json")]) == 0


def test_stdin(corpus, monkeypatch):
    root, docs = corpus
    data = (root / "sub" / "b.jsonl.zst").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    s = scan(["-"], stdin_format="jsonl.zst", window_bytes=256, progress=False)
    assert s["overall"]["n_windows"] == len(expected_ratios(docs["a.jsonl"], 256))
    assert s["files"][0]["unit"] == "-"


def test_stdin_is_never_resumed(tmp_path, monkeypatch):
    for text in (b"first stream " * 100, b"second, different stream " * 100):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))
        s = scan(["-"], out_dir=tmp_path / "out", window_bytes=64, progress=False)
        assert s["throughput"]["units_scanned_this_run"] == 1
        assert s["overall"]["n_windows"] == len(text) // 64


def _write_pcfg(root, dtype, n_docs=(50, 30), doc_tokens=64, corrupt_second=False):
    import hashlib

    root.mkdir()
    rng = np.random.default_rng(5)
    shards, arrays, first = [], [], 0
    for k, n in enumerate(n_docs):
        a = rng.integers(0, 500, (n, doc_tokens)).astype(dtype)
        a[:, ::3] = 0
        name = f"shard-{k:05d}.npy"
        np.save(root / name, a)
        sha = hashlib.sha256((root / name).read_bytes()).hexdigest()
        if corrupt_second and k == 1:
            sha = "0" * 64
        shards.append({"file": name, "first_doc": first, "n_docs": n, "sha256": sha})
        arrays.append(a)
        first += n
    (root / "manifest.json").write_text(json.dumps(
        {"shards": shards, "doc_tokens": doc_tokens, "dtype": np.dtype(dtype).name}))
    return arrays


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_pcfg_shards(tmp_path, dtype):
    arrays = _write_pcfg(tmp_path / "gen", dtype)
    out = tmp_path / "out"
    s = scan([tmp_path / "gen"], out_dir=out, per_window=True, progress=False)
    assert len(s["files"]) == 2
    for f, a in zip(s["files"], arrays):
        t = pq.read_table(out / f["parquet"])
        want = [gzip_size_reference(serialize_tokens_reference(row)) for row in a]
        assert t.column("compressed_bytes").to_pylist() == want
        assert t.column("raw_bytes").to_pylist() == [a.shape[1] * 4] * a.shape[0]
    assert s["files"][1]["stats"]["median"] == float(np.median(score_tokens(arrays[1]).ratio))
    docs = pq.read_table(out / s["files"][1]["parquet"]).column("doc").to_pylist()
    assert docs == list(range(50, 80))  # global document ids from first_doc


def test_pcfg_checksum_mismatch_is_bad_input(tmp_path):
    _write_pcfg(tmp_path / "gen", np.int32, corrupt_second=True)
    s = scan([tmp_path / "gen"], window_tokens=32, progress=False)
    assert s["overall"]["bad_input"] == {"sha256_mismatch": 1}
    assert s["overall"]["n_windows"] == 50 * 2  # two 32-token windows per 64-token doc


def test_tokenizer_windows(corpus, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    root, docs = corpus
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(docs["a.jsonl"], trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    path = tmp_path / "tok.json"
    tok.save(str(path))
    s = scan([root / "a.jsonl"], tokenizer=str(path), window_tokens=50, per_window=False,
             progress=False)
    want = []
    for t in docs["a.jsonl"]:
        ids = tok.encode(t, add_special_tokens=False).ids
        n = len(ids) // 50
        want += [gzip_size_reference(serialize_tokens_reference(ids[i * 50:(i + 1) * 50])) / 200
                 for i in range(n)]
    assert s["overall"]["n_windows"] == len(want)
    assert s["overall"]["stats"]["median"] == summarize(want)["median"]
    with pytest.raises(ValueError, match="needs tokenizer"):
        scan([root / "a.jsonl"], window_tokens=50, progress=False)


def test_missing_path_and_bad_options(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl: no such file"):
        scan([tmp_path / "nope.jsonl"], progress=False)
    with pytest.raises(ValueError, match=r"--shard '2/2'|need 0 <= i < n"):
        scan([tmp_path], shard="2/2", progress=False)
    with pytest.raises(ValueError, match="format 'csv' is unknown"):
        ScanConfig(fmt="csv")
    (tmp_path / "x.bin").write_bytes(b"abc")
    s = scan([tmp_path / "x.bin"], progress=False)
    assert s["overall"]["bad_input"] == {"unsupported_file": 1}
