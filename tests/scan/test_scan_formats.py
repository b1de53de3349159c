"""pygzlaw scan reads every format generate writes (one window per document), and every
summary records how its ratios were computed; scan-merge refuses to mix (issue 11)."""
from __future__ import annotations

import json
import os
import shutil
import zlib

import numpy as np
import pytest

from pygzlaw.cli import main
from pygzlaw.grammar import random_pcfg
from pygzlaw.provenance import COMPARED_FIELDS, gzip_provenance, zlib_flavour, zlib_library
from pygzlaw.sampler.dataset import write_dataset
from pygzlaw.scan import scan, scan_merge
from pygzlaw.score import score_tokens

HERE = os.path.dirname(os.path.abspath(__file__))
MDS_FIXTURE = os.path.join(HERE, "..", "data", "mds-tiny")
KW = dict(n_tokens=2560, doc_tokens=32, seed=4, shard_docs=30, threads=1)  # 80 docs, 3 shards


@pytest.fixture(scope="module")
def npy_ratios(tmp_path_factory):
    """Per-document gzip ratios of the dataset, straight from its npy shards."""
    d = tmp_path_factory.mktemp("npy")
    write_dataset(random_pcfg("main-2", 0), str(d), fmt="npy", **KW)
    docs = np.concatenate([np.load(d / f"shard-0000{i}.npy") for i in range(3)])
    return d, np.sort(score_tokens(docs, threads=1).ratio)


def _window_ratios(out_dir) -> np.ndarray:
    import pyarrow.parquet as pq

    parts = sorted((out_dir / "windows").glob("*.parquet"))
    return np.sort(np.concatenate([pq.read_table(p).column("ratio").to_numpy() for p in parts]))


@pytest.mark.parametrize("fmt", ["npy", "parquet", "bin"])
def test_scan_reads_each_generate_format_one_window_per_document(tmp_path, npy_ratios, fmt):
    d = tmp_path / "ds"
    write_dataset(random_pcfg("main-2", 0), str(d), fmt=fmt, **KW)
    summary = scan([str(d)], out_dir=str(tmp_path / "scan"), per_window=True, threads=1,
                   progress=False)
    o = summary["overall"]
    assert o["n_docs"] == 80 and o["n_windows"] == 80 and o["bad_input_total"] == 0
    assert summary["n_units"] == 3
    np.testing.assert_array_equal(_window_ratios(tmp_path / "scan"), npy_ratios[1])


def test_scan_reads_the_mds_fixture(tmp_path):
    summary = scan([MDS_FIXTURE], threads=1, progress=False)
    o = summary["overall"]
    assert o["n_docs"] == 40 and o["n_windows"] == 40 and o["bad_input_total"] == 0


def test_a_damaged_index_file_is_bad_input_naming_it(tmp_path):
    d = tmp_path / "ds"
    write_dataset(random_pcfg("main-2", 0), str(d), fmt="bin", **KW)
    p = d / "shard-00001.idx"
    b = bytearray(p.read_bytes())
    b[-1] ^= 1
    p.write_bytes(bytes(b))
    summary = scan([str(d)], threads=1, progress=False)
    assert summary["overall"]["n_windows"] == 50
    assert summary["overall"]["bad_input"] == {"sha256_mismatch": 1}
    assert "shard-00001.idx: sha256" in summary["bad_examples"][0]["message"]


def test_summary_records_provenance_and_the_report_names_the_zlib(tmp_path, npy_ratios,
                                                                  capsys):
    summary = scan([str(npy_ratios[0])], threads=1, progress=False)
    p = summary["provenance"]
    assert p["zlib_version"] == zlib_library()[1] and p["zlib_flavour"] in ("zlib", "zlib-ng")
    assert p["python_zlib_version"] == zlib.ZLIB_RUNTIME_VERSION
    assert (p["level"], p["window_bits"], p["mem_level"], p["token_bytes"], p["byteorder"]) == (
        9, 15, 8, 4, "big")
    assert main(["scan", str(npy_ratios[0]), "--threads", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"{p['zlib_flavour']} {p['zlib_version']}" in out


def test_generate_manifest_records_how_h_was_computed(npy_ratios):
    m = json.loads((npy_ratios[0] / "manifest.json").read_text())
    assert m["stats"]["gzip_provenance"] == gzip_provenance()


@pytest.mark.parametrize("field,value", [("zlib_version", "1.3.1.zlib-ng"),
                                         ("zlib_flavour", "zlib-ng"), ("level", 6)])
def test_scan_merge_refuses_ratios_computed_differently(tmp_path, npy_ratios, field, value):
    a = scan([str(npy_ratios[0])], out_dir=str(tmp_path / "a"), threads=1, progress=False,
             shard=(0, 2))
    b = scan([str(npy_ratios[0])], out_dir=str(tmp_path / "b"), threads=1, progress=False,
             shard=(1, 2))
    merged = scan_merge([tmp_path / "a", tmp_path / "b"])
    assert merged["overall"]["n_windows"] == 80 and merged["provenance"] == a["provenance"]
    b["provenance"][field] = value
    with pytest.raises(ValueError, match=rf"{field}: .* vs {value!r}"):
        scan_merge([a, b])
    del b["provenance"]
    with pytest.raises(ValueError, match="no gzip provenance.*field: provenance"):
        scan_merge([a, b])


def test_zlib_flavour_names():
    assert zlib_flavour("1.2.13") == "zlib" and zlib_flavour("1.3.1.zlib-ng") == "zlib-ng"
    assert "pygzlaw_version" not in COMPARED_FIELDS and "zlib_version" in COMPARED_FIELDS


def test_mds_fixture_is_scanned_where_copied(tmp_path):
    """The dataset directory may move: shard files are found relative to the manifest."""
    d = tmp_path / "moved"
    shutil.copytree(MDS_FIXTURE, d)
    summary = scan([str(d)], threads=1, progress=False)
    assert summary["overall"]["n_windows"] == 40


def test_resuming_a_scan_under_another_zlib_is_refused(tmp_path, npy_ratios):
    out = tmp_path / "scan"
    scan([str(npy_ratios[0])], out_dir=str(out), threads=1, progress=False)
    m = out / "manifest.jsonl"
    lines = m.read_text().splitlines()
    head = json.loads(lines[0])
    assert head["provenance"] == scan([str(npy_ratios[0])], threads=1,
                                      progress=False)["provenance"]
    head["provenance"]["zlib_version"] = "1.3.1.zlib-ng"
    m.write_text("\n".join([json.dumps(head)] + lines[1:]) + "\n")
    with pytest.raises(ValueError, match=r"zlib_version: '1.3.1.zlib-ng' in .*manifest.jsonl vs "
                                         r".* in this machine.*--restart"):
        scan([str(npy_ratios[0])], out_dir=str(out), threads=1, progress=False)
    assert scan([str(npy_ratios[0])], out_dir=str(out), threads=1, progress=False,
                restart=True)["overall"]["n_windows"] == 80
