"""The trainer's data path: documents → host buffers (filled ahead) → device.

Document d is a function of (grammar, data_seed, d) only (the native sampler's
guarantee), or row d of a ``pygzlaw generate`` dataset. The trainer reads fixed
document ranges:

- training step s, micro-batch m: documents
  [s·B + m·b, s·B + (m+1)·b), B = b·grad_accum, b = batch_docs; rank r of W takes the
  contiguous slice [r·b/W, (r+1)·b/W) of it, so the data a run sees does not depend on W;
- validation: documents [2**40, 2**40 + val_docs) of the same stream (for a dataset
  directory: the manifest's grammar and seed), disjoint from every training range.

A background thread fills a ring of host buffers (pinned on CUDA, ordinary memory
on CPU, where pinning raises) ahead of the step; the step copies with
``non_blocking=True`` and the time it waits for a buffer is measured.
"""
from __future__ import annotations

import functools
import json
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from pygzlaw.train.config import VAL_FIRST_DOC, TrainConfig

__all__ = ["DocumentSource", "SamplerSource", "ShardSource", "load_grammar", "make_sources",
           "measure_h", "Prefetcher", "VAL_FIRST_DOC"]

_GRAMMAR_FILE_EXTS = (".json", ".txt", ".cfg", ".pcfg")


def load_grammar(name: str, grammar_seed: int = 0):
    """Grammar from a preset name (random_pcfg(name, grammar_seed)) or a grammar file.

    Raises:
        ValueError: unknown preset (listing the valid ones) or a missing file; names ``grammar``.
    """
    from pygzlaw.grammar import PRESETS, load, random_pcfg

    if name in PRESETS:
        return random_pcfg(name, grammar_seed)
    if os.path.isfile(name):
        return load(name)
    if name.lower().endswith(_GRAMMAR_FILE_EXTS) or os.sep in name or os.path.isdir(name):
        from pygzlaw.textio import not_a_file

        raise ValueError(f"grammar={name!r}: {not_a_file(name, 'grammar')}")
    raise ValueError(f"grammar={name!r} is not a preset or a file; presets: {', '.join(PRESETS)}")


# Sampler construction compiles the grammar's tables (up to ~1 s for main-6): study runs
# reuse one per (grammar, seed, separator, seq_len). Keyed by the grammar's JSON for files.
@functools.lru_cache(maxsize=16)
def _cached_sampler(key: tuple, seq_len: int, data_seed: int, separator: str):
    kind, a, b = key
    if kind == "preset":
        grammar = load_grammar(a, b)
    else:
        from pygzlaw.grammar import from_json

        grammar = from_json(a, source=b)
    from pygzlaw.sampler import Sampler

    # int32 host buffers: torch copies int32 → int64 on every device (uint16 support is partial)
    return Sampler(grammar, seq_len, seed=data_seed, separator=separator, dtype=np.int32)


def _grammar_key(name: str, grammar_seed: int) -> tuple:
    from pygzlaw.grammar import PRESETS, to_json

    if name in PRESETS:
        return ("preset", name, int(grammar_seed))
    return ("json", to_json(load_grammar(name, grammar_seed), indent=None), name)


class DocumentSource:
    """Documents of ``seq_len`` token ids addressed by global index."""

    vocab_size: int
    seq_len: int
    n_docs: int | None  # None: unbounded

    def fill(self, out: np.ndarray, first_doc: int) -> None:
        """Write documents first_doc .. first_doc + len(out) - 1 into out (int32, (n, seq_len))."""
        raise NotImplementedError


class SamplerSource(DocumentSource):
    """Documents sampled on the fly by the native sampler (GIL released while filling)."""

    def __init__(self, sampler) -> None:
        self.sampler = sampler
        self.vocab_size = int(sampler.vocab_size)
        self.seq_len = int(sampler.doc_tokens)
        self.n_docs = None

    def fill(self, out: np.ndarray, first_doc: int) -> None:
        self.sampler.fill(out, first_doc)


