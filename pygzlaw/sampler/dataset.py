"""Writing token datasets: ``write_dataset`` (the Python API behind ``pygzlaw generate``).

A dataset directory holds shards in one of ``pygzlaw.sampler.formats.FORMATS``
(npy: ``shard-00000.npy`` ..., arrays of shape (n_docs, doc_tokens); parquet, bin +
Megatron .idx, mds: see that module), every file written to a temp name and renamed,
and ``manifest.json`` (format "pygzlaw-tokens", version 1; its ``shard_format`` says
which, and each shard lists its files with size and sha256), rewritten
atomically after every shard. Document d depends only on (grammar, seed, d),
so a rerun with the same parameters resumes: shards listed in the manifest whose
size and sha256 still match are kept untouched, the rest are (re)generated.
"""
from __future__ import annotations

import os
import re
import sys

__all__ = ["write_dataset", "sample_shard", "sample_shard_from_spec", "gzip_ratio_sample", "MANIFEST", "FORMAT", "VERSION", "IDENTITY_KEYS"]

MANIFEST = "manifest.json"
FORMAT = "pygzlaw-tokens"
VERSION = 1
FILL_CHUNK_TOKENS = 1 << 22  # tokens per native call, so the progress bar moves
H_SAMPLE_DOCS = 1000  # the paper's sample size for the median gzip ratio
# Parameters that must match for a resume (threads never change the output).
IDENTITY_KEYS = ("grammar", "seed", "separator", "dtype", "doc_tokens", "shard_docs", "n_docs",
                 "guards", "sampler_stream", "shard_format")
# Manifests written before a key existed meant this value.
_IDENTITY_DEFAULTS = {"shard_format": "npy"}


def _write_shard(path: str, arr, *, fmt: str = "npy", shard: int = 0, first_doc: int = 0) -> dict:
    """Write shard ``shard`` (primary file ``path``) in ``fmt``, atomically, hashing while
    writing. Returns its manifest fields {"file", "sha256", "n_bytes", "files"}."""
    from pygzlaw.sampler import formats

    out_dir = os.path.dirname(path)
    if fmt == "mds":  # the primary file is shard-NNNNN/index.json
        out_dir = os.path.dirname(out_dir)
    return formats.write_shard(fmt, out_dir, shard, arr, first_doc)


def _write_manifest(out_dir: str, manifest: dict) -> None:
    import json

    from pygzlaw.atomic import write_text

    # The grammar goes on one line: indented, main-6's would be ~100k lines.
    marker = "\u0000grammar\u0000"
    text = json.dumps({**manifest, "grammar": marker}, indent=1)
    text = text.replace(json.dumps(marker), json.dumps(manifest["grammar"], separators=(",", ":")))
    write_text(os.path.join(out_dir, MANIFEST), text + "\n")


