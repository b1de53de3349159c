"""Non-overlapping fixed-size windows per document, gathered into scorer batches.

A document of n units (bytes or tokens) gives ``n // window`` full windows; the
tail of ``n % window`` units is counted (``n_tails``, ``tail_units``) and, unless
``keep_tail``, not scored. Windows never cross documents. Batches are bounded by
``batch_units`` so memory stays constant whatever the corpus size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Batch", "ByteWindower", "TokenWindower"]


@dataclass
class Batch:
    """Windows ready for the scorer.

    Attributes:
        kind: "bytes" or "tokens".
        data: uint8 (bytes) or int32/uint16/int64 (tokens) 1-D array of all windows.
        offsets: int64 (n_windows + 1,), window i is data[offsets[i]:offsets[i+1]].
        doc: int64 (n_windows,), document index (line - 1, row, or PCFG doc id).
        window: int64 (n_windows,), window index within its document.
    """

    kind: str
    data: np.ndarray
    offsets: np.ndarray
    doc: np.ndarray
    window: np.ndarray

    @property
    def n_windows(self) -> int:
        return int(self.doc.shape[0])


class _Runs:
    """Window bookkeeping as runs (doc, first_window, n_windows, window_size)."""

    def __init__(self) -> None:
        self.runs: list[tuple[int, int, int, int]] = []

    def add(self, doc: int, first: int, n: int, size: int) -> None:
        if n > 0:
            self.runs.append((doc, first, n, size))

    def arrays(self):
        if not self.runs:
            z = np.zeros(0, dtype=np.int64)
            return np.zeros(1, dtype=np.int64), z, z
        r = np.asarray(self.runs, dtype=np.int64)
        counts = r[:, 2]
        doc = np.repeat(r[:, 0], counts)
        starts = np.repeat(r[:, 1] - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        window = np.arange(doc.shape[0], dtype=np.int64) + starts
        sizes = np.repeat(r[:, 3], counts)
        offsets = np.zeros(doc.shape[0] + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        self.runs = []
        return offsets, doc, window


class _WindowerBase:
    def __init__(self, window: int, keep_tail: bool, batch_units: int):
        if window < 1:
            raise ValueError(f"window={window} must be >= 1")
        self.window = int(window)
        self.keep_tail = bool(keep_tail)
        self.batch_units = max(int(batch_units), self.window)
        self.n_docs = 0
        self.n_tails = 0
        self.tail_units = 0
        self._runs = _Runs()
        self._units = 0
        # Open multi-part document: its index, carried units, windows emitted so far.
        self._open_doc = -1
        self._open_windows = 0

    def _full_batches(self) -> tuple:
        """The batch collected so far once it holds batch_units (0 or 1 batches)."""
        return (self._emit(),) if self._units >= self.batch_units else ()

    def flush(self) -> tuple:
        """The last partial batch, if any (0 or 1 batches)."""
        return (self._emit(),) if self._units else ()

    def _close_doc(self, tail_len: int) -> None:
        self.n_docs += 1
        if tail_len:
            self.n_tails += 1
            self.tail_units += tail_len


class ByteWindower(_WindowerBase):
    """Windows of ``window`` bytes over raw document bytes (str is UTF-8 encoded)."""

    def __init__(self, window: int, *, keep_tail: bool = False, batch_units: int = 4 << 20):
        super().__init__(window, keep_tail, batch_units)
        self._buf = bytearray()
        self._carry = b""

    def feed(self, doc: int, data, last: bool) -> tuple:
        """Add a part of document ``doc``; returns the batches it completes (0 or 1).

        A plain function (not a generator) with a fast path for whole documents: it
        runs once per document, so its overhead is the scanner's per-document cost."""
        if type(data) is str:
            data = data.encode("utf-8")
        w = self.window
        if last and self._open_doc != doc and not self._carry:
            # Whole document in one part (JSON, Parquet, txt lines).
            n = len(data)
            n_full = n // w
            if n_full:
                self._buf += memoryview(data)[: n_full * w] if n_full * w != n else data
                self._runs.runs.append((doc, 0, n_full, w))
                self._units += n_full * w
            tail = n - n_full * w
            self.n_docs += 1
            if tail:
                self.n_tails += 1
                self.tail_units += tail
                if self.keep_tail:
                    self._buf += memoryview(data)[n_full * w:]
                    self._runs.runs.append((doc, n_full, 1, tail))
                    self._units += tail
            return self._full_batches()
        if self._carry or self._open_doc == doc:
            data = self._carry + data
        else:
            self._open_windows = 0
        self._open_doc = doc
        n_full = len(data) // w
        if n_full:
            self._buf += memoryview(data)[: n_full * w]
            self._runs.add(doc, self._open_windows, n_full, w)
            self._open_windows += n_full
            self._units += n_full * w
        tail = len(data) - n_full * w
        if last:
            if tail and self.keep_tail:
                self._buf += memoryview(data)[n_full * w:]
                self._runs.add(doc, self._open_windows, 1, tail)
                self._units += tail
            self._close_doc(tail)
            self._carry = b""
            self._open_doc = -1
        else:
            self._carry = bytes(data[n_full * w:])
        return self._full_batches()

    def _emit(self) -> Batch:
        offsets, doc, window = self._runs.arrays()
        # The array takes over the bytearray (no copy); a fresh one collects the next batch.
        data = np.frombuffer(self._buf, dtype=np.uint8)
        self._buf = bytearray()
        self._units = 0
        return Batch("bytes", data, offsets, doc, window)


