"""Corpus scanner: gzip compressibility of fixed-size windows over whole corpora.

``scan(paths, out_dir=...)`` reads .txt / .jsonl / .json / .parquet files (each
optionally .gz or .zst), directories recursively, stdin ("-"), and PCFG token shard
directories written by ``pygzlaw generate``; cuts each document into
non-overlapping windows (bytes of raw text, or tokens from a ``tokenizers`` file or
the shards); scores them with the native exact scorer; and writes a JSON summary
(per file and overall: count, mean, median, std, quantiles, histogram, a mergeable
sketch) plus optional per-window Parquet. See ``pygzlaw scan --help``.

Pipeline: the calling thread reads, decompresses, parses and windows; one scoring
thread runs the native scorer (GIL released, ``threads`` native workers) on the
previous batch. At most two batches (4 MB of window bytes each by default) are in
flight, so memory does not grow with the corpus: scanning a generated JSON Lines
stream through stdin peaked at 63 MiB RSS for 0.375 GiB and for 3 GiB alike
(``bench/bench_scorer.py --memory-gb 3``).
"""
from __future__ import annotations

import hashlib
import os
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from pygzlaw.scan import readers
from pygzlaw.atomic import write_json
from pygzlaw.scan.manifest import ScanManifest
from pygzlaw.scan.windows import ByteWindower, TokenWindower

__all__ = ["ScanConfig", "scan", "scan_merge", "parse_shard", "select_shard",
           "SUMMARY_NAME", "UNIT_EXACT_LIMIT"]

SUMMARY_NAME = "summary.json"
SUMMARY_FORMAT = "pygzlaw.scan-summary/1"
# Exact quantiles per file up to 65,536 windows (64 MB of 1 KB windows); bigger files
# use the KLL sketch so the manifest stays small. Overall: exact up to 2^20 windows.
UNIT_EXACT_LIMIT = 1 << 16
OVERALL_EXACT_LIMIT = 1 << 20
MAX_BAD_EXAMPLES_PER_UNIT = 20
MAX_BAD_EXAMPLES = 1000
_TOKENIZE_GROUP_DOCS = 256


@dataclass(frozen=True)
class ScanConfig:
    """What a scan measures; two scans merge only if their configs are equal.

    Attributes:
        window_bytes: window size in bytes of raw text (byte mode).
        window_tokens: window size in tokens (tokenizer mode; PCFG shards default
            to one window per document, i.e. doc_tokens).
        tokenizer: path of a ``tokenizers`` JSON file; text is tokenized and scored
            as tokens (4-byte big-endian signed by default).
        token_bytes, byteorder: token serialization (the paper: 4, "big").
        keep_tail: also score the short last window of each document.
        field: JSON field holding the text ("a.b" for nested objects).
        column: Parquet column holding the text.
        txt_unit: "file" (a .txt file is one document) or "line" (one per line).
        fmt: force an input format for named files, e.g. "jsonl.zst"; None = by suffix.
        stdin_format: format of "-".
        mode: "exact" or "fast" (see pygzlaw.score.fast).
        level: zlib level of exact mode (9 = the paper's definition).
    """

    window_bytes: int = 1024
    window_tokens: int | None = None
    tokenizer: str | None = None
    token_bytes: int = 4
    byteorder: str = "big"
    keep_tail: bool = False
    field: str = "text"
    column: str = "text"
    txt_unit: str = "file"
    fmt: str | None = None
    stdin_format: str = "txt"
    mode: str = "exact"
    level: int = 9

    def __post_init__(self) -> None:
        if self.window_bytes < 1:
            raise ValueError(f"window_bytes={self.window_bytes} (--window-bytes) must be >= 1")
        if self.window_tokens is not None and self.window_tokens < 1:
            raise ValueError(f"window_tokens={self.window_tokens} (--window-tokens) must be >= 1")
        if self.txt_unit not in ("file", "line"):
            raise ValueError(f"txt_unit={self.txt_unit!r} (--txt-unit) must be 'file' or 'line'")
        if self.mode not in ("exact", "fast"):
            raise ValueError(f"mode={self.mode!r} (--mode) must be 'exact' or 'fast'")
        if self.tokenizer is not None and not os.path.isfile(self.tokenizer):
            from pygzlaw.textio import not_a_file

            raise FileNotFoundError(f"tokenizer={self.tokenizer} (--tokenizer): "
                                    f"{not_a_file(self.tokenizer, 'tokenizer')}")
        if self.fmt:
            readers.parse_format(self.fmt)
        readers.parse_format(self.stdin_format)

    def identity(self) -> dict:
        """The config as stored in manifests (tokenizer by content hash, not path)."""
        d = asdict(self)
        if self.tokenizer:
            with open(self.tokenizer, "rb") as f:
                d["tokenizer"] = "sha256:" + hashlib.sha256(f.read()).hexdigest()
        return d


