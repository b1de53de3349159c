"""``pygzlaw score``: gzip compressibility statistics of a token array (.npy)."""
from __future__ import annotations

import argparse
import json

from pygzlaw._argtypes import thread_count, zlib_level


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score", help="gzip compressibility of token documents in a .npy file",
        description="Score each row of a 2-D integer .npy array (n_docs, doc_tokens) as one "
                    "document (tokens serialized as 4-byte big-endian signed ids by default, "
                    "Pandey 2024 section 3) and print the statistics as JSON. For text "
                    "corpora and PCFG shard directories use 'pygzlaw scan'.")
    p.add_argument("path", help=".npy file holding a 2-D integer array")
    p.add_argument("--sample", type=int, default=None, metavar="N",
                   help="score a random sample of N rows (the paper uses 1000); default: all")
    p.add_argument("--seed", type=int, default=0, help="seed of the row sample (default 0)")
    p.add_argument("--token-bytes", type=int, default=4, choices=(1, 2, 4, 8))
    p.add_argument("--byteorder", default="big", choices=("big", "little"))
    p.add_argument("--unsigned", action="store_true", help="serialize ids as unsigned")
    p.add_argument("--mode", default="exact", choices=("exact", "fast"))
    p.add_argument("--level", type=zlib_level, default=9,
                   help="zlib level for exact mode, 0-9 (default 9)")
    p.add_argument("--threads", type=thread_count, default=-1, help="threads (-1 = all cores)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the JSON there")
    p.set_defaults(func=_cmd_score)


def _cmd_score(args: argparse.Namespace) -> int:
    import numpy as np

    from pygzlaw.score import score_tokens
    from pygzlaw.score.stats import summarize

    if not str(args.path).endswith(".npy"):
        raise ValueError(f"{args.path}: pygzlaw score reads one 2-D .npy token array; for a "
                         f"dataset folder or shards in another format (.bin, .parquet, mds) use "
                         f"`pygzlaw scan DIR --out OUT`")
    try:
        arr = np.load(args.path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{args.path}: cannot load a .npy array ({exc})") from None
    if arr.ndim != 2:
        raise ValueError(f"{args.path}: array has shape {arr.shape}; need (n_docs, doc_tokens)")
    if 0 in arr.shape:
        raise ValueError(f"{args.path}: array has shape {arr.shape}; there is nothing to score "
                         "(need at least one row of at least one token)")
    rows = np.arange(arr.shape[0])
    if args.sample is not None:
        if args.sample < 1:
            raise ValueError(f"--sample {args.sample} must be >= 1")
        rng = np.random.default_rng(args.seed)
        rows = np.sort(rng.choice(arr.shape[0], size=min(args.sample, arr.shape[0]),
                                  replace=False))
    tokens = np.ascontiguousarray(arr[rows])
    if tokens.dtype.kind not in "iu":
        raise ValueError(f"{args.path}: dtype {tokens.dtype} is not an integer type; "
                         "pygzlaw score reads token ids (save them as an integer .npy)")
    _check_token_range(args, tokens, rows)
    s = score_tokens(tokens, token_bytes=args.token_bytes, byteorder=args.byteorder,
                     signed=not args.unsigned, mode=args.mode, level=args.level,
                     threads=args.threads)
    out = {"path": args.path, "n_docs": int(tokens.shape[0]),
           "doc_tokens": int(tokens.shape[1]), "mode": args.mode,
           "token_bytes": args.token_bytes, "stats": summarize(s.ratio)}
    out["stats"].pop("histogram")
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        from pygzlaw.atomic import write_json
        write_json(args.json, out)
    return 0


def _check_token_range(args: argparse.Namespace, tokens, rows) -> None:
    """Refuse ids that do not fit the serialization, naming the row of the file, the token,
    its value and the flags (--unsigned, --token-bytes) that make it fit."""
    import numpy as np

    from pygzlaw.score import _token_range

    if tokens.size == 0:
        return
    signed = not args.unsigned
    lo, hi = _token_range(args.token_bytes, signed)
    vmin, vmax = int(tokens.min()), int(tokens.max())
    if lo <= vmin and vmax <= hi:
        return
    bad = (tokens < lo) | (tokens > hi)
    r, j = np.unravel_index(int(np.argmax(bad)), tokens.shape)
    v = int(tokens[r, j])
    fixes = []
    if signed and vmin >= 0 and vmax <= _token_range(args.token_bytes, False)[1]:
        fixes.append("pass --unsigned")
    for w in (1, 2, 4, 8):
        if w > args.token_bytes:
            wlo, whi = _token_range(w, signed)
            if wlo <= vmin and vmax <= whi:
                fixes.append(f"pass --token-bytes {w}")
                break
    if not signed and vmin < 0:
        fixes.append("drop --unsigned (negative ids need signed serialization)")
    kind = "signed" if signed else "unsigned"
    raise ValueError(f"{args.path}: row {int(rows[r])} token {int(j)} = {v} does not fit "
                     f"{args.token_bytes}-byte {kind} ids (range {lo}..{hi}); "
                     f"{' or '.join(fixes) if fixes else 'ids must fit 8 bytes'}")
