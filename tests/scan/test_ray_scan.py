"""scan --engine ray: equal to the local scan, retried after a killed task, resumable by shard.

One local Ray for the module (2 CPUs, no dashboard, loopback); every wait is bounded.
"""
import gzip
import json
import os
import sys

import pyarrow.parquet as pq
import pytest

from pygzlaw.scan import scan
from pygzlaw.scan.ray_engine import plan_shards, scan_ray
from pygzlaw.scan.readers import Unit

TIMEOUT_S = 90  # no task may take longer than this to finish (a hang fails the test)
# Small shards so the test corpus (about 200 KB) makes several tasks.
SHARD_BYTES = 40_000


@pytest.fixture
def mixed(corpus):
    """The scan corpus (jsonl, jsonl.zst, jsonl.gz, json, parquet, txt, bad lines) + txt.gz."""
    root, docs = corpus
    (root / "sub" / "g.txt.gz").write_bytes(gzip.compress((root / "d.txt").read_bytes() * 3))
    return root


def _windows(out):
    """Every per-window row of a scan directory, sorted (unit, doc, window)."""
    rows = []
    d = out / "windows"
    for name in sorted(os.listdir(d)):
        t = pq.read_table(d / name)
        unit = t.schema.metadata[b"pygzlaw.unit"].decode()
        rows += [(unit, *r.values()) for r in t.to_pylist()]
    return sorted(rows)


def _assert_stats(got, want):
    """Counts, extremes, exact quantiles, histogram identical; mean and std differ at most in
    the last bits (moments merged in another order: per shard, then shards)."""
    assert set(got) == set(want)
    for key in want:
        if key in ("mean", "std") and want[key] is not None:
            assert got[key] == pytest.approx(want[key], rel=1e-12), key
        else:
            assert got[key] == want[key], key


def _assert_same(local, remote):
    """Exact statistics and counts identical; float moments to the last bits."""
    files_l = {f["unit"]: f for f in local["files"]}
    files_r = {f["unit"]: f for f in remote["files"]}
    assert sorted(files_l) == sorted(files_r)
    for k, fl in files_l.items():
        fr = files_r[k]
        assert fr["parquet"] == fl["parquet"]
        for key in ("input_bytes", "n_docs", "n_windows", "n_tails", "tail_units",
                    "window_raw_bytes", "bad_input"):
            assert fr[key] == fl[key], (k, key)
        _assert_stats(fr["stats"], fl["stats"])
    ol, orr = local["overall"], remote["overall"]
    assert {k: v for k, v in orr.items() if k != "stats"} == \
        {k: v for k, v in ol.items() if k != "stats"}
    assert orr["stats"]["quantile_method"] == ol["stats"]["quantile_method"] == "exact"
    _assert_stats(orr["stats"], ol["stats"])
    key = lambda e: (e["file"], e["line"], e["kind"], e["message"])  # noqa: E731
    assert sorted(remote["bad_examples"], key=key) == sorted(local["bad_examples"], key=key)
    assert remote["n_skipped_paths"] == local["n_skipped_paths"] == 1


def test_plan_shards_balanced_and_stable():
    sizes = [900, 10, 300, 300, 250, 240, 5, 100]
    units = [Unit(key=f"f{i}.jsonl.gz", path=f"f{i}.jsonl.gz", fmt="jsonl", compression="gz",
                  size_bytes=s) for i, s in enumerate(sizes)]
    shards = plan_shards(units, 710)
    assert len(shards) == 3  # ceil(2105 / 710)
    assert sorted(u.key for sh in shards for u in sh.units) == sorted(u.key for u in units)
    loads = sorted(sh.size_bytes for sh in shards)
    assert loads == [565, 640, 900]  # largest first to the lightest shard
    big = next(sh for sh in shards if any(u.key == "f0.jsonl.gz" for u in sh.units))
    assert len(big.units) == 1
    assert max(loads) - min(loads) <= 900  # LPT: within the largest unit
    again = plan_shards(list(units), 710)
    assert [s.shard_id for s in again] == [s.shard_id for s in shards]
    assert len({s.shard_id for s in shards}) == 3
    for sh in shards:  # discovery order inside a shard
        idx = [units.index(u) for u in sh.units]
        assert idx == sorted(idx)
    assert len(plan_shards(units[:2], 1)) == 2  # never more shards than units
    with pytest.raises(ValueError, match="--shard-mb"):
        plan_shards(units, 0)


