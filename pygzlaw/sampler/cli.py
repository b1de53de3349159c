"""``pygzlaw generate`` (token shards + manifest) and ``pygzlaw grammar`` (show/export/analyze).

A dataset directory holds ``shard-00000.npy`` ... (each an array of shape
(n_docs, doc_tokens), written with ``np.save`` to a temp name and renamed)
and ``manifest.json`` (format "pygzlaw-tokens", version 1), rewritten
atomically after every shard. Document d depends only on (grammar, seed, d),
so a rerun of the same command resumes: shards listed in the manifest whose
size and sha256 still match are kept untouched, the rest are (re)generated.
"""
from __future__ import annotations

import argparse
import os
import re
import sys

MANIFEST = "manifest.json"
FORMAT = "pygzlaw-tokens"
VERSION = 1
DEFAULT_PRESET = "main-3"
# 50M tokens: about 100 MB of uint16 shards; the README's main job finishes in well under
# a minute on 2 cores (sampling runs at ~1e8 tokens/s per core; writing and hashing dominate).
DEFAULT_TOKENS = 50_000_000
DEFAULT_SHARD_DOCS = 65_536  # 16.8M tokens at 256 per doc: 32 MiB per uint16 shard
FILL_CHUNK_TOKENS = 1 << 22  # tokens per native call, so the progress bar moves
H_SAMPLE_DOCS = 1000  # the paper's sample size for the median gzip ratio
# Parameters that must match for a resume (threads never change the output).
IDENTITY_KEYS = ("grammar", "seed", "separator", "dtype", "doc_tokens", "shard_docs", "n_docs",
                 "guards", "sampler_stream")

_SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9, "t": 10**12}


def parse_count(text: str) -> int:
    """'50M', '1e8', '2.5G', '100_000', '64k' → int (>= 1)."""
    s = str(text).strip().replace("_", "").replace(",", "")
    mult = 1
    if s and s[-1].lower() in _SUFFIXES:
        mult = _SUFFIXES[s[-1].lower()]
        s = s[:-1]
    try:
        value = float(s) * mult if re.search(r"[.eE]", s) else int(s) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a count; write e.g. 50M, 1e8, 2.5G or 100000") from None
    if value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number >= 1")
    return int(value)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return v


# ---------------------------------------------------------------------------
# argument parsing

def _add_grammar_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("grammar (one of: --preset, --grammar, or all four spec knobs)")
    g.add_argument("--preset", help=f"named preset, e.g. main-1..6, vocab300-1..6, neareq-1..6 "
                                    f"(default {DEFAULT_PRESET})")
    g.add_argument("--grammar", metavar="FILE",
                   help="grammar file: .json (pygzlaw JSON) or .txt/.cfg/.pcfg (NLTK PCFG text)")
    g.add_argument("--nonterminals", type=_positive_int, help="spec knob k")
    g.add_argument("--terminals", type=_positive_int, help="spec knob T")
    g.add_argument("--rhs-max-options", type=_positive_int, help="spec knob: max rules per nonterminal")
    g.add_argument("--rhs-max-len", type=_positive_int, help="spec knob: max symbols per rule")
    g.add_argument("--grammar-seed", type=int, default=0,
                   help="seed of the random grammar (presets and spec knobs; default 0)")


def _resolve_grammar(args):
    """(Grammar, description dict) from the grammar arguments."""
    from pygzlaw.grammar import GrammarSpec, load, random_pcfg

    knobs = [args.nonterminals, args.terminals, args.rhs_max_options, args.rhs_max_len]
    n_given = sum(x is not None for x in knobs)
    sources = sum([args.preset is not None, args.grammar is not None, n_given > 0])
    if sources > 1:
        raise ValueError("give only one of --preset, --grammar, or the spec knobs "
                         "(--nonterminals --terminals --rhs-max-options --rhs-max-len)")
    if 0 < n_given < 4:
        raise ValueError("the spec knobs go together: give all four of --nonterminals, "
                         "--terminals, --rhs-max-options, --rhs-max-len (or use --preset)")
    if args.grammar is not None:
        return load(args.grammar), {"grammar_file": os.path.abspath(args.grammar),
                                    "preset": None, "grammar_seed": None}
    if n_given == 4:
        spec = GrammarSpec(*knobs)
        return random_pcfg(spec, args.grammar_seed), {"preset": None,
                                                      "grammar_seed": args.grammar_seed}
    name = args.preset or DEFAULT_PRESET
    return random_pcfg(name, args.grammar_seed), {"preset": name, "grammar_seed": args.grammar_seed}