def _unigram_counts(arr, vocab_size: int):
    """int64 (vocab_size,) token counts, in row chunks (bincount would copy to int64 at once)."""
    import numpy as np

    counts = np.zeros(vocab_size, dtype=np.int64)
    rows = max(1, (1 << 22) // max(1, arr.shape[1]))
    for i in range(0, arr.shape[0], rows):
        counts += np.bincount(arr[i:i + rows].reshape(-1), minlength=vocab_size)[:vocab_size]
    return counts


def _shard_name(i: int, fmt: str = "npy") -> str:
    from pygzlaw.sampler.formats import shard_primary

    return shard_primary(fmt, i)


def _shard_files(entry: dict) -> list[str]:
    return [f["file"] for f in entry.get("files") or [{"file": entry["file"]}]]


def _describe_mismatch(old: dict, new: dict) -> str:
    diffs = []
    for key in IDENTITY_KEYS:
        a, b = old.get(key, _IDENTITY_DEFAULTS.get(key)), new.get(key)
        if a != b:
            if key == "grammar":
                diffs.append("grammar (a different grammar)")
            else:
                diffs.append(f"{key}: {a!r} → {b!r}")
    return ", ".join(diffs)


def gzip_ratio_sample(rows) -> list[float]:
    """Per-document gzip ratio as in the paper (section 3): token ids as 4-byte
    big-endian int32, gzip level-9 size / raw bytes, by the native exact scorer
    (byte-identical to gzip.GzipFile). rows: (n_docs, doc_tokens) ints."""
    import numpy as np

    from pygzlaw.score import score_tokens

    if len(rows) == 0:
        return []
    return score_tokens(np.asarray(rows), threads=-1).ratio.tolist()


def sample_shard(sampler, out_dir: str, i: int, first: int, n: int, *, fmt: str = "npy",
                 buf=None, bar=None, chunk_docs: int | None = None) -> tuple:
    """Sample documents [first, first + n) with ``sampler`` and write them as shard ``i``.

    Args:
        sampler: a pygzlaw.sampler.Sampler (its grammar, seed and guards fix the tokens).
        out_dir: dataset directory; i: shard index; first, n: its first document and count.
        fmt: shard format; buf: optional (>= n, doc_tokens) array of sampler.dtype to reuse;
        bar: optional tqdm bar updated in tokens; chunk_docs: documents per native call.

    Returns:
        (i, manifest row {"file", "first_doc", "n_docs", "sha256", "n_bytes", "files",
        "stats"}, unigram counts int64 (vocab_size,), SampleStats, sampling seconds).
    """
    import time

    import numpy as np

    from pygzlaw.sampler import SampleStats

    doc_tokens = sampler.doc_tokens
    if buf is None:
        buf = np.empty((n, doc_tokens), dtype=sampler.dtype)
    chunk_docs = chunk_docs or max(1, FILL_CHUNK_TOKENS // doc_tokens)
    view = buf[:n]
    shard_stats = SampleStats()
    sample_s = 0.0
    for j in range(0, n, chunk_docs):
        c = min(chunk_docs, n - j)
        t0 = time.perf_counter()
        shard_stats = shard_stats + sampler.fill(view[j:j + c], first_doc=first + j)
        sample_s += time.perf_counter() - t0
        if bar is not None:
            bar.update(c * doc_tokens)
    w = _write_shard(os.path.join(out_dir, _shard_name(i, fmt)), view, fmt=fmt, shard=i,
                     first_doc=first)
    row = {"file": w["file"], "first_doc": first, "n_docs": n, "sha256": w["sha256"],
           "n_bytes": w["n_bytes"], "files": w["files"], "stats": shard_stats.to_dict()}
    return i, row, _unigram_counts(view, sampler.vocab_size), shard_stats, sample_s


def sample_shard_from_spec(spec: dict, i: int, first: int, n: int, *, threads: int = 1) -> tuple:
    """:func:`sample_shard` from the picklable ``spec`` write_dataset gives a shard_runner
    (on any machine that can write ``spec["out_dir"]``). Same return value."""
    import numpy as np

    from pygzlaw.grammar import grammar_from_dict
    from pygzlaw.sampler import Sampler

    grammar = grammar_from_dict(spec["grammar"])
    sampler = Sampler(grammar, spec["doc_tokens"], seed=spec["seed"], separator=spec["separator"],
                      max_depth=spec["max_depth"], max_sentence_tokens=spec["max_sentence_tokens"],
                      threads=threads, dtype=np.dtype(spec["dtype"]))
    return sample_shard(sampler, spec["out_dir"], i, first, n, fmt=spec["fmt"],
                        chunk_docs=spec["chunk_docs"])


def write_dataset(grammar, out_dir: str, *, n_tokens: int, doc_tokens: int = 256, seed: int = 0,
                  shard_docs: int = 65_536, threads: int = -1, separator: str = "reserve", dtype: str = "auto",
                  max_depth: int = 1000, max_sentence_tokens: int = 1 << 20, overwrite: bool = False,
                  progress: bool = False, origin: dict | None = None, fmt: str = "npy",
                  shard_runner=None) -> dict:
    """Sample ``n_tokens`` tokens (rounded up to whole documents) of ``grammar`` into ``out_dir``.

    Resumes a dataset written with the same parameters (see the module docstring); statistics
    over all shards (H: median and sample std of the gzip ratio of 1000 random documents,
    Pandey 2024 Sec. 3) go into the manifest.

    Args:
        grammar: a pygzlaw.grammar.Grammar.
        out_dir: dataset directory (created).
        n_tokens: total tokens, rounded up to whole documents.
        doc_tokens: tokens per document (the context length).
        seed: sampling seed; document d is a function of (grammar, seed, d).
        shard_docs: documents per shard.
        threads: sampler threads (-1 = all cores); never changes the output.
        separator: "reserve" or "research" (see pygzlaw.sampler.Sampler).
        dtype: "auto" (uint16 when the vocabulary fits), "uint16" or "int32".
        max_depth, max_sentence_tokens: sampler guards.
        overwrite: replace a dataset in out_dir written with different parameters.
        progress: tqdm progress bar on stderr.
        origin: where the grammar came from ({"preset", "grammar_seed"} or {"grammar_file"}), stored.
        fmt: shard format, one of pygzlaw.sampler.formats.FORMATS: "npy" (default), "parquet",
            "bin" (flat tokens + Megatron-LM .idx) or "mds" (needs mosaicml-streaming). Every
            format resumes and is checked by sha256 alike; the tokens are the same.
        shard_runner: where the missing shards are sampled; None = here, in order. Otherwise a
            callable ``(todo, spec) -> iterable of (i, row, counts, stats, sample_s)`` (any
            order; see :func:`sample_shard_from_spec`, e.g. ``pygzlaw.sampler.ray_engine``):
            todo lists (shard index, first document, n_docs); spec is a picklable dict from
            which :func:`sample_shard_from_spec` samples and writes a shard anywhere. The
            manifest is written here only, so the dataset is the same bytes either way.

    Returns:
        dict with "out", "manifest" (as written), "stats" (the manifest's statistics), "grammar_repr",
        "total" (SampleStats over all shards), "entropy_bits", "n_resumed".

    Raises:
        ValueError: out_dir holds a dataset of other parameters (names them) and not overwrite, an
            unreadable manifest, stray shards without a manifest, or an unknown fmt.
        ImportError: fmt="mds" without mosaicml-streaming (names the extra to install).
    """
    import json
    import time

    import numpy as np

    from pygzlaw import __version__
    from pygzlaw.grammar import grammar_to_dict
    from pygzlaw.provenance import gzip_provenance
    from pygzlaw.sampler import STREAM_VERSION, SampleStats, Sampler, formats

    if fmt not in formats.FORMATS:
        raise ValueError(f"fmt={fmt!r} (--format) must be one of {', '.join(formats.FORMATS)}")
    if fmt == "mds":
        formats._import_mds_writer()  # fail before sampling anything
    origin = dict(origin or {})
    np_dtype = None if dtype == "auto" else np.dtype(dtype)
    sampler = Sampler(grammar, doc_tokens, seed=seed, separator=separator,
                      max_depth=max_depth, max_sentence_tokens=max_sentence_tokens,
                      threads=threads, dtype=np_dtype)
    n_docs = -(-n_tokens // doc_tokens)
    shard_docs = min(shard_docs, n_docs)
    n_shards = -(-n_docs // shard_docs)
    plan = [(i, i * shard_docs, min(shard_docs, n_docs - i * shard_docs)) for i in range(n_shards)]

    grammar_json = grammar_to_dict(grammar)
    manifest = {
        "format": FORMAT, "version": VERSION, "pygzlaw_version": __version__,
        "grammar": grammar_json, **origin, "spec": grammar_json.get("spec"),
        "seed": seed, "separator": separator, "vocab_size": sampler.vocab_size,
        "dtype": sampler.dtype.name, "doc_tokens": doc_tokens, "shard_docs": shard_docs,
        "n_docs": n_docs, "n_tokens": n_docs * doc_tokens,
        "guards": {"max_depth": max_depth, "max_sentence_tokens": max_sentence_tokens},
        "sampler_stream": STREAM_VERSION, "shard_format": fmt,
        "complete": False, "shards": [], "stats": None,
    }

    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, MANIFEST)
    kept: dict[int, dict] = {}
    if os.path.exists(manifest_path):
        try:
            with open(manifest_path, encoding="utf-8") as f:
                old = json.load(f)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{manifest_path}: unreadable manifest ({exc}); pass --overwrite "
                             "to start over") from None
        if old.get("format") != FORMAT:
            raise ValueError(f"{manifest_path}: not a pygzlaw token manifest "
                             f"(format={old.get('format')!r}); choose another --out")
        diff = _describe_mismatch(old, manifest)
        if diff and not overwrite:
            raise ValueError(f"{manifest_path} was written for different parameters ({diff}); "
                             "rerun with the same parameters to resume, choose another --out, "
                             "or pass --overwrite to replace it")
        if not diff:
            by_index = {s["first_doc"] // shard_docs: s for s in old.get("shards", [])
                        if s["first_doc"] % shard_docs == 0}
            kept = {i: by_index[i] for i, first, n in plan
                    if i in by_index and by_index[i]["n_docs"] == n
                    and by_index[i]["file"] == _shard_name(i, fmt)}
        else:  # --overwrite: old shards beyond the new plan (or of another format) are stale
            planned = {_shard_name(i, fmt) for i, _, _ in plan}
            for s in old.get("shards", []) + [f for f in [old.get("dataset_file")] if f]:
                for rel in _shard_files(s):
                    if rel not in planned:
                        try:
                            os.unlink(os.path.join(out_dir, rel))
                        except OSError:
                            pass
                        if os.path.dirname(rel):  # an emptied mds shard directory
                            try:
                                os.rmdir(os.path.join(out_dir, os.path.dirname(rel)))
                            except OSError:
                                pass
    elif not overwrite:
        stray = sorted(f for f in os.listdir(out_dir)
                       if re.fullmatch(r"shard-\d+(\.(npy|parquet|bin|idx))?", f))
        if stray:
            raise ValueError(f"{out_dir} holds {stray[0]} but no {MANIFEST}; it is not a resumable "
                             "pygzlaw dataset: choose another --out or pass --overwrite")

    counts = np.zeros(sampler.vocab_size, dtype=np.int64)
    shard_rows: dict[int, dict] = {}
    n_resumed = 0
    # Verify shards a previous run finished: size and sha256 must still match.
    for i, entry in sorted(kept.items()):
        path = os.path.join(out_dir, entry["file"])
        if not formats.verify_shard(out_dir, entry):
            print(f"pygzlaw generate: {path} is missing or does not match its checksum; "
                  "regenerating it", file=sys.stderr)
            continue
        arr = formats.read_shard(fmt, out_dir, entry, doc_tokens, sampler.dtype)
        counts += _unigram_counts(arr, sampler.vocab_size)
        shard_rows[i] = entry
        n_resumed += 1
    manifest["shards"] = [shard_rows[i] for i in sorted(shard_rows)]
    _write_manifest(out_dir, manifest)

    todo = [(i, first, n) for i, first, n in plan if i not in shard_rows]
    tokens_done = sum(e["n_docs"] for e in shard_rows.values()) * doc_tokens
    new_stats = SampleStats()
    sample_s = 0.0
    t_start = time.perf_counter()
    buf = np.empty((max((n for _, _, n in todo), default=0), doc_tokens), dtype=sampler.dtype)
    chunk_docs = max(1, FILL_CHUNK_TOKENS // doc_tokens)
    from tqdm import tqdm

    with tqdm(total=n_docs * doc_tokens, initial=tokens_done, unit="tok", unit_scale=True,
              disable=not progress, desc=os.path.basename(os.path.normpath(out_dir)),
              file=sys.stderr, smoothing=0.1) as bar:
        if shard_runner is None:
            done = (sample_shard(sampler, out_dir, i, first, n, fmt=fmt, buf=buf, bar=bar,
                                 chunk_docs=chunk_docs) for i, first, n in todo)
        else:
            spec = {"grammar": grammar_json, "doc_tokens": doc_tokens, "seed": seed,
                    "separator": separator, "dtype": sampler.dtype.name, "max_depth": max_depth,
                    "max_sentence_tokens": max_sentence_tokens, "out_dir": out_dir, "fmt": fmt,
                    "chunk_docs": chunk_docs}
            done = shard_runner(todo, spec)
        for i, row, shard_counts, shard_stats, shard_s in done:
            if shard_runner is not None:
                bar.update(row["n_docs"] * doc_tokens)
            sample_s += shard_s
            counts += shard_counts
            new_stats = new_stats + shard_stats
            shard_rows[i] = row
            manifest["shards"] = [shard_rows[k] for k in sorted(shard_rows)]
            _write_manifest(out_dir, manifest)
    wall_s = time.perf_counter() - t_start

    # Dataset statistics over all shards (resumed ones included).
    total = SampleStats()
    for e in manifest["shards"]:
        s = dict(e.get("stats") or {})
        s.pop("rejection_rate", None)
        total = total + SampleStats(**s)
    p = counts[counts > 0] / counts.sum()
    entropy_bits = float(-(p * np.log2(p)).sum())
    rng = np.random.default_rng([seed & (2**63 - 1), 0x67A1])
    n_sample = min(H_SAMPLE_DOCS, n_docs)
    docs = np.sort(rng.choice(n_docs, size=n_sample, replace=False))
    rows = []
    for i, first, n in plan:
        sel = docs[(docs >= first) & (docs < first + n)] - first
        if sel.size:
            entry = manifest["shards"][i]
            arr = formats.read_shard(fmt, out_dir, entry, doc_tokens, sampler.dtype)
            rows.extend(np.asarray(arr[sel]))
    ratios = np.array(gzip_ratio_sample(rows))
    new_tokens = new_stats.n_tokens
    stats = {
        "n_docs": n_docs, "n_tokens": n_docs * doc_tokens, "n_sentences": total.n_sentences,
        "n_rejected_depth": total.n_rejected_depth, "n_rejected_length": total.n_rejected_length,
        "rejection_rate": total.rejection_rate,
        "n_shards": n_shards, "n_shards_resumed": n_resumed,
        "tokens_per_s": new_tokens / sample_s if sample_s > 0 else None,
        "tokens_per_s_end_to_end": new_tokens / wall_s if new_tokens and wall_s > 0 else None,
        "threads": sampler.threads,
        "unigram_entropy_bits": entropy_bits,
        "n_token_ids_seen": int(np.count_nonzero(counts)),
        "gzip_ratio_median": float(np.median(ratios)),
        "gzip_ratio_std": float(ratios.std(ddof=1)) if ratios.size > 1 else 0.0,
        "gzip_sample_docs": int(ratios.size),
        # how H was computed (gzip_ratio_sample: exact scorer, ids as 4-byte big-endian)
        "gzip_provenance": gzip_provenance(),
        "spectral_radius": sampler.spectral_radius,
    }
    dataset_file = formats.finish_dataset(fmt, out_dir, manifest["shards"])
    if dataset_file is not None:
        manifest["dataset_file"] = dataset_file
    manifest["stats"] = stats
    manifest["complete"] = True
    _write_manifest(out_dir, manifest)

    return {"out": out_dir, "manifest": manifest, "stats": stats, "grammar_repr": repr(grammar),
            "total": total, "entropy_bits": entropy_bits, "n_resumed": n_resumed}