def test_ray_scan_equals_local(local_ray, mixed, tmp_path):
    local = scan([mixed], out_dir=tmp_path / "local", window_bytes=256, per_window=True,
                 progress=False)
    remote = scan_ray([mixed], out_dir=str(tmp_path / "ray"), window_bytes=256,
                      per_window=True, shard_bytes=SHARD_BYTES, progress=False,
                      timeout_s=TIMEOUT_S)
    assert remote["engine"]["n_shards"] >= 3
    assert remote["engine"]["shards_run"] == remote["engine"]["n_shards"]
    _assert_same(local, remote)
    assert _windows(tmp_path / "ray") == _windows(tmp_path / "local")
    # bad input inside one shard: counted and reported with file and line as locally
    assert local["overall"]["bad_input_total"] > 0
    lines = {(e["file"], e["line"]) for e in remote["bad_examples"]}
    assert (str(mixed / "a.jsonl"), 61) in lines
    with open(tmp_path / "ray" / "summary.json") as f:
        assert json.load(f)["overall"] == remote["overall"]


def test_ray_scan_killed_task_is_retried(local_ray, mixed, tmp_path):
    """The first attempt of one task kills its worker after its first unit; Ray reruns it,
    the rerun resumes from the shard's manifest, and nothing counts twice."""
    local = scan([mixed], window_bytes=256, progress=False)
    marker = tmp_path / "killed"
    remote = scan_ray([mixed], out_dir=str(tmp_path / "ray"), window_bytes=256,
                      shard_bytes=SHARD_BYTES, progress=False, timeout_s=TIMEOUT_S,
                      max_retries=2, _exit_after_first_unit=str(marker))
    killed = marker.read_text()
    assert killed.startswith("s")
    assert os.path.exists(tmp_path / "ray" / "shards" / killed / "summary.json")
    # the unit finished before the kill came from the shard's manifest, not scanned twice
    assert remote["throughput"]["units_scanned_this_run"] == len(local["files"]) - 1
    assert remote["throughput"]["units_resumed"] == 1
    _assert_same(local, remote)


def test_ray_scan_resume_recomputes_only_the_missing_shard(local_ray, mixed, tmp_path):
    import shutil

    out = tmp_path / "ray"
    kw = dict(out_dir=str(out), window_bytes=256, per_window=True, shard_bytes=SHARD_BYTES,
              progress=False, timeout_s=TIMEOUT_S)
    first = scan_ray([mixed], **kw)
    ids = sorted(os.listdir(out / "shards"))
    ids.remove("config.json")
    mtimes = {i: os.stat(out / "shards" / i / "summary.json").st_mtime_ns for i in ids}
    again = scan_ray([mixed], **kw)
    assert again["engine"]["shards_run"] == 0
    assert again["engine"]["shards_resumed"] == len(ids)
    victim = ids[1]
    shutil.rmtree(out / "shards" / victim)
    third = scan_ray([mixed], **kw)
    assert third["engine"]["run_shard_ids"] == [victim]
    n_victim = len(json.loads((out / "shards" / victim / "summary.json").read_text())["files"])
    assert third["throughput"]["units_scanned_this_run"] == n_victim
    assert third["throughput"]["units_resumed"] == len(first["files"]) - n_victim
    for i in ids:
        if i != victim:
            assert os.stat(out / "shards" / i / "summary.json").st_mtime_ns == mtimes[i]
    for s in (again, third):
        assert s["overall"] == first["overall"]
        assert s["files"] == first["files"]
    # a missing per-window file makes its shard run again, and only that unit is rescored
    f0 = first["files"][0]
    os.unlink(out / f0["parquet"])
    fourth = scan_ray([mixed], **kw)
    assert len(fourth["engine"]["run_shard_ids"]) == 1
    assert fourth["throughput"]["units_scanned_this_run"] == 1  # the others from its manifest
    assert os.path.exists(out / f0["parquet"])
    assert fourth["overall"] == first["overall"]
    # another configuration in the same directory is refused, naming the option
    with pytest.raises(ValueError, match="window_bytes"):
        scan_ray([mixed], **{**kw, "window_bytes": 512})


