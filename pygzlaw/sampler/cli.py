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
import sys

from pygzlaw._argtypes import parse_count
from pygzlaw._argtypes import positive_int as _positive_int

# The dataset writer lives in pygzlaw.sampler.dataset; these names stay importable from here.
from pygzlaw.sampler.dataset import (  # noqa: F401
    FORMAT,
    H_SAMPLE_DOCS,
    IDENTITY_KEYS,
    MANIFEST,
    VERSION,
    gzip_ratio_sample,
)

DEFAULT_PRESET = "main-3"
# 50M tokens: about 100 MB of uint16 shards; the README's main job finishes in well under
# a minute on 2 cores (sampling runs at ~1e8 tokens/s per core; writing and hashing dominate).
DEFAULT_TOKENS = 50_000_000
DEFAULT_SHARD_DOCS = 65_536  # 16.8M tokens at 256 per doc: 32 MiB per uint16 shard



# ---------------------------------------------------------------------------
# argument parsing

def _add_grammar_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("grammar (one of: --preset, --grammar, or all four spec knobs)")
    g.add_argument("--preset", help=f"named preset, e.g. main-1..6, vocab300-1..6, neareq-1..6 "
                                    f"(default {DEFAULT_PRESET})")
    g.add_argument("--grammar", metavar="FILE",
                   help="grammar file: .json (pygzlaw JSON) or .txt/.cfg/.pcfg (NLTK PCFG text)")
    g.add_argument("--renormalize", action="store_true",
                   help="--grammar FILE in NLTK PCFG text: rescale each nonterminal's probabilities "
                        "to sum to 1 even when they are off by more than NLTK's 0.01 (which is "
                        "refused otherwise)")
    g.add_argument("--nonterminals", type=_positive_int, help="spec knob k")
    g.add_argument("--terminals", type=_positive_int, help="spec knob T")
    g.add_argument("--rhs-max-options", type=_positive_int, help="spec knob: max rules per nonterminal")
    g.add_argument("--rhs-max-len", type=_positive_int, help="spec knob: max symbols per rule")
    g.add_argument("--grammar-seed", type=int, default=0,
                   help="seed of the random grammar (presets and spec knobs; default 0)")


def load_grammar_file(path: str, *, renormalize: bool = False):
    """``pygzlaw.grammar.load(path)``; with ``renormalize`` (the CLI's --renormalize), NLTK PCFG
    text whose probabilities are off by more than NLTK's 0.01 is rescaled instead of refused.

    Raises:
        ValueError: as ``load``; --renormalize with a .json grammar (pygzlaw's own format, whose
            probabilities must sum to 1 within 1e-6).
    """
    from pygzlaw.grammar import load
    from pygzlaw.grammar.json_io import JSON_EXTENSIONS

    if not renormalize:
        return load(path)
    if str(path).lower().endswith(JSON_EXTENSIONS):
        raise ValueError(f"{path}: --renormalize applies to NLTK PCFG text (.txt, .cfg, .pcfg); a "
                         ".json grammar's probabilities must sum to 1 within 1e-6 (fix them there)")
    return load(path, renormalize=True)


def _resolve_grammar(args):
    """(Grammar, description dict) from the grammar arguments."""
    from pygzlaw.grammar import GrammarSpec, random_pcfg

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
        return load_grammar_file(args.grammar, renormalize=args.renormalize), {
            "grammar_file": os.path.abspath(args.grammar), "preset": None, "grammar_seed": None}
    if args.renormalize:
        raise ValueError("--renormalize applies to --grammar FILE (NLTK PCFG text); presets and "
                         "spec knobs make grammars whose probabilities sum to 1")
    if n_given == 4:
        spec = GrammarSpec(*knobs)
        return random_pcfg(spec, args.grammar_seed), {"preset": None,
                                                      "grammar_seed": args.grammar_seed}
    name = args.preset or DEFAULT_PRESET
    return random_pcfg(name, args.grammar_seed), {"preset": name, "grammar_seed": args.grammar_seed}


