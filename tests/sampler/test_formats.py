"""Shard formats other trainers read (issue 11): every format round-trips token for token
through its ecosystem's reader, resumes, and is checked by sha256 like npy."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from pygzlaw.cli import main
from pygzlaw.grammar import random_pcfg
from pygzlaw.sampler import Sampler, formats
from pygzlaw.sampler.dataset import MANIFEST, write_dataset

HERE = os.path.dirname(os.path.abspath(__file__))
MDS_FIXTURE = os.path.join(HERE, "..", "data", "mds-tiny")
# 79 documents of 64 tokens in shards of 30: two full shards and a short one.
KW = dict(n_tokens=5000, doc_tokens=64, seed=3, shard_docs=30, threads=1)


@pytest.fixture(scope="module")
def grammar():
    return random_pcfg("main-2", 0)


@pytest.fixture(scope="module")
def want(grammar):
    """The dataset's documents, (79, 64) uint16, straight from the sampler."""
    return Sampler(grammar, 64, seed=3, threads=1).sample(79)[0]


def _manifest(d) -> dict:
    return json.loads((d / MANIFEST).read_text())


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", ["npy", "parquet", "bin"])
def test_format_round_trips_and_every_file_is_hashed(tmp_path, grammar, want, fmt):
    res = write_dataset(grammar, str(tmp_path), fmt=fmt, **KW)
    m = _manifest(tmp_path)
    assert m["shard_format"] == fmt and m["complete"] and len(m["shards"]) == 3
    got = np.concatenate([formats.read_shard(fmt, str(tmp_path), e, 64, "uint16")
                          for e in m["shards"]])
    np.testing.assert_array_equal(got, want)
    for e in m["shards"]:
        assert e["file"] == e["files"][0]["file"] and e["sha256"] == e["files"][0]["sha256"]
        for f in e["files"]:
            p = tmp_path / f["file"]
            assert p.stat().st_size == f["n_bytes"] and _sha(p) == f["sha256"]
    n_files = {"npy": 1, "parquet": 1, "bin": 2}[fmt]
    assert all(len(e["files"]) == n_files for e in m["shards"])
    # H is a property of the tokens, not of the format.
    ref = write_dataset(grammar, str(tmp_path / "npy"), fmt="npy", **KW) if fmt != "npy" else res
    assert res["stats"]["gzip_ratio_median"] == ref["stats"]["gzip_ratio_median"]


def test_parquet_is_read_by_pyarrow_and_hugging_face_datasets(tmp_path, grammar, want,
                                                                  monkeypatch):
    import pyarrow.parquet as pq

    monkeypatch.setattr(formats, "PARQUET_ROW_GROUP_BYTES", 10 * 64 * 2)  # 10 docs a group
    write_dataset(grammar, str(tmp_path / "ds"), fmt="parquet", **KW)
    files = sorted(str(p) for p in (tmp_path / "ds").glob("shard-*.parquet"))
    assert pq.ParquetFile(files[0]).metadata.num_row_groups == 3
    table = pq.read_table(files[1])
    assert table.schema.field("input_ids").type.value_type == "uint16"
    assert table.column("doc_index").to_pylist() == list(range(30, 60))
    assert table.column("input_ids").to_pylist() == want[30:60].tolist()

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets is a test extra")
    ds = datasets.load_dataset("parquet", data_files=files, split="train",
                               cache_dir=str(tmp_path / "hf-cache"))
    assert ds.num_rows == 79 and ds["doc_index"] == list(range(79))
    np.testing.assert_array_equal(np.array(ds["input_ids"]), want)


_MEGATRON_READ = """
import json, sys, warnings
warnings.simplefilter("ignore")
from megatron.core.datasets.indexed_dataset import IndexedDataset
out = []
for prefix in sys.argv[1:]:
    ds = IndexedDataset(prefix)
    out.append({"n": len(ds), "docs": [ds[i].tolist() for i in range(len(ds))],
                "lengths": ds.sequence_lengths.tolist(),
                "doc_idx": ds.document_indices.tolist(), "dtype": str(ds[0].dtype)})
print(json.dumps(out))
"""


