"""Native PCFG sampling into caller-owned buffers.

Document d (a row of ``doc_tokens`` token ids) is a function of
(grammar, seed, d) only: any thread count and any split of a document range
into calls gives the same bytes, so rank r of a data-parallel job can fill
exactly its own range each step.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np

from pygzlaw.grammar import Grammar
from pygzlaw.sampler.compile import SEPARATORS, CompiledTables, compile_grammar

try:
    from pygzlaw.sampler import _native
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "pygzlaw's native sampler is not built (pygzlaw/sampler/_native*.so missing); "
        "reinstall with a C++17 compiler: pip install -e ."
    ) from exc

__all__ = ["Sampler", "SampleStats", "sample_sentences", "compile_grammar", "SEPARATORS",
           "STREAM_VERSION"]

# Which random numbers give which documents. Bumped whenever that mapping
# changes (the distribution never does), so a dataset is never resumed with
# shards from two mappings. 2: derivation blocks and the document stream table.
STREAM_VERSION = 2
DEFAULT_MAX_DEPTH = 1000  # ≈ the research code's limit: Python's 1000-frame recursion limit
DEFAULT_MAX_SENTENCE_TOKENS = 1 << 20
MAX_DEPTH_LIMIT = 1 << 22  # stack frames are 16 bytes: 64 MiB per thread at most
# Consecutive rejections after which a document is declared impossible.
MAX_CONSECUTIVE_REJECTIONS = 1 << 20


@dataclass
class SampleStats:
    """Counters of one or more sampling calls (they add up with ``+``).

    Attributes:
        n_docs: documents produced.
        n_tokens: tokens written (n_docs * doc_tokens for documents).
        n_sentences: sentences begun in documents, the cut last one included.
        n_rejected_depth: attempts discarded because nesting exceeded max_depth.
        n_rejected_length: attempts discarded because they exceeded max_sentence_tokens.
        n_tokens_sampled: terminals drawn, written or not (rejected and cut-off
            tokens included): the sampler's actual work.
    """

    n_docs: int = 0
    n_tokens: int = 0
    n_sentences: int = 0
    n_rejected_depth: int = 0
    n_rejected_length: int = 0
    n_tokens_sampled: int = 0

    @property
    def n_rejected(self) -> int:
        return self.n_rejected_depth + self.n_rejected_length

    @property
    def rejection_rate(self) -> float:
        """Rejected attempts / all attempts (0 when nothing was sampled)."""
        attempts = self.n_sentences + self.n_rejected
        return self.n_rejected / attempts if attempts else 0.0

    def __add__(self, other: "SampleStats") -> "SampleStats":
        return SampleStats(**{k: getattr(self, k) + getattr(other, k) for k in asdict(self)})

    def to_dict(self) -> dict:
        return {**asdict(self), "rejection_rate": self.rejection_rate}


def _resolve_threads(threads: int) -> int:
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise TypeError(f"threads={threads!r} must be an int (1 = serial, -1 = all cores)")
    if threads == -1:  # the cores this process may run on (cgroup/affinity aware)
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if threads < 1:
        raise ValueError(f"threads={threads} must be >= 1, or -1 for all cores")
    return int(threads)


def _check_guards(max_depth: int, max_sentence_tokens: int) -> None:
    for name, value in (("max_depth", max_depth), ("max_sentence_tokens", max_sentence_tokens)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name}={value!r} must be an int")
    if not 1 <= max_depth <= MAX_DEPTH_LIMIT:
        raise ValueError(f"max_depth={max_depth} must be in [1, {MAX_DEPTH_LIMIT}]")
    if max_sentence_tokens < 1:
        raise ValueError(f"max_sentence_tokens={max_sentence_tokens} must be >= 1")


def _native_grammar(t: CompiledTables):
    b = t.blocks
    # uint16 copy of the runs for uint16 output (ids beyond 65535 only ever go
    # to int32 buffers: fill() refuses uint16 for such vocabularies)
    tokens_u16 = b.tokens.astype(np.uint16) if t.vocab_size <= 1 << 16 else np.zeros(
        len(b.tokens), dtype=np.uint16)
    return _native.NativeGrammar(b, b.tokens, tokens_u16)


class Sampler:
    """Fixed-length documents of token ids sampled from a PCFG.

    Documents are sentences joined by the separator token 0 (between sentences
    only) and cut at exactly ``doc_tokens`` tokens: the sentence that overflows
    is truncated (it is still sampled to its end so the guards apply to it),
    and a document may end on the separator when a sentence ends one token
    before the boundary. (The research code's documents hold doc_tokens - 1
    tokens when they end on a complete sentence; pygzlaw always fills.)

    Args:
        grammar: the PCFG.
        doc_tokens: tokens per document (the context length; 256 in the paper).
        seed: 64-bit seed; document d uses the stream (seed, d).
        separator: "reserve" (default: 0 is only the separator, terminal t is
            token t + 1) or "research" (terminal t is token t; 0 doubles as the
            separator, as in the paper's code).
        max_depth: deepest nonterminal nesting a sentence may reach (start = 1);
            deeper attempts are discarded and resampled. Default 1000 ≈ the
            research code's Python recursion limit.
        max_sentence_tokens: longer attempts are discarded and resampled.
        threads: worker threads, 1 = serial, -1 = all cores; never changes output.
        dtype: output dtype, np.uint16 or np.int32; default uint16 when the
            vocabulary fits (<= 65536 ids), else int32.
    """

    def __init__(self, grammar: Grammar, doc_tokens: int = 256, *, seed: int,
                 separator: str = "reserve", max_depth: int = DEFAULT_MAX_DEPTH,
                 max_sentence_tokens: int = DEFAULT_MAX_SENTENCE_TOKENS, threads: int = 1,
                 dtype=None) -> None:
        from pygzlaw.grammar.analysis import warn_if_supercritical

        if not isinstance(grammar, Grammar):
            raise TypeError(f"grammar must be a pygzlaw Grammar, got {type(grammar).__name__}")
        if isinstance(doc_tokens, bool) or not isinstance(doc_tokens, (int, np.integer)) or doc_tokens < 1:
            raise ValueError(f"doc_tokens={doc_tokens!r} must be an int >= 1")
        _check_guards(max_depth, max_sentence_tokens)
        self.grammar = grammar
        self.doc_tokens = int(doc_tokens)
        self.seed = int(seed) & ((1 << 64) - 1)
        self.separator = separator
        self.max_depth = int(max_depth)
        self.max_sentence_tokens = int(max_sentence_tokens)
        self.threads = _resolve_threads(threads)
        if separator not in SEPARATORS:
            raise ValueError(f"separator={separator!r}; choose one of {SEPARATORS}")
        # ids 0..T-1 ("research") or the separator plus T shifted ids ("reserve")
        self.vocab_size = grammar.n_terminals + (1 if separator == "reserve" else 0)
        if dtype is None:
            dtype = np.uint16 if self.vocab_size <= 1 << 16 else np.int32
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.uint16), np.dtype(np.int32)):
            raise ValueError(f"dtype={dtype} is not supported; use uint16 or int32")
        if dtype == np.uint16 and self.vocab_size > 1 << 16:
            raise ValueError(f"dtype=uint16 cannot hold {self.vocab_size} token ids; use int32")
        self.dtype = dtype
        self.spectral_radius = warn_if_supercritical(grammar, stacklevel=3)
        self.tables = compile_grammar(grammar, separator)  # after the cheap checks: can take ~1 s
        self._native = _native_grammar(self.tables)

    def __repr__(self) -> str:
        return (f"Sampler({self.grammar!r}, doc_tokens={self.doc_tokens}, seed={self.seed}, "
                f"separator={self.separator!r}, threads={self.threads}, dtype={self.dtype.name})")

    # -- the one native call ------------------------------------------------
    def fill(self, out, first_doc: int = 0) -> SampleStats:
        """Write documents first_doc .. first_doc + len(out) - 1 into ``out``.

        Args:
            out: C-contiguous array of shape (n_docs, doc_tokens), dtype int32 or
                uint16: a numpy array or a CPU torch tensor (pinned or not).
            first_doc: global index of out's first row (>= 0).

        Returns:
            SampleStats of this call. The GIL is released while sampling.
        """
        arr = _as_numpy_out(out, self.doc_tokens)
        if arr.dtype == np.uint16 and self.vocab_size > 1 << 16:
            raise ValueError(f"out has dtype uint16 but the vocabulary has {self.vocab_size} ids; "
                             "pass an int32 buffer")
        if isinstance(first_doc, bool) or not isinstance(first_doc, (int, np.integer)) or first_doc < 0:
            raise ValueError(f"first_doc={first_doc!r} must be an int >= 0")
        counts = _native.sample_docs_into(
            self._native, self.seed, int(first_doc), arr, 0, self.threads, self.max_depth,
            self.max_sentence_tokens, MAX_CONSECUTIVE_REJECTIONS)
        return SampleStats(n_docs=arr.shape[0], n_tokens=arr.size, **counts)

    def sample(self, n_docs: int, first_doc: int = 0) -> tuple[np.ndarray, SampleStats]:
        """New array (n_docs, doc_tokens) of ``self.dtype`` and its stats."""
        if n_docs < 0:
            raise ValueError(f"n_docs={n_docs} must be >= 0")
        out = np.empty((int(n_docs), self.doc_tokens), dtype=self.dtype)
        return out, self.fill(out, first_doc)

    def tokens(self, n_tokens: int, first_doc: int = 0) -> np.ndarray:
        """Exactly ``n_tokens`` tokens: ceil(n_tokens / doc_tokens) documents,
        flattened, the last one cut. Returns a 1-D array of ``self.dtype``."""
        if n_tokens < 0:
            raise ValueError(f"n_tokens={n_tokens} must be >= 0")
        n_docs = -(-int(n_tokens) // self.doc_tokens)
        arr, _ = self.sample(n_docs, first_doc)
        return arr.reshape(-1)[:n_tokens]

    def batches(self, batch_docs: int, *, first_doc: int = 0, n_docs: int | None = None,
                as_torch: bool | None = None, pin_memory: bool | None = None,
                prefetch: bool = True) -> Iterator[tuple[object, SampleStats]]:
        """Iterate over consecutive batches of documents.

        Three buffers rotate; with ``prefetch`` a background thread fills the
        next batch while the caller uses the current one (the native call
        releases the GIL). A yielded buffer stays intact until the iterator is
        advanced twice, so an asynchronous host-to-device copy of batch k may
        still be in flight while batch k + 1 is handed out.

        Args:
            batch_docs: documents per batch (the last batch may be shorter).
            first_doc: global index of the first document.
            n_docs: total documents; None = endless.
            as_torch: yield torch tensors instead of numpy arrays (default: True
                when CUDA is available).
            pin_memory: allocate page-locked torch buffers (default: when CUDA
                is available; pinned memory needs an accelerator).
            prefetch: fill the next batch in a background thread.

        Yields:
            (buffer (n, doc_tokens), SampleStats of that batch).
        """
        from concurrent.futures import Future, ThreadPoolExecutor

        from pygzlaw.sampler.buffers import BufferRing

        if batch_docs < 1:
            raise ValueError(f"batch_docs={batch_docs} must be >= 1")
        if n_docs is not None and n_docs < 0:
            raise ValueError(f"n_docs={n_docs} must be >= 0 or None")
        ring = BufferRing(3, (batch_docs, self.doc_tokens), self.dtype, as_torch=as_torch,
                          pin_memory=pin_memory)
        end = None if n_docs is None else first_doc + n_docs
        starts = itertools.count(first_doc, batch_docs)

        def job(i: int, start: int):
            n = batch_docs if end is None else min(batch_docs, end - start)
            return ring.view(i % 3, n), self.fill(ring.numpy_view(i % 3, n), start)

        def run_now(fn, *args) -> Future:
            fut: Future = Future()
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # re-raised by fut.result() in the consumer
                fut.set_exception(exc)
            return fut

        with ThreadPoolExecutor(max_workers=1) as pool:
            submit = pool.submit if prefetch else run_now
            i, start = 0, next(starts)
            pending = submit(job, i, start) if end is None or start < end else None
            while pending is not None:
                buf, stats = pending.result()
                i, start = i + 1, next(starts)
                pending = submit(job, i, start) if end is None or start < end else None
                yield buf, stats


def sample_sentences(grammar: Grammar, n_sentences: int, *, seed: int, first_sentence: int = 0,
                     separator: str = "reserve", max_depth: int = DEFAULT_MAX_DEPTH,
                     max_sentence_tokens: int = DEFAULT_MAX_SENTENCE_TOKENS,
                     threads: int = 1) -> tuple[np.ndarray, np.ndarray, SampleStats]:
    """Unpacked sentences, for statistics and for comparing against other samplers.

    Sentence i depends only on (grammar, seed, first_sentence + i).

    Returns:
        tokens: int32 (total tokens,), ids mapped as in :class:`Sampler`.
        offsets: int64 (n_sentences + 1,); sentence i is tokens[offsets[i]:offsets[i+1]].
        stats: SampleStats (n_docs = 0, n_tokens = total tokens).
    """
    _check_guards(max_depth, max_sentence_tokens)
    if n_sentences < 0:
        raise ValueError(f"n_sentences={n_sentences} must be >= 0")
    # unpacked sentences never read the document stream's table: build a minimal one
    tables = compile_grammar(grammar, separator, stream_entries=1, stream_sentence_blocks=1)
    tokens, offsets, counts = _native.sample_sentences_native(
        _native_grammar(tables), int(seed) & ((1 << 64) - 1), int(first_sentence),
        int(n_sentences), _resolve_threads(threads), int(max_depth), int(max_sentence_tokens),
        MAX_CONSECUTIVE_REJECTIONS)
    return tokens, offsets, SampleStats(n_tokens=int(tokens.size), **counts)


def _as_numpy_out(out, doc_tokens: int) -> np.ndarray:
    """A writable numpy view of a numpy array or CPU torch tensor, validated."""
    arr = out
    if not isinstance(out, np.ndarray):
        mod = type(out).__module__
        if mod.startswith("torch"):
            if out.device.type != "cpu":
                raise ValueError(f"out is on {out.device}; the sampler fills host memory: pass a "
                                 "(pinned) CPU tensor and copy it to the device")
            if not out.is_contiguous():
                raise ValueError("out tensor is not contiguous; pass out.contiguous() or a fresh buffer")
            arr = out.numpy()
        else:
            raise TypeError(f"out must be a numpy array or a torch tensor, got {type(out).__name__}")
    if arr.ndim != 2 or arr.shape[1] != doc_tokens:
        raise ValueError(f"out has shape {tuple(arr.shape)}; expected (n_docs, {doc_tokens})")
    if arr.dtype not in (np.dtype(np.int32), np.dtype(np.uint16)):
        raise ValueError(f"out has dtype {arr.dtype}; expected int32 or uint16")
    if not arr.flags.c_contiguous:
        raise ValueError("out is not C-contiguous; pass np.ascontiguousarray(out) or a fresh buffer")
    if not arr.flags.writeable:
        raise ValueError("out is read-only")
    return arr
