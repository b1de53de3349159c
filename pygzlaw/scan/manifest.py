"""Resumable scans: an append-only manifest of finished units, and atomic writes.

``<out>/manifest.jsonl``: the first line holds the scan configuration; each further
line is one finished unit (its counts, bad-input records and serialised sketch),
appended and fsync'd when the unit is done. A scan killed mid-unit therefore loses
only that unit; a torn last line (killed mid-append) is ignored on load. Rerunning
with the same configuration skips the units already listed, unless their input file
changed since (size, mtime or content fingerprint, recorded under "input": see
``pygzlaw.scan.input_fingerprint``); another configuration is refused (results would mix). Everything else under ``<out>`` is written to a
temporary file in the same directory and renamed.
"""
from __future__ import annotations

import json
import os

from pygzlaw.atomic import write_bytes

__all__ = ["ScanManifest", "MANIFEST_NAME"]

MANIFEST_NAME = "manifest.jsonl"
FORMAT = "pygzlaw.scan-manifest/1"


def check_config(path: str, old: dict, new: dict) -> None:
    """Refuse to resume from ``path``, which holds configuration ``old``, with ``new``,
    naming the keys that differ (one configuration per output directory)."""
    if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ValueError(f"{path} holds a scan with a different configuration "
                         f"(differs in: {', '.join(diff)}); use another --out, "
                         "the same options, or --restart")


class ScanManifest:
    """Finished units of one scan directory.

    Args:
        out_dir: the scan's output directory (created if missing).
        config: JSON-able scan configuration; must equal the stored one when resuming.
        restart: forget a previous manifest (it is replaced, not edited).
        provenance: how ratios are computed here (pygzlaw.provenance.gzip_provenance); a
            manifest written under another zlib or settings is refused, naming the field
            (manifests without one, from older pygzlaw, are not checked).
    """

    def __init__(self, out_dir: str, config: dict, *, restart: bool = False,
                 provenance: dict | None = None):
        self.out_dir = out_dir
        self.path = os.path.join(out_dir, MANIFEST_NAME)
        self.config = config
        self.provenance = provenance
        self.records: dict[str, dict] = {}
        self.n_torn = 0
        os.makedirs(out_dir, exist_ok=True)
        if os.path.exists(self.path) and not restart:
            self._load()
        else:
            head = {"format": FORMAT, "config": config}
            if provenance is not None:
                head["provenance"] = provenance
            write_bytes(self.path, (json.dumps(head) + "\n").encode())

    def _load(self) -> None:
        with open(self.path, "rb") as f:
            lines = f.read().split(b"\n")
        try:
            head = json.loads(lines[0])
        except ValueError:
            raise ValueError(f"{self.path} line 1: not a pygzlaw scan manifest; "
                             "use another --out or pass --restart") from None
        if head.get("format") != FORMAT:
            raise ValueError(f"{self.path}: format {head.get('format')!r} != {FORMAT!r}; "
                             "use another --out or pass --restart")
        check_config(self.path, head.get("config", {}), self.config)
        if self.provenance is not None and head.get("provenance") is not None:
            from pygzlaw.provenance import compare_provenance

            try:
                compare_provenance(head["provenance"], self.provenance, a_name=self.path,
                                   b_name="this machine")
            except ValueError as exc:
                raise ValueError(f"{exc}; resume where the scan started, use another --out, "
                                 "or --restart") from None
        for i, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                self.records[rec["unit"]] = rec
            except (ValueError, KeyError):
                self.n_torn += 1  # a unit killed mid-append: it is rescanned

    def done(self, key: str) -> bool:
        return key in self.records

    def append(self, record: dict) -> None:
        """Record a finished unit (one line, fsync'd)."""
        line = json.dumps(record, allow_nan=False) + "\n"
        with open(self.path, "ab") as f:
            # Start on a fresh line if a previous run was killed mid-append.
            if f.tell() > 0:
                with open(self.path, "rb") as r:
                    r.seek(-1, os.SEEK_END)
                    if r.read(1) != b"\n":
                        line = "\n" + line
            f.write(line.encode())
            f.flush()
            os.fsync(f.fileno())
        self.records[record["unit"]] = record