class ShardSource(DocumentSource):
    """Rows of a ``pygzlaw generate`` dataset, memory-mapped shard by shard.

    Args:
        data_dir: directory with manifest.json (format "pygzlaw-tokens", complete) and shards.

    Raises:
        ValueError: missing or incomplete manifest, or a shard whose size does not match it.
    """

    def __init__(self, data_dir: str) -> None:
        path = os.path.join(data_dir, "manifest.json")
        if not os.path.isfile(path):
            raise ValueError(f"data_dir={data_dir!r} has no manifest.json; create it with "
                             "pygzlaw generate --out DIR")
        try:
            with open(path, encoding="utf-8") as f:
                self.manifest = m = json.load(f)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: unreadable manifest ({exc})") from None
        if m.get("format") != "pygzlaw-tokens":
            raise ValueError(f"{path}: not a pygzlaw token manifest (format={m.get('format')!r})")
        if not m.get("complete"):
            raise ValueError(f"{path}: dataset is incomplete; rerun its pygzlaw generate command "
                             "to finish it")
        self.data_dir = data_dir
        self.vocab_size = int(m["vocab_size"])
        self.seq_len = int(m["doc_tokens"])
        self.n_docs = int(m["n_docs"])
        self._starts = np.array([s["first_doc"] for s in m["shards"]], dtype=np.int64)
        self._shards = []
        from pygzlaw.sampler.formats import read_shard

        for s in m["shards"]:
            # any generate --format: npy and bin are memory-mapped, parquet and mds read whole
            arr = read_shard(m.get("shard_format", "npy"), data_dir, s, self.seq_len, m["dtype"])
            if arr.shape != (s["n_docs"], self.seq_len):
                raise ValueError(f"{data_dir}/{s['file']}: shape {arr.shape} does not match the "
                                 f"manifest ({s['n_docs']}, {self.seq_len})")
            self._shards.append(arr)

    def fill(self, out: np.ndarray, first_doc: int) -> None:
        n = len(out)
        if first_doc + n > self.n_docs:
            raise ValueError(f"documents [{first_doc}, {first_doc + n}) run past the dataset's "
                             f"{self.n_docs} documents in {self.data_dir}; lower n_tokens or "
                             "generate more tokens")
        done = 0
        i = int(np.searchsorted(self._starts, first_doc, side="right")) - 1
        while done < n:
            shard = self._shards[i]
            lo = first_doc + done - int(self._starts[i])
            take = min(n - done, shard.shape[0] - lo)
            out[done:done + take] = shard[lo:lo + take]
            done += take
            i += 1

    def grammar(self):
        from pygzlaw.grammar import grammar_from_dict

        return grammar_from_dict(self.manifest["grammar"], source=f"{self.data_dir}/manifest.json")


@dataclass
class Sources:
    """Training and validation document sources of one run, with their vocabulary."""

    train: DocumentSource
    val: DocumentSource
    vocab_size: int
    grammar_label: str
    grammar_seed: int | None
    h_key: tuple | None  # cache key for H


def make_sources(config: TrainConfig) -> Sources:
    """Training/validation sources for a config (sampler, or dataset directory + sampler).

    Raises:
        ValueError: unknown grammar, or a dataset whose doc_tokens differs from seq_len.
    """
    if config.data_dir is not None:
        shards = ShardSource(config.data_dir)
        if shards.seq_len != config.seq_len:
            raise ValueError(f"seq_len={config.seq_len} but {config.data_dir} holds "
                             f"{shards.seq_len}-token documents; pass --seq-len {shards.seq_len}")
        m = shards.manifest
        if shards.n_docs < config.n_steps * config.global_batch_docs:
            raise ValueError(
                f"n_tokens={config.n_tokens} needs {config.n_steps * config.global_batch_docs} "
                f"documents but {config.data_dir} holds {shards.n_docs}; lower n_tokens or "
                "generate more tokens")
        from pygzlaw.grammar import to_json

        gkey = ("json", to_json(shards.grammar(), indent=None), f"{config.data_dir}/manifest.json")
        val = SamplerSource(_cached_sampler(gkey, config.seq_len, int(m["seed"]),
                                            m.get("separator", "reserve")))
        vocab = max(shards.vocab_size, val.vocab_size)
        label = m.get("preset") or os.path.basename(os.path.normpath(config.data_dir))
        return Sources(shards, val, vocab, label, m.get("grammar_seed"),
                       (gkey, config.seq_len, int(m["seed"]), m.get("separator", "reserve")))
    gkey = _grammar_key(config.grammar, config.grammar_seed)
    src = SamplerSource(_cached_sampler(gkey, config.seq_len, config.data_seed, config.separator))
    return Sources(src, src, src.vocab_size, config.grammar, config.grammar_seed,
                   (gkey, config.seq_len, config.data_seed, config.separator))