def register(subparsers) -> None:
    """Add ``generate`` and ``grammar`` to the ``pygzlaw`` command line."""
    p = subparsers.add_parser(
        "generate", help="sample a PCFG dataset into .npy shards with a JSON manifest",
        description="Sample fixed-length documents from a PCFG into DIR/shard-NNNNN.npy "
                    "(shape (n_docs, doc_tokens)) plus DIR/manifest.json, then print dataset "
                    "statistics. Rerunning the same command resumes an interrupted run.")
    _add_grammar_args(p)
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--tokens", type=parse_count, default=DEFAULT_TOKENS,
                   help="total tokens, rounded up to whole documents; accepts 50M, 1e8 "
                        f"(default {DEFAULT_TOKENS // 10**6}M)")
    p.add_argument("--doc-tokens", type=_positive_int, default=256,
                   help="tokens per document, the context length (default 256, as in the paper)")
    p.add_argument("--shard-docs", type=_positive_int, default=DEFAULT_SHARD_DOCS,
                   help=f"documents per shard (default {DEFAULT_SHARD_DOCS})")
    p.add_argument("--threads", type=int, default=-1,
                   help="sampler threads, -1 = all cores (default); never changes the output")
    p.add_argument("--separator", choices=("reserve", "research"), default="reserve",
                   help="reserve (default): 0 is only the separator, terminal t is token t+1; "
                        "research: terminal t is token t and 0 doubles as separator (paper code)")
    p.add_argument("--dtype", choices=("auto", "uint16", "int32"), default="auto",
                   help="token dtype; auto = uint16 when the vocabulary fits, else int32")
    p.add_argument("--max-depth", type=_positive_int, default=1000,
                   help="reject and resample sentences nested deeper (default 1000)")
    p.add_argument("--max-sentence-tokens", type=parse_count, default=1 << 20,
                   help="reject and resample longer sentences (default 1048576)")
    p.add_argument("--out", metavar="DIR", help="output directory (default data/<preset>-g<grammar seed>-seed<seed>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a dataset in DIR generated with different parameters")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_generate)

    g = subparsers.add_parser("grammar", help="show, export or analyze a grammar",
                              description="Inspect grammars: presets, random specs or files.")
    gsub = g.add_subparsers(dest="grammar_command", metavar="ACTION")
    show = gsub.add_parser("show", help="print the grammar (NLTK PCFG text or JSON)")
    _add_grammar_args(show)
    show.add_argument("--format", choices=("nltk", "json"), default="nltk")
    show.set_defaults(func=cmd_grammar_show)
    exp = gsub.add_parser("export", help="write the grammar to FILE (format by extension)")
    _add_grammar_args(exp)
    exp.add_argument("path", metavar="FILE", help=".json, .txt, .cfg or .pcfg")
    exp.set_defaults(func=cmd_grammar_export)
    ana = gsub.add_parser("analyze", help="sizes, spectral radius, expected sentence length")
    _add_grammar_args(ana)
    ana.add_argument("--json", action="store_true", help="print JSON")
    ana.set_defaults(func=cmd_grammar_analyze)
    g.set_defaults(func=lambda args: (g.print_help(), 2)[1])


# ---------------------------------------------------------------------------
# pygzlaw grammar ...

def cmd_grammar_show(args) -> int:
    from pygzlaw.grammar import to_json, to_nltk_text

    grammar, _ = _resolve_grammar(args)
    sys.stdout.write(to_json(grammar) if args.format == "json" else to_nltk_text(grammar))
    return 0


def cmd_grammar_export(args) -> int:
    from pygzlaw.grammar import save

    grammar, _ = _resolve_grammar(args)
    save(grammar, args.path)
    print(f"wrote {args.path}: {grammar!r}", file=sys.stderr)
    return 0