def test_ray_scan_reads_fsspec_urls(local_ray, mixed, tmp_path):
    """A corpus given as a URL (file:// here; s3:// etc. alike): listed with fsspec, copied
    by each task, scanned as locally; units are named by their URL."""
    local = scan([mixed], window_bytes=256, progress=False)
    url = "file://" + str(mixed)
    remote = scan_ray([url], out_dir=str(tmp_path / "ray"), window_bytes=256,
                      shard_bytes=SHARD_BYTES, progress=False, timeout_s=TIMEOUT_S)
    assert all(f["unit"].startswith("file://") for f in remote["files"])
    strip = lambda s: {f["unit"][len("file://"):]: f for f in s["files"]}  # noqa: E731
    files_l = {f["unit"]: f for f in local["files"]}
    assert strip(remote).keys() == files_l.keys()
    for k, f in strip(remote).items():
        want = files_l[k]
        assert (f["n_windows"], f["bad_input"]) == (want["n_windows"], want["bad_input"])
    assert remote["overall"]["n_windows"] == local["overall"]["n_windows"]
    assert remote["n_skipped_paths"] == 1
    bad = {(e["file"], e["line"]) for e in remote["bad_examples"]}
    assert (url + "/a.jsonl", 61) in bad
    again = scan_ray([url], out_dir=str(tmp_path / "ray"), window_bytes=256,
                     shard_bytes=SHARD_BYTES, progress=False, timeout_s=TIMEOUT_S)
    assert again["engine"]["shards_run"] == 0  # URL fingerprints resume too


def test_ray_scan_cli(local_ray, mixed, tmp_path, capsys):
    from test_scan import cli_main

    out = tmp_path / "cli"
    code = cli_main(["scan", str(mixed), "--engine", "ray", "--out", str(out), "--threads", "1",
                     "--window-bytes", "256", "--shard-mb", "0.04", "--no-progress", "--json"])
    assert code == 0
    s = json.loads(capsys.readouterr().out)
    assert s["engine"]["name"] == "ray" and s["engine"]["n_shards"] >= 3
    local = scan([mixed], window_bytes=256, threads=1, progress=False)
    assert s["overall"]["n_windows"] == local["overall"]["n_windows"]
    with pytest.raises(ValueError, match="stdin"):
        cli_main(["scan", "-", "--engine", "ray", "--out", str(out)])
    with pytest.raises(ValueError, match="--out"):
        cli_main(["scan", str(mixed), "--engine", "ray"])
    with pytest.raises(ValueError, match="--engine ray"):
        cli_main(["scan", str(mixed), "--address", "auto"])
    with pytest.raises(ValueError, match="URL inputs .* --engine ray"):
        cli_main(["scan", "s3://bucket/corpus/"])
    with pytest.raises(ValueError, match="--shard-mb"):
        cli_main(["scan", str(mixed), "--engine", "ray", "--out", str(out), "--shard", "0/2"])


def test_engine_ray_without_ray_names_the_extra(monkeypatch, mixed, tmp_path, capsys):
    from test_scan import cli_main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code = cli_main(["scan", str(mixed), "--engine", "ray", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "pip install 'pygzlaw[ray]'" in capsys.readouterr().err
    with pytest.raises(ImportError, match=r"pygzlaw\[ray\]"):
        scan_ray([mixed], out_dir=str(tmp_path / "o2"))
