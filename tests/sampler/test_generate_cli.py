"""``pygzlaw generate``: shards + manifest, checksums, resume, parameter mismatch; ``pygzlaw grammar``."""
import argparse
import gzip
import hashlib
import io
import json
import os

import numpy as np
import pytest

from pygzlaw.grammar import from_nltk_text, load, random_pcfg
from pygzlaw.sampler import Sampler, cli, dataset, formats

# 3125 documents of 64 tokens in shards of 1000: three full shards and a short one.
BASE = ["--preset", "main-2", "--grammar-seed", "3", "--seed", "7", "--tokens", "200k",
        "--doc-tokens", "64", "--shard-docs", "1000", "--threads", "2", "--quiet"]
N_DOCS = 3125


def run(*argv):
    parser = argparse.ArgumentParser(prog="pygzlaw")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def expected_docs(n_docs=N_DOCS, **kw):
    s = Sampler(random_pcfg("main-2", 3), 64, seed=7, threads=1, **kw)
    return s.sample(n_docs)[0]


def shard_files(d):
    return sorted(f for f in os.listdir(d) if f.startswith("shard-"))


def test_shards_manifest_checksums_and_bytes(tmp_path, capsys):
    out = tmp_path / "ds"
    assert run("generate", *BASE, "--out", str(out), "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert shard_files(out) == [f"shard-0000{i}.npy" for i in range(4)]
    assert sorted(os.listdir(out)) == ["manifest.json"] + shard_files(out)  # no temp files
    m = json.loads((out / "manifest.json").read_text())
    assert m["format"] == "pygzlaw-tokens" and m["version"] == 1 and m["complete"] is True
    assert (m["seed"], m["grammar_seed"], m["preset"], m["separator"]) == (7, 3, "main-2", "reserve")
    assert (m["doc_tokens"], m["n_docs"], m["n_tokens"], m["dtype"]) == (64, N_DOCS, N_DOCS * 64, "uint16")
    assert m["vocab_size"] == 151 and m["spec"]["n_terminals"] == 150
    assert m["guards"] == {"max_depth": 1000, "max_sentence_tokens": 1 << 20}
    assert m["pygzlaw_version"]
    from pygzlaw.grammar import grammar_from_dict
    assert grammar_from_dict(m["grammar"]) == random_pcfg("main-2", 3)
    want = expected_docs()
    got = []
    for i, entry in enumerate(m["shards"]):
        path = out / entry["file"]
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["n_bytes"]
        assert entry["first_doc"] == 1000 * i and entry["n_docs"] == (1000 if i < 3 else 125)
        arr = np.load(path)
        assert arr.dtype == np.uint16 and arr.shape == (entry["n_docs"], 64)
        got.append(arr)
    np.testing.assert_array_equal(np.concatenate(got), want)  # same bytes as Sampler directly
    # statistics
    assert stats["n_docs"] == N_DOCS and stats["n_tokens"] == N_DOCS * 64
    assert stats["n_sentences"] == sum(e["stats"]["n_sentences"] for e in m["shards"])
    assert stats["rejection_rate"] == 0.0 and stats["gzip_sample_docs"] == 1000
    counts = np.bincount(want.ravel(), minlength=151)
    p = counts[counts > 0] / counts.sum()
    assert stats["unigram_entropy_bits"] == pytest.approx(-(p * np.log2(p)).sum(), rel=1e-12)
    assert 0 < stats["gzip_ratio_median"] < 1.1 and stats["gzip_ratio_std"] > 0


def test_gzip_ratio_matches_paper_definition():
    rows = expected_docs(3)
    for row, ratio in zip(rows, cli.gzip_ratio_sample(rows)):
        raw = b"".join(int(t).to_bytes(4, "big", signed=True) for t in row)
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as f:
            f.write(raw)
        assert ratio == len(buf.getvalue()) / len(raw)


def test_resume_after_interruption_keeps_finished_shards(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    real = dataset._write_shard
    real_write = formats._HashingWriter.write
    calls = []

    def flaky(path, arr, **kw):
        calls.append(path)
        return real(path, arr, **kw)

    def dying_write(self, data):
        if len(calls) == 3 and self.n_bytes > 0:  # header written, data pending
            raise KeyboardInterrupt  # "killed" halfway through writing the third shard
        return real_write(self, data)

    monkeypatch.setattr(dataset, "_write_shard", flaky)
    monkeypatch.setattr(formats._HashingWriter, "write", dying_write)
    with pytest.raises(KeyboardInterrupt):
        run("generate", *BASE, "--out", str(out))
    monkeypatch.setattr(formats._HashingWriter, "write", real_write)
    assert sorted(os.listdir(out)) == ["manifest.json", "shard-00000.npy", "shard-00001.npy"]
    m = json.loads((out / "manifest.json").read_text())
    assert m["complete"] is False and [e["file"] for e in m["shards"]] == shard_files(out)
    assert len(m["shards"]) == 2
    mtimes = {f: os.stat(out / f).st_mtime_ns for f in shard_files(out)}

    monkeypatch.setattr(dataset, "_write_shard", real)
    written = []
    monkeypatch.setattr(dataset, "_write_shard", lambda p, a, **kw: (
        written.append(os.path.basename(p)), real(p, a, **kw))[1])
    assert run("generate", *BASE, "--out", str(out), "--json") == 0
    assert written == ["shard-00002.npy", "shard-00003.npy"]  # finished shards not redone
    assert {f: os.stat(out / f).st_mtime_ns for f in mtimes} == mtimes
    m = json.loads((out / "manifest.json").read_text())
    assert m["complete"] is True and len(m["shards"]) == 4
    got = np.concatenate([np.load(out / e["file"]) for e in m["shards"]])
    np.testing.assert_array_equal(got, expected_docs())


def test_corrupted_shard_is_regenerated(tmp_path, capsys):
    out = tmp_path / "ds"
    run("generate", *BASE, "--out", str(out))
    path = out / "shard-00001.npy"
    good = path.read_bytes()
    data = bytearray(good)
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    other = os.stat(out / "shard-00000.npy").st_mtime_ns
    capsys.readouterr()
    run("generate", *BASE, "--out", str(out))
    assert "shard-00001.npy is missing or does not match its checksum" in capsys.readouterr().err
    assert path.read_bytes() == good
    assert os.stat(out / "shard-00000.npy").st_mtime_ns == other


def test_mismatched_parameters_error_and_overwrite(tmp_path):
    out = tmp_path / "ds"
    run("generate", *BASE, "--out", str(out))
    with pytest.raises(ValueError, match=r"written for different parameters \(seed: 7 → 8\).*--overwrite"):
        run("generate", *BASE, "--seed", "8", "--out", str(out))
    with pytest.raises(ValueError, match=r"grammar \(a different grammar\)"):
        run("generate", *BASE, "--grammar-seed", "4", "--out", str(out))
    # --overwrite replaces it; a smaller run drops the old extra shards
    assert run("generate", *BASE, "--seed", "8", "--tokens", "64000", "--out", str(out),
               "--overwrite") == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["seed"] == 8 and m["n_docs"] == 1000 and shard_files(out) == ["shard-00000.npy"]
    s = Sampler(random_pcfg("main-2", 3), 64, seed=8)
    np.testing.assert_array_equal(np.load(out / "shard-00000.npy"), s.sample(1000)[0])


def test_refuses_to_resume_shards_of_another_sampler_stream(tmp_path):
    out = tmp_path / "ds"
    run("generate", *BASE, "--out", str(out))
    m = json.loads((out / "manifest.json").read_text())
    del m["sampler_stream"]  # as written before stream version 2
    m["complete"] = False
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match=r"sampler_stream: None → 2"):
        run("generate", *BASE, "--out", str(out))


def test_refuses_directory_with_foreign_shards(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "shard-00000.npy").write_bytes(b"not ours")
    with pytest.raises(ValueError, match="no manifest.json"):
        run("generate", *BASE, "--out", str(out))


def test_research_separator_int32_and_grammar_file(tmp_path, capsys):
    gpath = tmp_path / "g.pcfg"
    gpath.write_text("%start S\nS -> A 'b' [0.5] | 'c' [0.5]\nA -> 'a' [1]\n")
    out = tmp_path / "ds"
    run("generate", "--grammar", str(gpath), "--tokens", "1000", "--doc-tokens", "10",
        "--separator", "research", "--dtype", "int32", "--out", str(out), "--quiet", "--json")
    stats = json.loads(capsys.readouterr().out)
    arr = np.load(out / "shard-00000.npy")
    assert arr.dtype == np.int32 and arr.shape == (100, 10)
    m = json.loads((out / "manifest.json").read_text())
    assert m["vocab_size"] == 3 and m["separator"] == "research" and m["preset"] is None
    g = from_nltk_text(gpath.read_text())
    s = Sampler(g, 10, seed=0, separator="research", dtype=np.int32)
    np.testing.assert_array_equal(arr, s.sample(100)[0])
    assert stats["n_token_ids_seen"] == 3


def test_spec_knobs(tmp_path):
    out = tmp_path / "ds"
    run("generate", "--nonterminals", "5", "--terminals", "40", "--rhs-max-options", "3",
        "--rhs-max-len", "4", "--grammar-seed", "2", "--tokens", "5k", "--out", str(out), "--quiet")
    from pygzlaw.grammar import GrammarSpec, grammar_from_dict
    m = json.loads((out / "manifest.json").read_text())
    assert grammar_from_dict(m["grammar"]) == random_pcfg(GrammarSpec(5, 40, 3, 4), 2)
    with pytest.raises(ValueError, match="spec knobs go together"):
        run("generate", "--nonterminals", "5", "--out", str(out))
    with pytest.raises(ValueError, match="only one of --preset, --grammar"):
        run("generate", "--preset", "main-1", "--terminals", "5", "--out", str(out))


@pytest.mark.parametrize("text,value", [("50M", 50_000_000), ("1e8", 100_000_000), ("2.5k", 2500),
                                        ("100_000", 100_000), ("3G", 3 * 10**9), ("7", 7)])
def test_parse_count(text, value):
    assert cli.parse_count(text) == value


@pytest.mark.parametrize("text", ["abc", "0", "-5", "1.5", "2.5e-1"])
def test_parse_count_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_count(text)


def test_grammar_subcommands(tmp_path, capsys):
    assert run("grammar", "show", "--preset", "main-1") == 0
    assert from_nltk_text(capsys.readouterr().out) == random_pcfg("main-1", 0)
    path = tmp_path / "g.json"
    assert run("grammar", "export", "--preset", "main-4", "--grammar-seed", "9", str(path)) == 0
    assert load(path) == random_pcfg("main-4", 9)
    capsys.readouterr()
    assert run("grammar", "analyze", "--grammar", str(path), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_nonterminals"] == 31 and report["criticality"] == "subcritical"