def cmd_grammar_analyze(args) -> int:
    import json

    from pygzlaw.grammar import analyze

    grammar, _ = _resolve_grammar(args)
    report = analyze(grammar)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>26}: {value}")
    return 0


# ---------------------------------------------------------------------------
# pygzlaw generate

class _HashingWriter:
    """File wrapper that sha256-hashes what np.save writes (no second read)."""

    def __init__(self, f) -> None:
        import hashlib

        self._f = f
        self.sha256 = hashlib.sha256()
        self.n_bytes = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.n_bytes += len(data)
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()


def _write_shard(path: str, arr) -> tuple[str, int]:
    """np.save ``arr`` atomically to ``path``, hashing while writing. Returns (sha256 hex, bytes)."""
    import numpy as np

    from pygzlaw.atomic import atomic_open

    with atomic_open(path, "wb") as f:
        w = _HashingWriter(f)
        np.save(w, arr, allow_pickle=False)
    return w.sha256.hexdigest(), w.n_bytes


def _file_sha256(path: str) -> tuple[str, int]:
    import hashlib

    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 22)
            if not block:
                break
            h.update(block)
            n += len(block)
    return h.hexdigest(), n


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


def _shard_name(i: int) -> str:
    return f"shard-{i:05d}.npy"


def _describe_mismatch(old: dict, new: dict) -> str:
    diffs = []
    for key in IDENTITY_KEYS:
        a, b = old.get(key), new.get(key)
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