_H_CACHE: dict = {}


def measure_h(sources: Sources, n_docs: int) -> float | None:
    """H: median gzip ratio of ``n_docs`` validation-range documents (None when n_docs = 0).

    Each document is serialised as 4-byte big-endian int32 ids and gzip-compressed at
    level 9 by pygzlaw's exact native scorer, as ``pygzlaw generate`` does (Pandey 2024,
    section 3: median over 1000 documents). Cached per (grammar, seq_len, seed, n_docs).
    """
    if n_docs <= 0:
        return None
    key = (sources.h_key, n_docs)
    if key not in _H_CACHE:
        from pygzlaw.sampler.cli import gzip_ratio_sample

        rows = np.empty((n_docs, sources.val.seq_len), dtype=np.int32)
        sources.val.fill(rows, VAL_FIRST_DOC)
        _H_CACHE[key] = float(np.median(gzip_ratio_sample(rows)))
    return _H_CACHE[key]


def rank_slice(batch_docs: int, rank: int, world_size: int) -> tuple[int, int]:
    """(offset, n) of rank's contiguous share of a micro-batch of batch_docs documents."""
    local = batch_docs // world_size
    return rank * local, local


class Prefetcher:
    """Fill each step's host buffer in a background thread, ``depth`` steps ahead.

    Step s's buffer holds this rank's documents of its grad_accum micro-batches, shape
    (grad_accum, local_docs, seq_len) int32. A slot is refilled only after ``release``
    (called once the step's device copy has completed), so an in-flight asynchronous
    copy never sees its source overwritten.

    Args:
        source: DocumentSource.
        first_step, n_steps: steps [first_step, n_steps) are produced in order.
        batch_docs, grad_accum, rank, world_size: the split described in the module doc.
        pin_memory: page-locked torch buffers (CUDA only).
        depth: buffers in the ring (>= 2).
    """

    def __init__(self, source: DocumentSource, *, first_step: int, n_steps: int, batch_docs: int,
                 grad_accum: int, rank: int = 0, world_size: int = 1, pin_memory: bool = False,
                 depth: int = 3) -> None:
        import torch

        self.source = source
        self.first_step, self.n_steps = first_step, n_steps
        self.batch_docs, self.grad_accum = batch_docs, grad_accum
        self.offset, self.local_docs = rank_slice(batch_docs, rank, world_size)
        shape = (grad_accum, self.local_docs, source.seq_len)
        self._bufs = [torch.empty(shape, dtype=torch.int32, pin_memory=pin_memory)
                      for _ in range(depth)]
        self._np = [b.numpy() for b in self._bufs]
        self._free = threading.Semaphore(depth)
        self._ready: list = []            # (step, slot) in order
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._stop = False
        self.wait_s = 0.0                 # time get() spent blocked
        self._thread = threading.Thread(target=self._run, name="pygzlaw-prefetch", daemon=True)
        self._thread.start()

    def docs_of_step(self, step: int, micro: int) -> int:
        """Global index of this rank's first document in (step, micro-batch)."""
        return step * self.batch_docs * self.grad_accum + micro * self.batch_docs + self.offset

    def _run(self) -> None:
        depth = len(self._bufs)
        try:
            for i, step in enumerate(range(self.first_step, self.n_steps)):
                while not self._free.acquire(timeout=0.1):
                    if self._stop:
                        return
                if self._stop:
                    return
                slot = i % depth
                for m in range(self.grad_accum):
                    self.source.fill(self._np[slot][m], self.docs_of_step(step, m))
                with self._cond:
                    self._ready.append((step, slot))
                    self._cond.notify_all()
        except BaseException as exc:  # handed to the consumer by get()
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def get(self, step: int):
        """Host tensor (grad_accum, local_docs, seq_len) int32 of ``step``, and its slot."""
        t0 = time.perf_counter()
        with self._cond:
            while not self._ready and self._error is None:
                self._cond.wait(timeout=1.0)
            if not self._ready and self._error is not None:
                raise self._error
            s, slot = self._ready.pop(0)
        self.wait_s += time.perf_counter() - t0
        if s != step:  # internal invariant: steps are consumed in order
            raise RuntimeError(f"prefetcher produced step {s}, expected {step}")
        return self._bufs[slot], slot

    def release(self, slot: int) -> None:
        """The slot's contents have been copied; it may be refilled."""
        self._free.release()

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=10)
