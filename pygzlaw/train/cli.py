"""``pygzlaw train``: one training run from the command line, ending in its run record.

Single process::

    pygzlaw train --model w32 --grammar vocab300-3 --tokens 2M --device cpu --out runs/w32

Data parallel (FSDP2; gloo on CPU, NCCL on GPU), one process per device::

    torchrun --nproc_per_node=8 -m pygzlaw train --model gpt-275m --grammar main-3 --tokens 1G

Multi-node: torchrun's usual flags (``--nnodes N --node_rank R --rdzv_backend c10d
--rdzv_endpoint HOST:PORT``); every node runs the same command.
"""
from __future__ import annotations

import os
import re
import sys

# TrainConfig field → the flag that sets it (error messages name the flag).
FLAGS = {
    "model": "--model", "grammar": "--grammar", "n_tokens": "--tokens",
    "grammar_seed": "--grammar-seed", "data_seed": "--data-seed", "seed": "--seed",
    "batch_docs": "--batch-docs", "seq_len": "--seq-len", "grad_accum": "--grad-accum",
    "lr": "--lr", "min_lr_ratio": "--min-lr-ratio", "warmup_steps": "--warmup-steps",
    "weight_decay": "--weight-decay", "grad_clip": "--grad-clip", "val_docs": "--val-docs",
    "val_every_steps": "--val-every", "device": "--device", "dtype": "--dtype",
    "threads": "--threads", "kernels": "--kernels", "compile": "--compile", "out_dir": "--out",
    "checkpoint_every_steps": "--checkpoint-every", "data_dir": "--data", "resume": "--resume",
    "h_docs": "--h-docs",
}


def _flag_message(msg: str) -> str:
    """Rewrite ``field=`` / ``field `` mentions of TrainConfig fields as their flags."""
    for field, flag in sorted(FLAGS.items(), key=lambda kv: -len(kv[0])):
        msg = re.sub(rf"(?<![\w.-]){field}(?==| needs| is| or\b| \(|[;,)]|$)", flag, msg)
    msg = re.sub(r"(--[\w-]+)=True\b", r"\1", msg)          # switches: --resume, not --resume=True
    return msg.replace("an int >= 1 or None", "an int >= 1")  # None is the flag left out