def cmd_generate(args) -> int:
    import json
    import math
    import time

    import numpy as np

    from pygzlaw import __version__
    from pygzlaw.grammar import grammar_to_dict
    from pygzlaw.sampler import STREAM_VERSION, SampleStats, Sampler

    grammar, origin = _resolve_grammar(args)
    if args.out is None:
        label = origin.get("preset") or (os.path.splitext(os.path.basename(args.grammar))[0]
                                         if args.grammar else "spec")
        args.out = os.path.join("data", f"{label}-g{origin.get('grammar_seed')}-seed{args.seed}")
    out_dir = args.out
    dtype = None if args.dtype == "auto" else np.dtype(args.dtype)
    sampler = Sampler(grammar, args.doc_tokens, seed=args.seed, separator=args.separator,
                      max_depth=args.max_depth, max_sentence_tokens=args.max_sentence_tokens,
                      threads=args.threads, dtype=dtype)
    doc_tokens = args.doc_tokens
    n_docs = -(-args.tokens // doc_tokens)
    shard_docs = min(args.shard_docs, n_docs)
    n_shards = -(-n_docs // shard_docs)
    plan = [(i, i * shard_docs, min(shard_docs, n_docs - i * shard_docs)) for i in range(n_shards)]

    grammar_json = grammar_to_dict(grammar)
    manifest = {
        "format": FORMAT, "version": VERSION, "pygzlaw_version": __version__,
        "grammar": grammar_json, **origin, "spec": grammar_json.get("spec"),
        "seed": args.seed, "separator": args.separator, "vocab_size": sampler.vocab_size,
        "dtype": sampler.dtype.name, "doc_tokens": doc_tokens, "shard_docs": shard_docs,
        "n_docs": n_docs, "n_tokens": n_docs * doc_tokens,
        "guards": {"max_depth": args.max_depth, "max_sentence_tokens": args.max_sentence_tokens},
        "sampler_stream": STREAM_VERSION,
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
        if diff and not args.overwrite:
            raise ValueError(f"{manifest_path} was written for different parameters ({diff}); "
                             "rerun with the same parameters to resume, choose another --out, "
                             "or pass --overwrite to replace it")
        if not diff:
            by_index = {s["first_doc"] // shard_docs: s for s in old.get("shards", [])
                        if s["first_doc"] % shard_docs == 0}
            kept = {i: by_index[i] for i, first, n in plan
                    if i in by_index and by_index[i]["n_docs"] == n
                    and by_index[i]["file"] == _shard_name(i)}
        else:  # --overwrite: old shards beyond the new plan would be stale; remove ours
            for s in old.get("shards", []):
                if s["file"] not in {_shard_name(i) for i, _, _ in plan}:
                    try:
                        os.unlink(os.path.join(out_dir, s["file"]))
                    except OSError:
                        pass
    elif not args.overwrite:
        stray = sorted(f for f in os.listdir(out_dir) if re.fullmatch(r"shard-\d+\.npy", f))
        if stray:
            raise ValueError(f"{out_dir} holds {stray[0]} but no {MANIFEST}; it is not a resumable "
                             "pygzlaw dataset: choose another --out or pass --overwrite")

    counts = np.zeros(sampler.vocab_size, dtype=np.int64)
    shard_rows: dict[int, dict] = {}
    n_resumed = 0
    # Verify shards a previous run finished: size and sha256 must still match.
    for i, entry in sorted(kept.items()):
        path = os.path.join(out_dir, entry["file"])
        ok = os.path.isfile(path) and os.path.getsize(path) == entry.get("n_bytes")
        if ok:
            ok = _file_sha256(path) == (entry["sha256"], entry["n_bytes"])
        if not ok:
            print(f"pygzlaw generate: {path} is missing or does not match its checksum; "
                  "regenerating it", file=sys.stderr)
            continue
        arr = np.load(path, mmap_mode="r")
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
              disable=args.quiet, desc=os.path.basename(os.path.normpath(out_dir)),
              file=sys.stderr, smoothing=0.1) as bar:
        for i, first, n in todo:
            view = buf[:n]
            shard_stats = SampleStats()
            for j in range(0, n, chunk_docs):
                c = min(chunk_docs, n - j)
                t0 = time.perf_counter()
                shard_stats = shard_stats + sampler.fill(view[j:j + c], first_doc=first + j)
                sample_s += time.perf_counter() - t0
                bar.update(c * doc_tokens)
            sha, n_bytes = _write_shard(os.path.join(out_dir, _shard_name(i)), view)
            counts += _unigram_counts(view, sampler.vocab_size)
            new_stats = new_stats + shard_stats
            shard_rows[i] = {"file": _shard_name(i), "first_doc": first, "n_docs": n,
                             "sha256": sha, "n_bytes": n_bytes, "stats": shard_stats.to_dict()}
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
    rng = np.random.default_rng([args.seed & (2**63 - 1), 0x67A1])
    n_sample = min(H_SAMPLE_DOCS, n_docs)
    docs = np.sort(rng.choice(n_docs, size=n_sample, replace=False))
    rows = []
    for i, first, n in plan:
        sel = docs[(docs >= first) & (docs < first + n)] - first
        if sel.size:
            arr = np.load(os.path.join(out_dir, _shard_name(i)), mmap_mode="r")
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
        "spectral_radius": sampler.spectral_radius,
    }
    manifest["stats"] = stats
    manifest["complete"] = True
    _write_manifest(out_dir, manifest)

    if args.json:
        print(json.dumps({"out": out_dir, **stats}, indent=2))
    else:
        def fmt(x):
            return "-" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.4g}")
        print(f"dataset        {out_dir}  ({n_shards} shards, {n_resumed} resumed; "
              f"{sampler.dtype.name}, vocab {sampler.vocab_size})")
        print(f"grammar        {grammar!r}  spectral radius {sampler.spectral_radius:.3f}")
        print(f"documents      {n_docs:,} x {doc_tokens} tokens = {n_docs * doc_tokens:,} tokens")
        print(f"sentences      {total.n_sentences:,}  rejected {total.n_rejected:,} "
              f"(rate {total.rejection_rate:.3%}; depth {total.n_rejected_depth:,}, "
              f"length {total.n_rejected_length:,})")
        print(f"throughput     {fmt(stats['tokens_per_s'])} tokens/s sampling, "
              f"{fmt(stats['tokens_per_s_end_to_end'])} tokens/s with writing "
              f"({sampler.threads} threads)")
        print(f"unigram H      {entropy_bits:.4f} bits/token over {stats['n_token_ids_seen']} ids")
        print(f"gzip ratio     median {stats['gzip_ratio_median']:.4f}, std "
              f"{stats['gzip_ratio_std']:.4f} over {ratios.size} random documents")
    if not math.isfinite(entropy_bits):  # pragma: no cover - would mean empty counts
        return 1
    return 0