def register(subparsers) -> None:
    """Add ``generate`` and ``grammar`` to the ``pygzlaw`` command line."""
    p = subparsers.add_parser(
        "generate", help="sample a PCFG dataset into token shards with a JSON manifest",
        description="Sample fixed-length documents from a PCFG into DIR/shard-NNNNN.npy "
                    "(shape (n_docs, doc_tokens); or --format parquet, bin, mds) plus "
                    "DIR/manifest.json, then print dataset statistics. Rerunning the same "
                    "command resumes an interrupted run.")
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
    p.add_argument("--format", dest="shard_format", choices=("npy", "parquet", "bin", "mds"),
                   default="npy",
                   help="shard format: npy (default; (n_docs, doc_tokens) arrays), parquet (one "
                        "row per document: input_ids, doc_index), bin (flat token stream + "
                        "Megatron-LM .idx), mds (MosaicML Streaming; pip install 'pygzlaw[mds]')")
    p.add_argument("--max-depth", type=_positive_int, default=1000,
                   help="reject and resample sentences nested deeper (default 1000)")
    p.add_argument("--max-sentence-tokens", type=parse_count, default=1 << 20,
                   help="reject and resample longer sentences (default 1048576)")
    p.add_argument("--out", metavar="DIR", help="output directory (default data/<preset>-g<grammar seed>-seed<seed>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a dataset in DIR generated with different parameters")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (default), or ray: one Ray task per shard, same bytes "
                        "(pip install 'pygzlaw[ray]'; --threads = threads per task)")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="Ray cluster to join with --engine ray (default: RAY_ADDRESS, else a "
                        "new local Ray)")
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

def cmd_generate(args) -> int:
    import json
    import math

    from pygzlaw.sampler.dataset import write_dataset

    grammar, origin = _resolve_grammar(args)
    if args.out is None:
        label = origin.get("preset") or (os.path.splitext(os.path.basename(args.grammar))[0]
                                         if args.grammar else "spec")
        args.out = os.path.join("data", f"{label}-g{origin.get('grammar_seed')}-seed{args.seed}")
    out_dir = args.out
    kw = dict(n_tokens=args.tokens, doc_tokens=args.doc_tokens, seed=args.seed,
              shard_docs=args.shard_docs, separator=args.separator, dtype=args.dtype,
              max_depth=args.max_depth, max_sentence_tokens=args.max_sentence_tokens,
              overwrite=args.overwrite, progress=not args.quiet, origin=origin,
              fmt=args.shard_format)
    if args.engine == "ray":
        from pygzlaw.sampler.ray_engine import generate_ray
        from pygzlaw.scan.ray_engine import require_ray

        try:
            require_ray()
        except ImportError as e:
            print(f"pygzlaw generate: error: {e}", file=sys.stderr)
            return 2
        args.threads = max(args.threads, 1)  # -1 (all cores) means nothing per task: one CPU each
        res = generate_ray(grammar, out_dir, address=args.address, task_threads=args.threads,
                           threads=args.threads, **kw)
    else:
        if args.address is not None:
            raise ValueError("--address needs --engine ray")
        res = write_dataset(grammar, out_dir, threads=args.threads, **kw)
    stats, manifest, total = res["stats"], res["manifest"], res["total"]
    entropy_bits, n_resumed = res["entropy_bits"], res["n_resumed"]
    n_shards, n_docs, doc_tokens = stats["n_shards"], stats["n_docs"], manifest["doc_tokens"]
    if args.json:
        print(json.dumps({"out": out_dir, **stats}, indent=2))
    else:
        def fmt(x):
            return "-" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.4g}")
        print(f"dataset        {out_dir}  ({n_shards} shards, {n_resumed} resumed; "
              f"{manifest['dtype']}, vocab {manifest['vocab_size']})")
        print(f"grammar        {res['grammar_repr']}  spectral radius {stats['spectral_radius']:.3f}")
        print(f"documents      {n_docs:,} x {doc_tokens} tokens = {n_docs * doc_tokens:,} tokens")
        print(f"sentences      {total.n_sentences:,}  rejected {total.n_rejected:,} "
              f"(rate {total.rejection_rate:.3%}; depth {total.n_rejected_depth:,}, "
              f"length {total.n_rejected_length:,})")
        print(f"throughput     {fmt(stats['tokens_per_s'])} tokens/s sampling, "
              f"{fmt(stats['tokens_per_s_end_to_end'])} tokens/s with writing "
              f"({stats['threads']} threads)")
        print(f"unigram H      {entropy_bits:.4f} bits/token over {stats['n_token_ids_seen']} ids")
        print(f"gzip ratio     median {stats['gzip_ratio_median']:.4f}, std "
              f"{stats['gzip_ratio_std']:.4f} over {stats['gzip_sample_docs']} random documents")
    if not math.isfinite(entropy_bits):  # pragma: no cover - would mean empty counts
        return 1
    return 0