def register(subparsers) -> None:
    """Add ``train`` to the ``pygzlaw`` command line."""
    from pygzlaw.sampler.cli import parse_count

    p = subparsers.add_parser(
        "train", help="train a GPT on PCFG data and print its run record",
        description="Train one LLaMA-style GPT on documents sampled from a PCFG (or a "
                    "pygzlaw generate dataset) and print the run record (N, D, C, losses, H). "
                    "Under torchrun --nproc_per_node=K it trains data-parallel with FSDP2.")
    p.add_argument("--model", required=True,
                   help="gpt-4m, gpt-9m, gpt-20m, gpt-59m, gpt-275m, gpt-1.4b, or a size-family "
                        "width w<multiple of 8> (w16, w32, w64, ...)")
    p.add_argument("--grammar", default=None,
                   help="grammar preset (main-1..6, vocab300-*, neareq-*) or a grammar file; "
                        "optional with --data")
    p.add_argument("--grammar-seed", type=int, default=0, help="random grammar seed (default 0)")
    p.add_argument("--renormalize", action="store_true",
                   help="--grammar FILE in NLTK PCFG text: rescale each nonterminal's "
                        "probabilities to sum to 1 even when off by more than NLTK's 0.01; the "
                        "run trains on (and records) the rescaled grammar, written to "
                        "--out/grammar-renormalized.json")
    p.add_argument("--tokens", type=parse_count, required=True,
                   help="D: training tokens, e.g. 20M; steps = tokens // (batch docs x grad "
                        "accum x seq len)")
    p.add_argument("--data", metavar="DIR", help="train on a pygzlaw generate dataset instead of "
                                                  "sampling on the fly")
    p.add_argument("--data-seed", type=int, default=1234, help="sampler seed (default 1234)")
    p.add_argument("--seed", type=int, default=0, help="model initialisation seed (default 0)")
    p.add_argument("--batch-docs", type=int, default=32,
                   help="documents per micro-batch over all ranks (default 32, the paper's)")
    p.add_argument("--seq-len", type=int, default=256, help="tokens per document (default 256)")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step (default 1)")
    p.add_argument("--lr", type=float, default=5e-5, help="peak learning rate (default 5e-5)")
    p.add_argument("--min-lr-ratio", type=float, default=0.0,
                   help="final lr / peak lr of the cosine schedule (default 0)")
    p.add_argument("--warmup-steps", type=int, default=0, help="linear warmup steps (default 0)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay (default 0)")
    p.add_argument("--grad-clip", type=float, default=1.0, help="max grad norm, 0 = off (default 1)")
    p.add_argument("--val-docs", type=int, default=256, help="validation documents (default 256)")
    p.add_argument("--val-every", type=int, default=0,
                   help="validate every K steps (default 0: at the end only)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16"),
                   help="auto = bf16 autocast on GPU, fp32 on CPU")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default torch's)")
    p.add_argument("--kernels", default="auto", choices=("auto", "torch", "triton"),
                   help="fused kernels: auto = Triton on CUDA, PyTorch elsewhere")
    p.add_argument("--compile", nargs="?", const="on", default="auto", choices=("auto", "on", "off"),
                   help="torch.compile the training step: auto (default) = on for single-process "
                        "CPU runs long enough to repay the compile (>= 3e13 model FLOPs), off "
                        "otherwise (torchrun, CUDA, short runs); --compile alone = on")
    p.add_argument("--out", metavar="DIR",
                   help="write metrics.jsonl, record.json and checkpoints here")
    p.add_argument("--checkpoint-every", type=int, default=0,
                   help="checkpoint every K steps (needs --out; default 0: at the end)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint in --out (a finished run prints its "
                        "record; with no checkpoint there, the run starts from step 0)")
    p.add_argument("--h-docs", type=int, default=1000,
                   help="documents for H, the median gzip ratio (default 1000; 0 = skip)")
    p.add_argument("--json", action="store_true", help="print the full record as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def _config_from_args(args):
    from pygzlaw.train.config import TrainConfig

    grammar = args.grammar
    if grammar is None:
        if args.data is None:
            raise ValueError("--grammar is required (a preset such as main-3, or a grammar "
                             "file), unless --data DIR gives a dataset")
        grammar = "dataset"
    return TrainConfig(
        model=args.model, grammar=grammar, n_tokens=args.tokens, grammar_seed=args.grammar_seed,
        data_seed=args.data_seed, seed=args.seed, batch_docs=args.batch_docs,
        seq_len=args.seq_len, grad_accum=args.grad_accum, lr=args.lr,
        min_lr_ratio=args.min_lr_ratio, warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay, grad_clip=args.grad_clip, val_docs=args.val_docs,
        val_every_steps=args.val_every, device=args.device, dtype=args.dtype,
        threads=args.threads, kernels=args.kernels, compile=args.compile, out_dir=args.out,
        checkpoint_every_steps=args.checkpoint_every, progress=not args.quiet,
        data_dir=args.data, resume=args.resume, h_docs=args.h_docs)


def _renormalized_grammar(args, tmp_dir: str, world: int) -> str:
    """--renormalize: the grammar file rescaled (sampler.cli.load_grammar_file) and written as
    pygzlaw JSON to --out/grammar-renormalized.json (``tmp_dir`` without --out); its path, which
    the run then trains on, so the record names the grammar actually sampled."""
    from pygzlaw.grammar import PRESETS, save
    from pygzlaw.sampler.cli import load_grammar_file

    if args.grammar is None or args.grammar in PRESETS:
        raise ValueError("--renormalize applies to --grammar FILE (NLTK PCFG text); presets "
                         "already sum to 1")
    if not os.path.isfile(args.grammar):
        from pygzlaw.textio import not_a_file

        raise ValueError(f"--grammar {args.grammar!r}: {not_a_file(args.grammar, 'grammar')}")
    if args.out is None and world > 1:
        raise ValueError("--renormalize under torchrun needs --out DIR (every rank reads the "
                         "rescaled grammar from there)")
    grammar = load_grammar_file(args.grammar, renormalize=True)
    out = args.out or tmp_dir
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "grammar-renormalized.json")
    save(grammar, path)          # atomic; every rank writes the same bytes
    return path


