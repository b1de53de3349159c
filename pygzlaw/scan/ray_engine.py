"""Corpus scans on a Ray cluster: one Ray task per shard of files (``scan --engine ray``).

The driver lists the inputs exactly as the local scan does (``readers.discover``) and groups
the units into shards balanced by on-disk bytes (:func:`plan_shards`; a compressed file cannot
be split, so one huge file is one shard). Each shard is one Ray task running the local scan's
per-unit code (``_scan_unit``) on its files. A task writes, under ``OUT``:

* ``windows/<unit>.parquet``: per-window scores (``per_window``), the same names as the local
  scan, each written to a temporary file and renamed;
* ``shards/<shard_id>/manifest.jsonl``: the units it finished (the local scan's resumable
  manifest, so a retried task goes on from the last finished unit);
* ``shards/<shard_id>/summary.json``: the shard's summary (exact counts and the serialized
  sketch), written atomically last; it is what the task returns.

The driver merges the summaries keyed by shard id as tasks finish (a task run twice counts
once) with :func:`pygzlaw.scan.scan_merge`, in shard order so the result does not depend on
which task finished first, and writes ``OUT/summary.json``. Rerunning the same command skips
shards whose summary is complete and valid (same configuration, same units, inputs unchanged,
per-window files present). Tasks declare ``num_cpus=threads`` (the scorer's native threads);
a task whose worker dies is retried ``max_retries`` times by Ray, and so is one that raises
``OSError`` (a transient read error); bad input never raises (it is counted, as locally).

Inputs may also be fsspec URLs (``s3://bucket/corpus/``, ``gs://...``, ``hf://...``), so a
cluster reads the corpus where it lies: the driver lists them with fsspec and each task copies
its files to local temporary storage before scanning (resume fingerprints use the object's
size and ETag, fsspec's ``ukey``).

Shard ids depend only on the shard's unit keys, and the plan only on the inputs and
``shard_bytes``, never on the cluster size, so reruns on another cluster resume.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass

from pygzlaw.atomic import write_json
from pygzlaw.scan import (SUMMARY_FORMAT, SUMMARY_NAME, ScanConfig, _build_summary, _changed,
                          _check_windows, _config, _identity, _scan_unit, input_fingerprint,
                          readers, scan_merge)
from pygzlaw.scan.manifest import ScanManifest, check_config

__all__ = ["Shard", "plan_shards", "scan_ray", "scan_shard", "require_ray", "discover_url",
           "fingerprint", "is_url", "RAY_EXTRA_HINT", "DEFAULT_SHARD_BYTES"]

RAY_EXTRA_HINT = "install the ray extra: pip install 'pygzlaw[ray]'"
# 64 MiB of input per task: seconds of work per core (about 30 MB/s of windows at level 9),
# so Ray's per-task cost (milliseconds) stays negligible while shards still balance.
DEFAULT_SHARD_BYTES = 64 << 20
SHARDS_DIR = "shards"
CONFIG_NAME = "config.json"


def as_completed(ray, pending: list, timeout_s: float | None, what: str):
    """Yield ``(ref, result)`` for Ray object refs as their tasks finish.

    A task's own exception is re-raised as itself (not wrapped in RayTaskError); no task
    finishing within ``timeout_s`` raises TimeoutError naming ``what`` and how many are left.
    Refs still pending when the caller stops (an error, or a closed generator) are cancelled:
    nobody will read their results.
    """
    pending = list(pending)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=timeout_s)
            if not ready:
                raise TimeoutError(f"no Ray {what} task finished in {timeout_s} s "
                                   f"({len(pending)} shards left)")
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayTaskError as e:
                raise e.as_instanceof_cause() from None
            yield ready[0], result
    finally:
        for ref in pending:
            ray.cancel(ref)


def require_ray(what: str = "--engine ray"):
    """Import Ray or raise ImportError naming the extra to install."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"{what} needs Ray, which is not installed; {RAY_EXTRA_HINT}") from e
    return ray