def test_bin_is_read_by_numpy_memmap_and_megatron(tmp_path, grammar, want):
    write_dataset(grammar, str(tmp_path), fmt="bin", **KW)
    m = _manifest(tmp_path)
    # nanoGPT style: the flat token stream, memory-mapped.
    flat = np.concatenate([np.memmap(tmp_path / e["file"], dtype=np.uint16, mode="r")
                           for e in m["shards"]])
    np.testing.assert_array_equal(flat, want.reshape(-1))
    if importlib.util.find_spec("megatron") is None:  # not imported here: ~10 s, in the child
        pytest.skip("megatron-core is a test extra")
    prefixes = [str(tmp_path / e["file"][:-4]) for e in m["shards"]]
    r = subprocess.run([sys.executable, "-c", _MEGATRON_READ, *prefixes], capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert [g["n"] for g in got] == [30, 30, 19]
    assert all(g["dtype"] == "uint16" and set(g["lengths"]) == {64} for g in got)
    assert got[2]["doc_idx"] == list(range(20))
    np.testing.assert_array_equal(np.array([d for g in got for d in g["docs"]]), want)


@pytest.mark.parametrize("dtype,code", [("uint16", 8), ("int32", 4)])
def test_megatron_index_layout(tmp_path, dtype, code):
    data = formats.megatron_index_bytes(3, 5, dtype)
    assert data[:9] == b"MMIDIDX\x00\x00"
    assert struct.unpack_from("<QBQQ", data, 9) == (1, code, 3, 4)
    size = np.dtype(dtype).itemsize
    assert len(data) == 9 + 8 + 1 + 8 + 8 + 3 * 4 + 3 * 8 + 4 * 8
    p = tmp_path / "x.idx"
    p.write_bytes(data)
    idx = formats.read_megatron_index(str(p))
    assert idx["dtype"] == np.dtype(dtype) and idx["lengths"].tolist() == [5, 5, 5]
    assert idx["pointers"].tolist() == [0, 5 * size, 10 * size]
    assert idx["document_indices"].tolist() == [0, 1, 2, 3]
    p.write_bytes(b"NOTANIDX!" + data[9:])
    with pytest.raises(ValueError, match="magic"):
        formats.read_megatron_index(str(p))
    p.write_bytes(data[:40])
    with pytest.raises(ValueError, match="3 sequences"):
        formats.read_megatron_index(str(p))
    with pytest.raises(ValueError, match="float16 has no Megatron"):
        formats.megatron_index_bytes(1, 4, "float16")


@pytest.mark.parametrize("fmt,victim", [("bin", "shard-00001.idx"), ("bin", "shard-00002.bin"),
                                        ("parquet", "shard-00000.parquet")])
def test_damaged_file_is_regenerated_and_the_rest_resumed(tmp_path, grammar, want, capsys,
                                                          fmt, victim):
    write_dataset(grammar, str(tmp_path), fmt=fmt, **KW)
    before = {e["file"]: e for e in _manifest(tmp_path)["shards"]}
    p = tmp_path / victim
    if victim.endswith(".bin"):
        p.unlink()
    else:
        b = bytearray(p.read_bytes())
        b[len(b) // 2] ^= 0xFF
        p.write_bytes(bytes(b))
    res = write_dataset(grammar, str(tmp_path), fmt=fmt, **KW)
    assert res["n_resumed"] == 2
    assert victim.split(".")[0] in capsys.readouterr().err
    after = {e["file"]: e for e in _manifest(tmp_path)["shards"]}
    assert {k: v["files"] for k, v in after.items()} == {k: v["files"] for k, v in before.items()}
    got = np.concatenate([formats.read_shard(fmt, str(tmp_path), e, 64, "uint16")
                          for e in after.values()])
    np.testing.assert_array_equal(got, want)


def test_another_format_is_refused_then_replaced_with_overwrite(tmp_path, grammar):
    write_dataset(grammar, str(tmp_path), fmt="npy", **KW)
    with pytest.raises(ValueError, match="shard_format: 'npy' → 'bin'.*--overwrite"):
        write_dataset(grammar, str(tmp_path), fmt="bin", **KW)
    write_dataset(grammar, str(tmp_path), fmt="bin", overwrite=True, **KW)
    names = sorted(os.listdir(tmp_path))
    assert not [n for n in names if n.endswith(".npy")]
    assert [n for n in names if n.endswith(".idx")] == [f"shard-0000{i}.idx" for i in range(3)]


def test_manifest_from_before_formats_still_resumes(tmp_path, grammar):
    write_dataset(grammar, str(tmp_path), **KW)
    m = _manifest(tmp_path)
    del m["shard_format"]
    for e in m["shards"]:
        del e["files"]
    (tmp_path / MANIFEST).write_text(json.dumps(m))
    assert write_dataset(grammar, str(tmp_path), **KW)["n_resumed"] == 3


def test_stray_shards_of_any_format_are_not_overwritten(tmp_path, grammar):
    (tmp_path / "shard-00000.bin").write_bytes(b"\0" * 8)
    with pytest.raises(ValueError, match="shard-00000.bin but no manifest.json"):
        write_dataset(grammar, str(tmp_path), fmt="bin", **KW)


def test_unknown_format_names_the_flag(tmp_path, grammar):
    with pytest.raises(ValueError, match=r"--format.*npy, parquet, bin, mds"):
        write_dataset(grammar, str(tmp_path), fmt="csv", **KW)


def test_mds_without_streaming_names_the_extra_and_writes_nothing(tmp_path, grammar,
                                                                  monkeypatch):
    monkeypatch.setitem(sys.modules, "streaming", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pygzlaw\[mds\]"):
        write_dataset(grammar, str(tmp_path / "ds"), fmt="mds", **KW)
    assert not (tmp_path / "ds").exists() or not os.listdir(tmp_path / "ds")


def _mds_fixture_docs():
    return Sampler(random_pcfg("main-1", 0), 16, seed=5, threads=1).sample(40)[0]


def test_mds_written_by_streaming_is_verified_and_read(tmp_path):
    """tests/data/mds-tiny was written by write_dataset(fmt="mds") with mosaicml-streaming
    0.13.0's MDSWriter (main-1, grammar seed 0, seed 5, 40 docs of 16 tokens, shards of 25)
    and read back by its StreamingDataset; CI without the extra still checks the files."""
    d = tmp_path / "mds"
    shutil.copytree(MDS_FIXTURE, d)
    m = _manifest(d)
    assert m["shard_format"] == "mds" and [e["n_docs"] for e in m["shards"]] == [25, 15]
    assert all(formats.verify_shard(str(d), e) for e in m["shards"])
    got = np.concatenate([formats.read_shard("mds", str(d), e, 16, m["dtype"])
                          for e in m["shards"]])
    np.testing.assert_array_equal(got, _mds_fixture_docs())
    merged = (d / "index.json").read_bytes()
    (d / "index.json").unlink()
    assert formats.finish_dataset("mds", str(d), m["shards"])["sha256"] == m["dataset_file"]["sha256"]
    assert (d / "index.json").read_bytes() == merged
    assert [s["raw_data"]["basename"] for s in json.loads(merged)["shards"]] == [
        "shard-00000/shard.00000.mds", "shard-00001/shard.00000.mds"]
    b = bytearray((d / "shard-00001" / "shard.00000.mds").read_bytes())
    b[-3] ^= 1
    (d / "shard-00001" / "shard.00000.mds").write_bytes(bytes(b))
    assert not formats.verify_shard(str(d), m["shards"][1])


def test_mds_round_trips_through_streaming_dataset(tmp_path):
    streaming = pytest.importorskip("streaming", reason="mosaicml-streaming is the optional "
                                    "extra pygzlaw[mds]; it needs torch 2.14 and numpy < 2.2")
    write_dataset(random_pcfg("main-1", 0), str(tmp_path), n_tokens=640, doc_tokens=16, seed=5,
                  shard_docs=25, fmt="mds")
    ds = streaming.StreamingDataset(local=str(tmp_path), shuffle=False, batch_size=1)
    np.testing.assert_array_equal(np.stack([ds[i]["input_ids"] for i in range(len(ds))]),
                                  _mds_fixture_docs())


def test_cli_format_flag(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["generate", "--preset", "main-1", "--tokens", "640", "--doc-tokens", "16",
                 "--seed", "5", "--format", "bin", "--out", str(out), "--quiet", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert sorted(os.listdir(out)) == ["manifest.json", "shard-00000.bin", "shard-00000.idx"]
    np.testing.assert_array_equal(np.fromfile(out / "shard-00000.bin", dtype=np.uint16),
                                  _mds_fixture_docs().reshape(-1))
    assert stats["gzip_provenance"]["zlib_version"]
    with pytest.raises(SystemExit):
        main(["generate", "--format", "csv", "--out", str(out)])
    assert "invalid choice: 'csv'" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["bin", "parquet"])
def test_trainer_reads_every_format(tmp_path, grammar, want, fmt):
    from pygzlaw.train.data import ShardSource

    write_dataset(grammar, str(tmp_path), fmt=fmt, **KW)
    out = np.empty((40, 64), dtype=np.uint16)
    ShardSource(str(tmp_path)).fill(out, first_doc=25)  # spans shards 0 and 1
    np.testing.assert_array_equal(out, want[25:65])