class TokenWindower(_WindowerBase):
    """Windows of ``window`` tokens over token-id arrays."""

    def __init__(self, window: int, *, keep_tail: bool = False, batch_units: int = 1 << 20,
                 dtype=np.int32):
        super().__init__(window, keep_tail, batch_units)
        self._parts: list[np.ndarray] = []
        self._carry = np.zeros(0, dtype=dtype)
        self.dtype = np.dtype(dtype)

    def feed(self, doc: int, ids: np.ndarray, last: bool) -> tuple:
        """Add token ids (1-D) of document ``doc``; returns completed batches (0 or 1)."""
        w = self.window
        if self._carry.size or self._open_doc == doc:
            ids = np.concatenate((self._carry, ids))
        else:
            self._open_windows = 0
        self._open_doc = doc
        n_full = ids.shape[0] // w
        if n_full:
            self._parts.append(ids[: n_full * w])
            self._runs.add(doc, self._open_windows, n_full, w)
            self._open_windows += n_full
            self._units += n_full * w
        tail = ids.shape[0] - n_full * w
        if last:
            if tail and self.keep_tail:
                self._parts.append(ids[n_full * w:])
                self._runs.add(doc, self._open_windows, 1, tail)
                self._units += tail
            self._close_doc(tail)
            self._carry = ids[:0]
            self._open_doc = -1
        else:
            self._carry = ids[n_full * w:].copy()
        return self._full_batches()

    def feed_rows(self, first_doc: int, rows: np.ndarray) -> tuple:
        """Add whole documents of equal length, shape (n_docs, doc_tokens); returns
        completed batches (0 or 1)."""
        n_docs, doc_tokens = rows.shape
        w = self.window
        per_doc = doc_tokens // w
        tail = doc_tokens - per_doc * w
        if per_doc:
            body = rows[:, : per_doc * w] if tail else rows
            self._parts.append(np.ascontiguousarray(body).reshape(-1))
            for d in range(n_docs):
                self._runs.add(first_doc + d, 0, per_doc, w)
            self._units += n_docs * per_doc * w
        if tail:
            if self.keep_tail:
                for d in range(n_docs):
                    self._parts.append(rows[d, per_doc * w:])
                    self._runs.add(first_doc + d, per_doc, 1, tail)
                self._units += n_docs * tail
            self.n_tails += n_docs
            self.tail_units += n_docs * tail
        self.n_docs += n_docs
        return self._full_batches()

    def _emit(self) -> Batch:
        offsets, doc, window = self._runs.arrays()
        if len(self._parts) == 1:
            data = np.ascontiguousarray(self._parts[0])
        else:
            data = np.concatenate(self._parts)
        self._parts = []
        self._units = 0
        return Batch("tokens", data, offsets, doc, window)