@dataclass(frozen=True)
class Shard:
    """A group of units scanned by one Ray task.

    Attributes:
        shard_id: ``s<index>-<sha1 of the unit keys>`` (stable across runs and clusters).
        units: the units, in discovery order.
        size_bytes: their on-disk bytes.
    """

    shard_id: str
    units: tuple
    size_bytes: int


def plan_shards(units: list, shard_bytes: int = DEFAULT_SHARD_BYTES) -> list[Shard]:
    """Group units into shards balanced by on-disk bytes (deterministic).

    ``n = ceil(total / shard_bytes)`` shards (at most one per unit); units go largest first to
    the lightest shard (ties: lowest index), the longest-processing-time rule, so no shard
    exceeds the mean by more than its largest unit. Units keep their discovery order inside
    a shard.

    Args:
        units: ``readers.Unit`` list in discovery order.
        shard_bytes: target input bytes per shard (> 0).

    Returns:
        shards in a fixed order (by their first unit's discovery index); empty if no units.

    Raises:
        ValueError: shard_bytes < 1.
    """
    if shard_bytes < 1:
        raise ValueError(f"shard_bytes={shard_bytes} (--shard-mb) must be > 0")
    if not units:
        return []
    total = sum(u.size_bytes for u in units)
    n = max(1, min(len(units), -(-total // shard_bytes)))
    loads = [0] * n
    members: list[list[int]] = [[] for _ in range(n)]
    for i in sorted(range(len(units)), key=lambda i: (-units[i].size_bytes, i)):
        j = min(range(n), key=lambda j: (loads[j], j))
        loads[j] += units[i].size_bytes
        members[j].append(i)
    groups = sorted((sorted(m) for m in members if m), key=lambda m: m[0])
    shards = []
    for k, m in enumerate(groups):
        keys = "\n".join(units[i].key for i in m)
        sid = f"s{k:05d}-" + hashlib.sha1(keys.encode()).hexdigest()[:12]
        shards.append(Shard(sid, tuple(units[i] for i in m), sum(units[i].size_bytes for i in m)))
    return shards


def is_url(path: str) -> bool:
    """True for fsspec URLs such as s3://bucket/dir, gs://..., hf://..., file:///..."""
    return "://" in path


def discover_url(url: str, *, fmt: str | None = None) -> tuple[list, list[str]]:
    """Units of an fsspec URL: one file, or every file under a prefix (sorted).

    Text formats only (PCFG shard directories are read from local paths). Names as in
    ``readers.discover``: unsupported names under a prefix are skipped and returned, a
    named file with an unsupported name becomes a unit that reports ``unsupported_file``.

    Raises:
        ImportError: fsspec (or the filesystem's package, e.g. s3fs) is missing.
        FileNotFoundError: nothing at the URL.
    """
    try:
        import fsspec
    except ImportError as e:
        raise ImportError(f"{url}: URL inputs need fsspec; {RAY_EXTRA_HINT}") from e
    fs, root = fsspec.core.url_to_fs(url)
    forced = readers.parse_format(fmt) if fmt else None
    if fs.isdir(root):
        entries, named = sorted(fs.find(root, detail=True).items()), False
    elif fs.exists(root):
        entries, named = [(root, fs.info(root))], True
    else:
        raise FileNotFoundError(f"{url}: no such file or prefix")
    units, skipped = [], []
    for path, info in entries:
        full = fs.unstrip_protocol(path)
        f, c = forced if forced else readers.split_suffix(path)
        if not f:
            if named:
                units.append(readers.Unit(key=full, path=full, fmt="", compression=c))
            else:
                skipped.append(full)
            continue
        units.append(readers.Unit(key=full, path=full, fmt=f, compression=c,
                                  size_bytes=int(info.get("size") or 0)))
    return units, skipped


def fingerprint(unit) -> dict | None:
    """``input_fingerprint`` for local files; for URLs: size and the filesystem's unique key
    (an ETag on object stores; size and mtime on local disks)."""
    if not is_url(unit.path):
        return input_fingerprint(unit.path)
    import fsspec

    fs, p = fsspec.core.url_to_fs(unit.path)
    try:
        info = fs.info(p)
        ukey = fs.ukey(p)
    except (OSError, ValueError):
        return None
    return {"size_bytes": int(info.get("size") or 0), "mtime_ns": 0, "sha256_ends": str(ukey)}


def _staged(unit, tmp_dir: str):
    """The unit, readable from local disk: URLs are copied into tmp_dir first (a compressed
    stream cannot be split anyway; the scan is CPU-bound, so the copy is not the limit)."""
    import dataclasses

    if not is_url(unit.path):
        return unit
    import fsspec

    fs, p = fsspec.core.url_to_fs(unit.path)
    local = os.path.join(tmp_dir, "input-" + os.path.basename(p.rstrip("/")))
    fs.get_file(p, local)
    return dataclasses.replace(unit, path=local)


def scan_shard(shard: Shard, cfg: ScanConfig, out_dir: str, *, per_window: bool = False,
               threads: int = 1, batch_bytes: int = 4 << 20,
               _exit_after_first_unit: str | None = None) -> dict:
    """Scan one shard's units (the body of a Ray task; also callable without Ray).

    Resumes from ``out_dir/shards/<id>/manifest.jsonl``: a unit already finished, whose input
    is unchanged and whose per-window file (if asked for) exists, is not scanned again.

    Args:
        shard: from :func:`plan_shards`.
        cfg: the scan configuration.
        out_dir: the scan's output directory (shared by all nodes).
        per_window: write ``out_dir/windows/<unit>.parquet``.
        threads: native scorer threads (the CPUs the task declares).
        batch_bytes: window bytes per scorer batch.
        _exit_after_first_unit: fault injection for tests: a marker file path; if it does not
            exist, create it and kill this process (``os._exit``) after the first unit.

    Returns:
        the shard's summary (format ``pygzlaw.scan-summary/1`` plus ``"inputs"``: unit key ->
        input fingerprint, and ``"changed_inputs"``), also written to
        ``out_dir/shards/<id>/summary.json``.
    """
    from concurrent.futures import ThreadPoolExecutor

    identity = _identity(cfg, per_window)
    shard_dir = os.path.join(out_dir, SHARDS_DIR, shard.shard_id)
    manifest = ScanManifest(shard_dir, identity)
    tokenizer = None
    if cfg.tokenizer:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(cfg.tokenizer)

    class _NoBar:
        def update(self, n):
            pass

    import tempfile

    records, inputs, changed = {}, {}, []
    n_scanned = 0
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pygzlaw-score")
    try:
        for unit in shard.units:
            fp = fingerprint(unit)
            rec = manifest.records.get(unit.key)
            if rec is not None:
                why = _changed(rec.get("input"), fp)
                if not why and (not per_window or (rec.get("parquet") and os.path.exists(
                        os.path.join(out_dir, rec["parquet"])))):
                    records[unit.key], inputs[unit.key] = rec, fp
                    continue
                if why:
                    changed.append({"unit": unit.key, "reason": why})
            with tempfile.TemporaryDirectory(prefix="pygzlaw-scan-") as tmp:
                rec, _, _ = _scan_unit(_staged(unit, tmp), cfg, tokenizer, threads, batch_bytes,
                                       pool, _NoBar(), out_dir if per_window else None)
            rec["input"] = fp
            manifest.append(rec)
            n_scanned += 1
            records[unit.key], inputs[unit.key] = rec, fp
            if _exit_after_first_unit and not os.path.exists(_exit_after_first_unit):
                with open(_exit_after_first_unit, "w") as f:
                    f.write(shard.shard_id)
                os._exit(1)
    finally:
        pool.shutdown(wait=True)
    summary = _build_summary([records[u.key] for u in shard.units], identity, shard=(0, 1),
                             n_units=len(shard.units), n_skipped=0)
    summary["shard"] = shard.shard_id
    summary["inputs"] = inputs
    summary["changed_inputs"] = changed
    summary["units_scanned"] = n_scanned  # by this attempt (the rest came from the manifest)
    write_json(os.path.join(shard_dir, SUMMARY_NAME), summary)
    return summary


def _complete_summary(out_dir: str, shard: Shard, identity: dict, per_window: bool):
    """The shard's stored summary if it is complete and still valid, else None."""
    path = os.path.join(out_dir, SHARDS_DIR, shard.shard_id, SUMMARY_NAME)
    try:
        with open(path, "rb") as f:
            s = json.load(f)
    except (OSError, ValueError):
        return None
    keys = [u.key for u in shard.units]
    if (s.get("format") != SUMMARY_FORMAT or s.get("config") != identity
            or [f["unit"] for f in s.get("files", ())] != keys
            or s.get("n_units_done") != len(keys) or sorted(s.get("inputs", {})) != sorted(keys)):
        return None
    for u in shard.units:
        if _changed(s["inputs"][u.key], fingerprint(u)):
            return None
    if per_window:
        for f in s["files"]:
            if not f.get("parquet") or not os.path.exists(os.path.join(out_dir, f["parquet"])):
                return None
    return s


def _check_config(out_dir: str, identity: dict, restart: bool) -> None:
    """One configuration per output directory (as the local scan's manifest)."""
    import shutil

    d = os.path.join(out_dir, SHARDS_DIR)
    path = os.path.join(d, CONFIG_NAME)
    if restart and os.path.isdir(d):
        shutil.rmtree(d)
    if os.path.exists(path):
        with open(path, "rb") as f:
            check_config(path, json.load(f), identity)
        return
    os.makedirs(d, exist_ok=True)
    write_json(path, identity)


def scan_ray(paths, *, out_dir: str, config: ScanConfig | None = None, threads: int = 1,
             per_window: bool = False, address: str | None = None,
             shard_bytes: int = DEFAULT_SHARD_BYTES, max_retries: int = 3,
             progress: bool = True, restart: bool = False, batch_bytes: int = 4 << 20,
             timeout_s: float | None = None, _exit_after_first_unit: str | None = None,
             **config_kw) -> dict:
    """Scan a corpus with one Ray task per shard of files; same summary as ``scan``.

    Connects to Ray with ``ray.init(address=address)`` unless Ray is already initialized
    (None: the cluster named by ``RAY_ADDRESS``, or a new local one, dashboard off). A Ray
    started here is shut down at the end.

    Args:
        paths: files and directories, or fsspec URLs of files or prefixes (s3://, gs://,
            hf://, ...: the filesystem's package must be installed on every node; each task
            copies its URL files to local temporary storage and scans them there). Not "-":
            stdin cannot be split across machines.
        out_dir: output directory, on storage every node can write (required).
        config: a ScanConfig, or its fields as keyword arguments.
        threads: native scorer threads per task; each task declares ``num_cpus=threads``.
        per_window: also write per-window Parquet (``out_dir/windows/``, as locally).
        address: Ray cluster address ("auto", "ray://host:10001", "127.0.0.1:6379", ...).
        shard_bytes: target on-disk input bytes per task (see :func:`plan_shards`).
        max_retries: Ray retries of a task whose worker dies or that raises OSError.
        progress: tqdm bar over input bytes of finished shards.
        restart: forget earlier shard outputs in out_dir.
        batch_bytes: window bytes per scorer batch inside a task.
        timeout_s: give up (TimeoutError) if no task finishes for this long; None = wait.

    Returns:
        the summary dict of ``scan`` (files, overall, sketch, bad_examples, throughput,
        changed_inputs, skipped_paths) plus ``"engine"``: {"name": "ray", "n_shards",
        "shards_run", "shards_resumed", "shard_bytes"}.

    Raises:
        ImportError: Ray is not installed (names the extra).
        ValueError: bad options, stdin among the paths, or out_dir holding another
            configuration.
    """
    cfg = _config(config, config_kw)
    if out_dir is None:
        raise ValueError("engine='ray' (--engine ray) needs out_dir (--out DIR) on storage "
                         "every node can write")
    if threads < 1:
        raise ValueError(f"threads={threads} (--threads) with engine='ray' must be >= 1: the "
                         "CPUs each task declares and its scorer uses")
    if max_retries < 0:
        raise ValueError(f"max_retries={max_retries} (--max-retries) must be >= 0")
    ray = require_ray()
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if "-" in paths:
        raise ValueError("'-' (stdin) cannot be scanned with --engine ray; pass files, or use "
                         "--engine local")
    units, skipped = [], []
    for p in paths:  # in the order given, as readers.discover
        found, skip = (discover_url(p, fmt=cfg.fmt) if is_url(p) else
                       readers.discover([p], fmt=cfg.fmt, stdin_format=cfg.stdin_format))
        units.extend(found)
        skipped.extend(skip)
    own = os.path.abspath(out_dir) + os.sep
    units = [u for u in units if is_url(u.path) or not os.path.abspath(u.path).startswith(own)]
    _check_windows(cfg, units)
    identity = _identity(cfg, per_window)
    _check_config(out_dir, identity, restart)
    shards = plan_shards(units, shard_bytes)

    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        return _run(ray, shards, cfg, out_dir, identity, skipped, threads=threads,
                    per_window=per_window, shard_bytes=shard_bytes, max_retries=max_retries,
                    progress=progress, batch_bytes=batch_bytes, timeout_s=timeout_s,
                    exit_marker=_exit_after_first_unit)
    finally:
        if started:
            ray.shutdown()


def _run(ray, shards, cfg, out_dir, identity, skipped, *, threads, per_window, shard_bytes,
         max_retries, progress, batch_bytes, timeout_s, exit_marker) -> dict:
    from tqdm import tqdm

    t0 = time.perf_counter()
    done: dict[str, dict] = {}
    for sh in shards:
        s = _complete_summary(out_dir, sh, identity, per_window)
        if s is not None:
            done[sh.shard_id] = s
    todo = [sh for sh in shards if sh.shard_id not in done]
    task = ray.remote(scan_shard).options(num_cpus=threads, max_retries=max_retries,
                                          retry_exceptions=[OSError])
    refs = {}
    for sh in todo:
        ref = task.remote(sh, cfg, os.path.abspath(out_dir), per_window=per_window,
                          threads=threads, batch_bytes=batch_bytes,
                          _exit_after_first_unit=exit_marker)
        refs[ref] = sh
    bar = tqdm(total=sum(sh.size_bytes for sh in todo) or None, unit="B", unit_scale=True,
               unit_divisor=1024, desc="scan (ray)", disable=not progress)
    try:
        for ref, s in as_completed(ray, list(refs), timeout_s, "scan"):
            sh = refs[ref]
            done[sh.shard_id] = s  # keyed by shard: a task run twice counts once
            bar.update(sh.size_bytes)
    finally:
        bar.close()
    elapsed = time.perf_counter() - t0
    ordered = [done[sh.shard_id] for sh in shards]
    if ordered:
        merged = scan_merge(ordered)
    else:
        merged = _build_summary([], identity, shard=(0, 1), n_units=0, n_skipped=0)
    run_ids = {sh.shard_id for sh in todo}
    window_bytes = sum(s["overall"]["window_raw_bytes"] for sid, s in done.items()
                       if sid in run_ids)
    input_bytes = sum(s["overall"]["input_bytes"] for sid, s in done.items() if sid in run_ids)
    changed = [c for s in ordered if s["shard"] in run_ids for c in s.get("changed_inputs", ())]
    merged["shard"] = "0/1"
    merged["n_skipped_paths"] = len(skipped)
    merged["throughput"] = {
        "elapsed_s": elapsed,
        "window_bytes_scored": window_bytes,
        "window_bytes_per_s": window_bytes / elapsed if elapsed > 0 else None,
        "input_bytes_per_s": input_bytes / elapsed if elapsed > 0 else None,
        "units_scanned_this_run": sum(s.get("units_scanned", 0) for s in ordered
                                      if s["shard"] in run_ids),
        "units_resumed": sum(len(s["files"]) - (s.get("units_scanned", 0)
                                                if s["shard"] in run_ids else 0)
                             for s in ordered),
        "units_rescanned_changed": len(changed),
    }
    merged["changed_inputs"] = changed
    merged["skipped_paths"] = skipped
    merged["engine"] = {"name": "ray", "n_shards": len(shards), "shards_run": len(todo),
                        "shards_resumed": len(shards) - len(todo), "shard_bytes": shard_bytes,
                        "run_shard_ids": sorted(run_ids)}
    write_json(os.path.join(out_dir, SUMMARY_NAME), merged)
    return merged