def parse_shard(spec: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ValueError(f"--shard {spec!r} must look like i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {spec}: need 0 <= i < n")
    return i, n


def select_shard(units: list, shard: tuple[int, int]) -> list:
    """Units i, i+n, i+2n, ... of the discovery order (sorted paths), so n machines
    given the same PATH list scan disjoint parts that cover everything."""
    i, n = shard
    return [u for j, u in enumerate(units) if j % n == i]


def _unit_id(key: str) -> str:
    base = "".join(c if c.isalnum() or c in "-_." else "_" for c in os.path.basename(key))[-60:]
    return hashlib.sha1(key.encode()).hexdigest()[:12] + "-" + (base or "stdin")


class _UnitScan:
    """State of one unit in flight."""

    def __init__(self, unit, cfg: ScanConfig, tokenizer, batch_bytes: int):
        self.unit = unit
        self.bad = Counter()
        self.bad_examples: list[dict] = []
        from pygzlaw.score.stats import RatioSketch

        self.sketch = RatioSketch(exact_limit=UNIT_EXACT_LIMIT)
        self.tokenizer = tokenizer
        if unit.fmt == "pcfg":
            wt = cfg.window_tokens or unit.shard["doc_tokens"]
            self.windower = TokenWindower(wt, keep_tail=cfg.keep_tail,
                                          batch_units=batch_bytes // cfg.token_bytes,
                                          dtype=np.dtype(unit.shard["dtype"]))
        elif tokenizer is not None:
            self.windower = TokenWindower(cfg.window_tokens, keep_tail=cfg.keep_tail,
                                          batch_units=batch_bytes // cfg.token_bytes)
        else:
            self.windower = ByteWindower(cfg.window_bytes, keep_tail=cfg.keep_tail,
                                         batch_units=batch_bytes)
        self._pending_text: list[tuple[int, str, bool]] = []
        self._pending_chars = 0
        self.n_windows = 0
        self.window_raw_bytes = 0

    def record_bad(self, line: int, kind: str, message: str) -> None:
        self.bad[kind] += 1
        if len(self.bad_examples) < MAX_BAD_EXAMPLES_PER_UNIT:
            self.bad_examples.append({"file": self.unit.key, "line": int(line), "kind": kind,
                                      "message": message[:300]})

    def feed(self, ev) -> tuple | list:
        """One reader event -> the batches it completes (usually none)."""
        if ev[0] == readers.PART:
            if self.tokenizer is None:
                return self.windower.feed(ev[1], ev[2], ev[3])
            text = ev[2]
            if isinstance(text, bytes):
                text = text.decode("utf-8", errors="replace")  # validated by the reader
            elif not text.isascii() and readers.lone_surrogate(text, "") is not None:
                text.encode("utf-8")  # raises UnicodeEncodeError: _scan_unit records it
            self._pending_text.append((ev[1], text, ev[3]))
            self._pending_chars += len(text)
            if len(self._pending_text) >= _TOKENIZE_GROUP_DOCS or self._pending_chars >= 1 << 20:
                return self._tokenize_pending()
            return ()
        if ev[0] == readers.TOKENS:
            return self.windower.feed_rows(ev[1], ev[2])
        self.record_bad(ev[1], ev[2], ev[3])
        return ()

    def _tokenize_pending(self) -> list:
        if not self._pending_text:
            return []
        encs = self.tokenizer.encode_batch([t for _, t, _ in self._pending_text],
                                           add_special_tokens=False)
        items, self._pending_text, self._pending_chars = self._pending_text, [], 0
        out = []
        for (doc, _, last), enc in zip(items, encs):
            out.extend(self.windower.feed(doc, np.asarray(enc.ids, dtype=np.int32), last))
        return out

    def flush(self) -> list:
        out = self._tokenize_pending() if self.tokenizer is not None else []
        out.extend(self.windower.flush())
        return out


def _score_batch(batch, cfg: ScanConfig, threads: int):
    from pygzlaw.score import score_bytes, score_tokens

    if batch.kind == "bytes":
        return score_bytes(batch.data, batch.offsets, mode=cfg.mode, level=cfg.level,
                           threads=threads, empty="nan")
    return score_tokens(batch.data, batch.offsets, token_bytes=cfg.token_bytes,
                        byteorder=cfg.byteorder, mode=cfg.mode, level=cfg.level,
                        threads=threads, empty="nan")


class _WindowWriter:
    """Per-window Parquet of one unit: temp file, renamed when the unit is done."""

    def __init__(self, out_dir: str, unit_key: str):
        import pyarrow as pa

        d = os.path.join(out_dir, "windows")
        os.makedirs(d, exist_ok=True)
        self.rel = os.path.join("windows", _unit_id(unit_key) + ".parquet")
        self.path = os.path.join(out_dir, self.rel)
        self.tmp = os.path.join(d, "." + os.path.basename(self.path) + ".tmp")
        self.schema = pa.schema([("doc", pa.int64()), ("window", pa.int64()),
                                 ("raw_bytes", pa.int64()), ("compressed_bytes", pa.int64()),
                                 ("ratio", pa.float64())],
                                metadata={b"pygzlaw.unit": unit_key.encode()})
        self._writer = None

    def write(self, batch, scores) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = pq.ParquetWriter(self.tmp, self.schema)
        table = pa.Table.from_arrays(
            [pa.array(batch.doc), pa.array(batch.window), pa.array(scores.raw_bytes),
             pa.array(scores.compressed_bytes), pa.array(scores.ratio)], schema=self.schema)
        self._writer.write_table(table)

    def close(self) -> str:
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = pq.ParquetWriter(self.tmp, self.schema)
        self._writer.close()
        os.replace(self.tmp, self.path)
        return self.rel

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


def _config(config: ScanConfig | None, config_kw: dict) -> ScanConfig:
    """The ScanConfig of ``scan``/``scan_ray``: ``config=`` or its fields as keywords."""
    cfg = config if config is not None else ScanConfig(**config_kw)
    if config is not None and config_kw:
        raise ValueError(f"pass either config= or keyword fields, not both ({sorted(config_kw)})")
    return cfg


def _check_windows(cfg: ScanConfig, units: list) -> None:
    """Token windows need a tokenizer, except on PCFG shards (already token ids)."""
    if cfg.tokenizer:
        if cfg.window_tokens is None:
            raise ValueError("tokenizer= (--tokenizer) needs window_tokens= (--window-tokens N, the "
                             "window size in tokens)")
    elif cfg.window_tokens is not None and any(u.fmt != "pcfg" for u in units):
        raise ValueError("window_tokens= (--window-tokens) on text inputs needs tokenizer= "
                         "(--tokenizer FILE); for raw text use window_bytes= (--window-bytes)")


def _identity(cfg: ScanConfig, per_window: bool) -> dict:
    """What a manifest or summary must match to be reused: the config and per_window."""
    identity = cfg.identity()
    identity["per_window"] = bool(per_window)
    return identity


def scan(paths, *, out_dir: str | None = None, config: ScanConfig | None = None,
         threads: int = 2, shard: tuple[int, int] | str = (0, 1), per_window: bool = False,
         progress: bool = True, restart: bool = False, batch_bytes: int = 4 << 20,
         **config_kw) -> dict:
    """Scan a corpus and return its summary (also written to ``out_dir/summary.json``).

    Args:
        paths: files, directories, PCFG shard directories or "-" (stdin).
        out_dir: output directory (manifest for resuming, summary.json, windows/);
            None = no files, no resume.
        config: a ScanConfig; or pass its fields as keyword arguments.
        threads: native scorer threads (1 = serial, -1 = all cores).
        shard: (i, n) or "i/n": scan units i, i+n, ... of the sorted unit list.
        per_window: also write per-window scores as Parquet (needs out_dir).
        progress: show a tqdm bar (bytes/s and ETA of on-disk bytes).
        restart: ignore an existing manifest in out_dir. Without it, finished units are
            reused unless their file changed (size, mtime, content fingerprint): those are
            scanned again and listed in the summary's "changed_inputs".
        batch_bytes: window bytes per scorer batch (memory bound: ~3 batches).

    Returns:
        the summary dict: "overall" (counts, bad_input counts, statistics), "files"
        (one entry per unit), "bad_examples", "sketch" (mergeable), "throughput",
        "changed_inputs" ([{"unit", "reason"}] rescanned because their file changed).
    """
    cfg = _config(config, config_kw)
    if per_window and out_dir is None:
        raise ValueError("per_window=True (--per-window) needs out_dir (--out DIR)")
    shard = parse_shard(shard) if isinstance(shard, str) else tuple(shard)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    units, skipped = readers.discover([os.fspath(p) for p in paths], fmt=cfg.fmt,
                                      stdin_format=cfg.stdin_format)
    if out_dir is not None:
        # Never read our own outputs when --out lies inside a scanned directory.
        own = os.path.abspath(out_dir) + os.sep
        units = [u for u in units if u.path == "-" or not os.path.abspath(u.path).startswith(own)]
    units = select_shard(units, shard)
    tokenizer = None
    if cfg.tokenizer:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(cfg.tokenizer)
    _check_windows(cfg, units)
    identity = _identity(cfg, per_window)
    manifest = (ScanManifest(out_dir, identity, restart=restart, provenance=_provenance(identity))
                if out_dir else None)

    from tqdm import tqdm

    # stdin is always read again: a later stream under the same name may differ. A finished
    # file whose size, modification time or content fingerprint changed is scanned again.
    changed: list[dict] = []
    todo = []
    for u in units:
        if manifest is None or u.key == "-" or not manifest.done(u.key):
            todo.append(u)
            continue
        why = _changed(manifest.records[u.key].get("input"), input_fingerprint(u.path))
        if why:
            changed.append({"unit": u.key, "reason": why})
            todo.append(u)
    total = sum(u.size_bytes for u in todo)
    bar = tqdm(total=total or None, unit="B", unit_scale=True, unit_divisor=1024,
               desc="scan", disable=not progress, smoothing=0.05, mininterval=0.5)
    records: dict[str, dict] = dict(manifest.records) if manifest else {}
    t0 = time.perf_counter()
    run_window_bytes = 0
    run_disk_bytes = 0
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pygzlaw-score")
    try:
        for unit in todo:
            # Taken before reading: a file that changes while it is scanned differs next time.
            fingerprint = input_fingerprint(unit.path) if manifest and unit.path != "-" else None
            rec, wb, db = _scan_unit(unit, cfg, tokenizer, threads, batch_bytes, pool, bar,
                                     out_dir if per_window else None)
            rec["input"] = fingerprint
            run_window_bytes += wb
            run_disk_bytes += db
            if manifest:
                manifest.append(rec)
            records[unit.key] = rec
    finally:
        pool.shutdown(wait=True)
        bar.close()
    elapsed = time.perf_counter() - t0
    summary = _build_summary([records[u.key] for u in units if u.key in records], identity,
                             shard=shard, n_units=len(units), n_skipped=len(skipped))
    summary["throughput"] = {
        "elapsed_s": elapsed,
        "window_bytes_scored": run_window_bytes,
        "window_bytes_per_s": run_window_bytes / elapsed if elapsed > 0 else None,
        "input_bytes_per_s": run_disk_bytes / elapsed if elapsed > 0 else None,
        "units_scanned_this_run": len(todo),
        "units_resumed": len(units) - len(todo),
        "units_rescanned_changed": len(changed),
    }
    summary["changed_inputs"] = changed[:MAX_BAD_EXAMPLES]
    summary["skipped_paths"] = skipped[:MAX_BAD_EXAMPLES]
    if out_dir:
        write_json(os.path.join(out_dir, SUMMARY_NAME), summary)
    return summary


# Bytes hashed at each end of a file for its content fingerprint (cheap for any size).
FINGERPRINT_BYTES = 1 << 16


def input_fingerprint(path: str) -> dict | None:
    """Identity of an input file for resuming: size, mtime (ns) and a content fingerprint.

    The fingerprint is the sha256 of the size and of the first and last 64 KiB, so a file
    rewritten with the same size and a preserved mtime (``cp -p``, ``rsync -t``) is still
    noticed when its ends differ; reading whole files again on every resume would cost as
    much as scanning them. None when the file cannot be read (the scan reports that).
    """
    try:
        st = os.stat(path)
        h = hashlib.sha256(str(st.st_size).encode())
        with open(path, "rb") as f:
            h.update(f.read(FINGERPRINT_BYTES))
            if st.st_size > FINGERPRINT_BYTES:
                f.seek(max(FINGERPRINT_BYTES, st.st_size - FINGERPRINT_BYTES))
                h.update(f.read(FINGERPRINT_BYTES))
    except OSError:
        return None
    return {"size_bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256_ends": h.hexdigest()}


def _changed(old: dict | None, new: dict | None) -> str:
    """Why a finished unit must be scanned again ("" = it has not changed)."""
    if old is None:
        return "no fingerprint recorded (scanned by an older pygzlaw)"
    if new is None:
        return "the file can no longer be read"
    if old["size_bytes"] != new["size_bytes"]:
        return f"size {old['size_bytes']} -> {new['size_bytes']} bytes"
    if old["mtime_ns"] != new["mtime_ns"]:
        return "modification time changed"
    if old["sha256_ends"] != new["sha256_ends"]:
        return "content changed (same size and modification time)"
    return ""


def _scan_unit(unit, cfg, tokenizer, threads, batch_bytes, pool, bar, window_dir):
    t0 = time.perf_counter()
    st = _UnitScan(unit, cfg, tokenizer, batch_bytes)
    counter = readers.ByteCounter()
    writer = _WindowWriter(window_dir, unit.key) if window_dir else None
    pending: deque = deque()
    seen = 0

    def drain(keep: int) -> None:
        while len(pending) > keep:
            fut, batch = pending.popleft()
            scores = fut.result()
            st.sketch.update(scores.ratio)
            st.n_windows += batch.n_windows
            st.window_raw_bytes += int(scores.raw_bytes.sum())
            if writer is not None:
                writer.write(batch, scores)

    try:
        events = readers.read_unit(unit, counter, field_name=cfg.field, column=cfg.column,
                                   txt_unit=cfg.txt_unit)
        # Byte windows: PART events go straight to the windower (the per-document path).
        wfeed = st.windower.feed if tokenizer is None and unit.fmt != "pcfg" else None
        part = readers.PART
        for ev in events:
            try:
                bs = wfeed(ev[1], ev[2], ev[3]) if wfeed is not None and ev[0] == part \
                    else st.feed(ev)
            except UnicodeEncodeError:
                # A lone surrogate from a JSON escape: bad input, not the end of the scan.
                # (The windower encodes before it changes any state.)
                st.record_bad(ev[1] + 1, "undecodable", readers.lone_surrogate(ev[2], cfg.field)
                              or "text is not encodable as UTF-8")
                continue
            for batch in bs:
                pending.append((pool.submit(_score_batch, batch, cfg, threads), batch))
                drain(1)  # keep one batch scoring while the next is read
                if counter.n_bytes != seen:
                    bar.update(counter.n_bytes - seen)
                    seen = counter.n_bytes
        for batch in st.flush():
            pending.append((pool.submit(_score_batch, batch, cfg, threads), batch))
            drain(1)
        drain(0)
        parquet = writer.close() if writer is not None else None
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if counter.n_bytes != seen:
        bar.update(counter.n_bytes - seen)
    w = st.windower
    rec = {
        "unit": unit.key, "fmt": unit.fmt, "compression": unit.compression,
        "input_bytes": counter.n_bytes, "n_docs": w.n_docs, "n_windows": st.n_windows,
        "n_tails": w.n_tails, "tail_units": w.tail_units,
        "window_raw_bytes": st.window_raw_bytes,
        "bad_input": dict(sorted(st.bad.items())), "bad_examples": st.bad_examples,
        "sketch": st.sketch.to_dict(), "parquet": parquet,
        "elapsed_s": time.perf_counter() - t0,
    }
    return rec, st.window_raw_bytes, counter.n_bytes


_COUNT_KEYS = ("input_bytes", "n_docs", "n_windows", "n_tails", "tail_units", "window_raw_bytes")


def _build_summary(records: list[dict], identity: dict, *, shard, n_units: int,
                   n_skipped: int) -> dict:
    from pygzlaw.score.stats import RatioSketch

    overall = RatioSketch(exact_limit=OVERALL_EXACT_LIMIT)
    totals = Counter()
    bad = Counter()
    files = []
    examples: list[dict] = []
    for rec in records:
        sk = RatioSketch.from_dict(rec["sketch"])
        overall.merge(sk)
        for k in _COUNT_KEYS:
            totals[k] += rec[k]
        bad.update(rec["bad_input"])
        if len(examples) < MAX_BAD_EXAMPLES:
            examples.extend(rec["bad_examples"][: MAX_BAD_EXAMPLES - len(examples)])
        files.append({**{k: rec[k] for k in ("unit", "fmt", "compression", "parquet")},
                      **{k: rec[k] for k in _COUNT_KEYS}, "bad_input": rec["bad_input"],
                      "stats": sk.summary()})
    return {
        "format": SUMMARY_FORMAT,
        "config": identity,
        "provenance": _provenance(identity),
        "shard": f"{shard[0]}/{shard[1]}",
        "n_units": n_units,
        "n_units_done": len(records),
        "n_skipped_paths": n_skipped,
        "overall": {**{k: int(totals[k]) for k in _COUNT_KEYS},
                    "bad_input": dict(sorted(bad.items())),
                    "bad_input_total": int(sum(bad.values())),
                    "stats": overall.summary()},
        "files": files,
        "bad_examples": examples,
        "sketch": overall.to_dict(),
    }


def _provenance(identity: dict) -> dict:
    """How this machine computes the summary's ratios (pygzlaw.provenance): text windows
    are their UTF-8 bytes, token windows ids of token_bytes bytes in byteorder."""
    from pygzlaw.provenance import gzip_provenance

    return gzip_provenance(level=identity.get("level", 9), scorer=identity.get("mode", "exact"),
                           serialization="utf-8 text; tokens as signed ints",
                           token_bytes=identity.get("token_bytes", 4),
                           byteorder=identity.get("byteorder", "big"))


def scan_merge(summaries: list, *, out_path: str | None = None) -> dict:
    """Combine scan summaries (e.g. one per ``--shard i/n``) into one.

    Args:
        summaries: summary dicts, summary.json paths, or scan output directories.
        out_path: write the merged summary there (atomically) if given.

    Returns:
        a summary dict of the same format; its statistics come from the merged
        sketch (exact if the total stays within the exact limit, else KLL).

    Raises:
        ValueError: configurations differ, the ratios were computed differently (another
            zlib flavour or version, level, ...: the message names the field; see
            pygzlaw.provenance), or one unit appears in two summaries.
    """
    import json

    from pygzlaw.score.stats import RatioSketch

    docs = []
    for s in summaries:
        if isinstance(s, dict):
            docs.append((s, "<dict>"))
            continue
        p = os.fspath(s)
        if os.path.isdir(p):
            p = os.path.join(p, SUMMARY_NAME)
        with open(p, "rb") as f:
            d = json.load(f)
        if d.get("format") != SUMMARY_FORMAT:
            raise ValueError(f"{p}: not a pygzlaw scan summary (format={d.get('format')!r})")
        docs.append((d, p))
    if not docs:
        raise ValueError("scan_merge needs at least one summary")
    base, base_src = docs[0]
    overall = RatioSketch(exact_limit=OVERALL_EXACT_LIMIT)
    totals = Counter()
    bad = Counter()
    files, examples, seen = [], [], {}
    n_units = n_done = n_skipped = 0
    from pygzlaw.provenance import compare_provenance

    for d, src in docs:
        compare_provenance(base.get("provenance"), d.get("provenance"), a_name=base_src,
                           b_name=src)
        if d["config"] != base["config"]:
            diff = sorted(k for k in set(d["config"]) | set(base["config"])
                          if d["config"].get(k) != base["config"].get(k))
            raise ValueError(f"{src}: configuration differs from {base_src} in "
                             f"{', '.join(diff)}; only scans with equal options merge")
        for f in d["files"]:
            if f["unit"] in seen:
                raise ValueError(f"unit {f['unit']} appears in both {seen[f['unit']]} and {src}")
            seen[f["unit"]] = src
        overall.merge(RatioSketch.from_dict(d["sketch"]))
        for k in _COUNT_KEYS:
            totals[k] += d["overall"][k]
        bad.update(d["overall"]["bad_input"])
        files.extend(d["files"])
        examples.extend(d["bad_examples"][: max(0, MAX_BAD_EXAMPLES - len(examples))])
        n_units += d["n_units"]
        n_done += d["n_units_done"]
        n_skipped += d["n_skipped_paths"]
    merged = {
        "format": SUMMARY_FORMAT, "config": base["config"],
        "provenance": base.get("provenance"),
        "shard": "merged:" + ",".join(d["shard"] for d, _ in docs),
        "n_units": n_units, "n_units_done": n_done, "n_skipped_paths": n_skipped,
        "overall": {**{k: int(totals[k]) for k in _COUNT_KEYS},
                    "bad_input": dict(sorted(bad.items())),
                    "bad_input_total": int(sum(bad.values())), "stats": overall.summary()},
        "files": files, "bad_examples": examples, "sketch": overall.to_dict(),
    }
    if out_path:
        write_json(out_path, merged)
    return merged