def cmd_train(args) -> int:
    import json
    import tempfile

    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", "0") or 0)
    rc = 0
    tmp = tempfile.TemporaryDirectory(prefix="pygzlaw-train-") if args.renormalize else None
    try:
        if args.renormalize:
            src = args.grammar
            args.grammar = _renormalized_grammar(args, tmp.name, world)
            if rank == 0:
                print(f"pygzlaw train: {src} rescaled (--renormalize); training on {args.grammar}",
                      file=sys.stderr)
        config = _config_from_args(args).validate()
        from pygzlaw.train import train
        from pygzlaw.train.loop import NonFiniteLossError

        try:
            record = train(config)
        except NonFiniteLossError as exc:
            print(f"pygzlaw train: error: {exc}", file=sys.stderr)
            rc = 1
        except KeyboardInterrupt:
            if rank == 0:
                print(_interrupted_hint(args.out), file=sys.stderr)
            raise
        else:
            if rank == 0:
                if args.json:
                    print(json.dumps(record.to_dict(), indent=1))
                else:
                    _print_record(record)
    except ValueError as exc:
        if world == 1:
            raise ValueError(_flag_message(str(exc))) from None
        if rank == 0:
            print(f"pygzlaw train: error: {_flag_message(str(exc))}", file=sys.stderr)
        rc = 2
    finally:
        if tmp is not None:
            tmp.cleanup()
    if world > 1:
        # gloo can abort at interpreter exit after destroy_process_group (platform-notes.md)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    return rc


def _interrupted_hint(out_dir) -> str:
    """What Ctrl-C leaves behind: the last checkpoint, and how to continue from it."""
    from pygzlaw.train import checkpoint as ckpt

    last = ckpt.latest(out_dir) if out_dir else None
    if last is None:
        return ("pygzlaw train: stopped before any checkpoint"
                + ("" if out_dir else " (none are written without --out)")
                + "; --checkpoint-every K keeps one every K steps")
    return (f"pygzlaw train: stopped; the last checkpoint is {last}: the same command with "
            "--resume continues from it")


def _print_record(r) -> None:
    def fmt(x):
        if x is None:
            return "-"
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"

    print(f"model       {r.model_name}  N {r.n_params:,} ({r.n_params_non_embedding:,} "
          f"non-embedding), vocab {r.vocab_size}")
    print(f"data        {r.grammar} (grammar seed {r.grammar_seed})  H {fmt(r.H)}")
    print(f"trained     D {r.n_tokens:,} tokens in {r.n_steps} steps on {r.world_size} rank(s)"
          f"  C {r.flops:.3e} FLOPs (6ND)")
    print(f"loss        train {r.train_loss:.4f}  val {r.val_loss:.4f} nats/token")
    mfu = "-" if r.mfu is None else f"{100 * r.mfu:.1f}%"
    print(f"speed       {fmt(r.tokens_per_s)} tokens/s  MFU {mfu}  data wait "
          f"{100 * r.data_wait_fraction:.2f}%  wall {r.wall_s:.1f} s")
    if r.compiled and r.tokens_per_s_steady is not None:
        print(f"compiled    {fmt(r.tokens_per_s_steady)} tokens/s after the first step, which "
              f"compiled for {fmt(r.compile_s)} s (torch.compile; --compile off skips it)")
