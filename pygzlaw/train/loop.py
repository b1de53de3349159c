"""The training loop: build, (shard), train, validate, checkpoint, record.

One function, :func:`train`, runs in a single process or under ``torchrun`` (RANK,
WORLD_SIZE, LOCAL_RANK in the environment: gloo on CPU, NCCL on GPU; the model is then
built on the meta device, sharded with FSDP2 by ``pygzlaw.train.parallelize``,
materialised with ``to_empty`` and initialised by ``GPT.init_weights``, which gives the
same weights for any number of ranks).

Per optimizer step s (global batch B = batch_docs · grad_accum documents, see
``pygzlaw.train.data`` for which documents): for each micro-batch, loss = mean next-token
cross-entropy of doc[1:] given doc[:-1]; (loss / grad_accum).backward(); then gradient
clipping, the learning rate of step s, AdamW. The loss is reduced over ranks and checked
every step before the optimizer applies it, so a non-finite loss stops the run with the
model still at its last good state.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import time
import warnings

import torch

from pygzlaw.train import checkpoint as ckpt
from pygzlaw.train.config import COMPILE_AUTO_MIN_FLOPS, NonFiniteLossError, RunRecord, TrainConfig
from pygzlaw.train.data import Prefetcher, make_sources, measure_h, rank_slice
from pygzlaw.train.data import VAL_FIRST_DOC

__all__ = ["train", "lr_at", "NonFiniteLossError", "PEAK_BF16_FLOPS", "peak_flops"]

# Dense bf16 peak FLOP/s per device (vendor datasheets; ../shared/reference/trainer.md).
PEAK_BF16_FLOPS = {"A100": 312e12, "H100": 989e12, "H200": 989e12}


def peak_flops(device: torch.device) -> float | None:
    """Peak dense bf16 FLOP/s of a CUDA device from PEAK_BF16_FLOPS, None when unknown/CPU."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16_FLOPS.items():
        if key in name:
            return value
    return None


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based).

    Linear warmup over ``warmup_steps`` (lr·(s+1)/warmup), then cosine decay from lr to
    lr·min_lr_ratio: lr_min + (lr - lr_min)·(1 + cos(π·p))/2 with
    p = (s - warmup) / (n_steps - warmup), the Hugging Face cosine schedule the paper's
    training code uses (Pandey 2024 §4: cosine to 0, no warmup).
    """
    peak, n, w = config.lr, config.n_steps, config.warmup_steps
    if step < w:
        return peak * (step + 1) / w
    p = (step - w) / max(1, n - w)
    lo = peak * config.min_lr_ratio
    return lo + (peak - lo) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, p)))


# ---------------------------------------------------------------------------
# setup helpers

def _dist_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment (1 process without it)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as exc:
        raise ValueError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers ({exc})") from None
    return rank, world, local


def _resolve_device(config: TrainConfig, local_rank: int) -> torch.device:
    want = config.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={config.device!r} but torch.cuda.is_available() is False; "
                             "use --device cpu")
        dev = torch.device(want if ":" in want else f"cuda:{local_rank}")
        torch.cuda.set_device(dev)
        return dev
    return torch.device("cpu")


def _resolve_dtype(config: TrainConfig, device: torch.device) -> torch.dtype:
    if config.dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[config.dtype]


def _resolve_model_config(config: TrainConfig, vocab_size: int):
    """ModelConfig for the run; refuses a vocabulary smaller than the data's."""
    from pygzlaw.model import ModelConfig, model_config

    if isinstance(config.model, str):
        try:
            mcfg = model_config(config.model, vocab_size=vocab_size, seq_len=config.seq_len,
                                kernels=config.kernels)
        except ValueError as exc:
            raise ValueError(f"model={config.model!r}: {exc}") from None
    elif isinstance(config.model, ModelConfig):
        mcfg = config.model.validate()
        if mcfg.vocab_size < vocab_size:
            raise ValueError(
                f"model vocab_size={mcfg.vocab_size} is smaller than the data's vocabulary "
                f"({vocab_size} ids: largest id {vocab_size - 1}); set ModelConfig.vocab_size "
                f">= {vocab_size}")
        if mcfg.seq_len < config.seq_len - 1:
            raise ValueError(f"model seq_len={mcfg.seq_len} is shorter than the inputs "
                             f"(seq_len - 1 = {config.seq_len - 1} tokens); raise ModelConfig.seq_len")
        if mcfg.kernels != config.kernels and config.kernels != "auto":
            import dataclasses

            mcfg = dataclasses.replace(mcfg, kernels=config.kernels)
    else:
        raise ValueError(f"model={config.model!r} must be a preset name or a ModelConfig")
    return mcfg


# Fields that must match for a resume to continue the same run (the others, such as threads,
# progress, validation and checkpoint cadence, may change between the two halves).
RESUME_KEYS = ("model", "grammar", "grammar_seed", "data_seed", "seed", "batch_docs", "seq_len",
               "grad_accum", "lr", "min_lr_ratio", "warmup_steps", "weight_decay", "betas",
               "grad_clip", "n_tokens", "data_dir", "separator", "dtype", "kernels")


def _check_same_run(path: str, config: TrainConfig) -> None:
    with open(os.path.join(path, "meta.json"), encoding="utf-8") as f:
        old = json.load(f).get("config", {})
    new = config.to_dict()
    diffs = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in RESUME_KEYS
             if k in old and old.get(k) != new.get(k)]
    if diffs:
        raise ValueError(f"resume: {path} was written by a different run ({'; '.join(diffs)}); "
                         "rerun with the same settings, or choose another out_dir")


class _Run:
    """State of one training run (kept together so helpers stay small)."""


def _build_model(mcfg, run, config: TrainConfig):
    if run.fsdp:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy

        from pygzlaw.train.parallelize import build_model

        mesh = init_device_mesh(run.device.type, (run.world_size,))
        mp = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
              if run.dtype == torch.bfloat16 else MixedPrecisionPolicy())
        # meta build -> FSDP2 -> to_empty -> init_weights
        return build_model(mcfg, run.device, seed=config.seed, mesh=mesh, mp_policy=mp)
    from pygzlaw.model import GPT

    with torch.device(run.device):
        model = GPT(mcfg)
    model.init_weights(config.seed)
    return model


def _make_optimizer(model, config: TrainConfig, device: torch.device, fsdp: bool):
    kwargs = dict(lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)
    # fused AdamW: one kernel over all parameters (CPU too: 0.15 vs 0.60 ms per step for
    # w64's 121K parameters, one thread); FSDP2's DTensor parameters on CPU take foreach
    if device.type == "cuda" or not fsdp:
        kwargs["fused"] = True
    else:
        kwargs["foreach"] = True
    return torch.optim.AdamW(model.parameters(), **kwargs)


def _truncate_metrics(path: str, step: int) -> None:
    """Keep the metrics.jsonl rows of steps <= ``step`` (the checkpoint a run resumes from): the
    stopped process logged steps past it, which the resumed run logs again. Atomic rewrite."""
    from pygzlaw.atomic import write_text

    keep = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line cut short by the kill
            if not row.get("final") and int(row.get("step", 0)) <= step:
                keep.append(line if line.endswith("\n") else line + "\n")
    write_text(path, "".join(keep))


def _have_cxx() -> bool:
    """Inductor's CPU backend builds C++: is there a compiler to build it with?"""
    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "c++", "clang++") if c)


def _resolve_compile(config: TrainConfig, run, model_flops: float) -> bool:
    """Whether training steps run under torch.compile (see TrainConfig.compile).

    "auto" compiles only where it was measured to pay: single-process CPU runs of at least
    COMPILE_AUTO_MIN_FLOPS model FLOPs (the decision depends on the config alone, so a
    resumed run decides as the uninterrupted one did), with PyTorch kernels (the Triton
    interpreter does not compile) and a C++ compiler present.
    """
    if config.compile != "auto":
        return config.compile == "on"
    return (run.device.type == "cpu" and not run.fsdp and config.kernels != "triton"
            and model_flops >= COMPILE_AUTO_MIN_FLOPS and _have_cxx())


def _step_losses(step_model, model, dev: torch.Tensor, config: TrainConfig, run) -> torch.Tensor:
    """Forward and backward of one step's micro-batches; returns the sum of their mean losses.

    dev: (grad_accum, local_docs, seq_len) int64 on the device.
    """
    loss_sum = torch.zeros((), dtype=torch.float32, device=run.device)
    for m in range(config.grad_accum):
        if run.fsdp and config.grad_accum > 1:
            model.set_requires_gradient_sync(m == config.grad_accum - 1)
        docs = dev[m]                                                    # (local_docs, seq_len)
        loss = _micro_loss(step_model, docs[:, :-1], docs[:, 1:], run.autocast)
        (loss / config.grad_accum).backward()
        loss_sum += loss.detach().float()
    return loss_sum


def _micro_loss(model, x, y, autocast) -> torch.Tensor:
    """Mean loss of one micro-batch (a seam for tests that inject a non-finite loss)."""
    with autocast:
        return model(x, y)


def _all_reduce_mean(t: torch.Tensor, run) -> torch.Tensor:
    if run.world_size > 1:
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        t = t / run.world_size
    return t


@torch.no_grad()
def _validate(model, val_docs: torch.Tensor, chunk_docs: int, run) -> float:
    """Mean loss (nats/token) over this rank's validation documents, averaged over ranks.

    val_docs: (n_local, seq_len) int64 on the device; every rank holds the same count, so
    every rank runs the same number of forwards (FSDP collectives stay matched).
    """
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=run.device)
    n = val_docs.shape[0]
    for i in range(0, n, chunk_docs):
        docs = val_docs[i:i + chunk_docs]
        loss = _micro_loss(model, docs[:, :-1], docs[:, 1:], run.autocast)
        total += loss.double() * docs.shape[0]
    total = _all_reduce_mean(total, run)
    if was_training:
        model.train()
    return float(total.item() / n)


def _peak_memory(device: torch.device) -> int | None:
    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None


# ---------------------------------------------------------------------------

def train(config: TrainConfig, *, on_step=None) -> RunRecord:
    """Run one training job; see :func:`pygzlaw.train.train` for the contract."""
    t_start = time.perf_counter()
    config.validate()
    rank, world_size, local_rank = _dist_env()
    if world_size > 1 and config.batch_docs % world_size:
        raise ValueError(f"batch_docs={config.batch_docs} is not divisible by the number of "
                         f"ranks ({world_size}); use a multiple of {world_size}")
    if world_size > 1 and config.val_docs % world_size:
        raise ValueError(f"val_docs={config.val_docs} is not divisible by the number of ranks "
                         f"({world_size}); use a multiple of {world_size}")
    if config.threads is not None:
        torch.set_num_threads(config.threads)

    run = _Run()
    run.rank, run.world_size = rank, world_size
    run.device = _resolve_device(config, local_rank)
    run.dtype = _resolve_dtype(config, run.device)
    own_pg = False
    if world_size > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if run.device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend, device_id=run.device
                                             if run.device.type == "cuda" else None)
        own_pg = True
    run.fsdp = world_size > 1
    try:
        record = _train(config, run, on_step, t_start)
    except BaseException:
        if own_pg:  # no barrier: a rank that failed alone would leave the others waiting
            torch.distributed.destroy_process_group()
        raise
    if own_pg:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return record


def _train(config: TrainConfig, run, on_step, t_start: float) -> RunRecord:
    from pygzlaw import __version__
    from pygzlaw.atomic import write_json
    from pygzlaw.model import chinchilla_flops_per_token, count_params, train_flops_per_token

    is_main = run.rank == 0
    if run.device.type == "cuda":  # this run's peak, not the process's (bench, study workers)
        torch.cuda.reset_peak_memory_stats(run.device)
    sources = make_sources(config)
    mcfg = _resolve_model_config(config, sources.vocab_size)
    counts = count_params(mcfg)
    flops_per_token = train_flops_per_token(mcfg)
    n_steps = config.n_steps
    tokens_per_step = config.tokens_per_step

    # bf16 autocast for single-process GPU runs; FSDP2's MixedPrecisionPolicy casts instead
    if run.dtype == torch.bfloat16 and not run.fsdp:
        run.autocast = torch.autocast(run.device.type, dtype=torch.bfloat16)
    else:
        run.autocast = contextlib.nullcontext()

    model = _build_model(mcfg, run, config)
    optimizer = _make_optimizer(model, config, run.device, run.fsdp)
    start_step = 0
    resumed_from = None
    train_loss = float("nan")
    path = ckpt.latest(config.out_dir) if config.out_dir is not None else None
    if path is not None and not config.resume:
        raise ValueError(f"out_dir={config.out_dir!r} holds checkpoints of an earlier run "
                         f"({os.path.basename(path)}); resume=True continues it, or "
                         "choose another out_dir")
    if path is not None:
        _check_same_run(path, config)
        meta = ckpt.load(path, model, optimizer, fsdp=run.fsdp)
        start_step, resumed_from = int(meta["step"]), path
        if meta.get("train_loss") is not None:
            train_loss = float(meta["train_loss"])
        if start_step > n_steps:
            raise ValueError(f"resume: {path} is past this run's {n_steps} steps; raise "
                             "n_tokens or use a new out_dir")
        done_record = os.path.join(config.out_dir, "record.json")
        if start_step == n_steps and os.path.exists(done_record):
            # already finished: its record stands (rerunning would log a 0-token "run")
            with open(done_record, encoding="utf-8") as f:
                return RunRecord.from_dict(json.load(f))
    compiled = _resolve_compile(config, run, flops_per_token * n_steps * tokens_per_step)
    step_model = torch.compile(model) if compiled else model

    # validation documents: this rank's contiguous share of [2**40, 2**40 + val_docs)
    val_off, val_n = rank_slice(config.val_docs, run.rank, run.world_size)
    val_host = torch.empty((val_n, config.seq_len), dtype=torch.int32)
    if val_n:
        sources.val.fill(val_host.numpy(), VAL_FIRST_DOC + val_off)
    val_docs = val_host.to(run.device).long()
    # no activations are kept for backward here: up to 64 documents per forward (fewer calls)
    val_chunk = max(config.batch_docs // run.world_size, min(val_n, 64), 1)
    H = measure_h(sources, config.h_docs)  # cached per grammar: ~30 ms for 1000 documents

    metrics_path = None
    if config.out_dir is not None and is_main:
        os.makedirs(config.out_dir, exist_ok=True)
        metrics_path = os.path.join(config.out_dir, "metrics.jsonl")
        if start_step == 0 and os.path.exists(metrics_path):
            os.unlink(metrics_path)  # a fresh run replaces an old log
        elif os.path.exists(metrics_path):
            _truncate_metrics(metrics_path, start_step)
    mfu_peak = peak_flops(run.device)

    def mfu(tok_s: float) -> float | None:
        return tok_s * flops_per_token / (mfu_peak * run.world_size) if mfu_peak else None

    bar = None
    if config.progress and is_main and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=n_steps, initial=start_step, unit="step", file=sys.stderr,
                   desc=f"{config.model_name} {sources.grammar_label}")

    pin = run.device.type == "cuda"
    prefetch = Prefetcher(sources.train, first_step=start_step, n_steps=n_steps,
                          batch_docs=config.batch_docs, grad_accum=config.grad_accum,
                          rank=run.rank, world_size=run.world_size, pin_memory=pin)
    val_loss = None
    last_ckpt = resumed_from
    t_loop = time.perf_counter()
    t_log, steps_since_log = t_loop, 0
    first_step_s = 0.0
    pending_release = None  # (slot, cuda event) of the previous step's copy
    log_f = open(metrics_path, "a", encoding="utf-8") if metrics_path else None
    try:
        model.train()
        for step in range(start_step, n_steps):
            host, slot = prefetch.get(step)
            dev = host.to(run.device, non_blocking=True)
            if run.device.type == "cuda":
                ev = torch.cuda.Event()
                ev.record()
                if pending_release is not None:
                    pending_release[1].synchronize()
                    prefetch.release(pending_release[0])
                pending_release = (slot, ev)
                dev = dev.long()
            else:
                dev = dev.long()  # a copy: the host slot is free again
                prefetch.release(slot)
            lr = lr_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            try:  # a compile happens in the first step; "auto" falls back to eager if it fails
                loss_sum = _step_losses(step_model, model, dev, config, run)
            except Exception as exc:  # noqa: BLE001 - any compiler failure
                if not (compiled and config.compile == "auto" and step == start_step):
                    raise
                warnings.warn(f"compile='auto': torch.compile failed ({type(exc).__name__}: "
                              f"{str(exc)[:300]}); training eagerly instead (compile='off', "
                              "--compile off, skips the attempt)", RuntimeWarning, stacklevel=2)
                optimizer.zero_grad(set_to_none=True)
                step_model, compiled = model, False
                loss_sum = _step_losses(step_model, model, dev, config, run)
            step_loss = float(_all_reduce_mean(loss_sum / config.grad_accum, run).item())
            if not math.isfinite(step_loss):
                optimizer.zero_grad(set_to_none=True)
                kept = f"; the last good checkpoint is {last_ckpt}" if last_ckpt else \
                    "; no checkpoint was written before it"
                raise NonFiniteLossError(
                    f"training loss is {step_loss} at step {step + 1} of {n_steps} "
                    f"(lr {lr:.3g}){kept}; lower --lr or check the data")
            grad_norm = None
            if config.grad_clip > 0:
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            train_loss = step_loss
            done = step + 1
            if step == start_step:  # holds the compile and first-call costs (.item() synced)
                first_step_s = time.perf_counter() - t_loop
            steps_since_log += 1

            do_val = config.val_every_steps and done % config.val_every_steps == 0 and done < n_steps
            if do_val:
                val_loss = _validate(model, val_docs, val_chunk, run)
            if config.checkpoint_every_steps and done % config.checkpoint_every_steps == 0 \
                    and done < n_steps:
                last_ckpt = ckpt.save(config.out_dir, done, model, optimizer,
                                      config=config.to_dict(), fsdp=run.fsdp,
                                      train_loss=train_loss)
            if done % config.log_every_steps == 0 or do_val or done == n_steps:
                now = time.perf_counter()
                tok_s = steps_since_log * tokens_per_step / max(now - t_log, 1e-9)
                row = {"step": done, "loss": train_loss, "val_loss": val_loss if do_val else None,
                       "lr": lr, "tokens_per_s": tok_s,
                       "mfu": mfu(tok_s),
                       "data_wait_fraction": prefetch.wait_s / max(now - t_loop, 1e-9),
                       "grad_norm": float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor")
                                          else grad_norm) if grad_norm is not None else None,
                       "peak_memory_bytes": _peak_memory(run.device),
                       "elapsed_s": now - t_start}
                t_log, steps_since_log = now, 0
                if log_f is not None:
                    log_f.write(json.dumps(row) + "\n")
                    log_f.flush()
                if on_step is not None and run.rank == 0:
                    on_step(row)
                if bar is not None:
                    bar.set_postfix(loss=f"{train_loss:.4f}", refresh=False)
            if bar is not None:
                bar.update(1)
        if pending_release is not None:
            pending_release[1].synchronize()
        t_train = time.perf_counter() - t_loop
        val_loss = _validate(model, val_docs, val_chunk, run)
        if log_f is not None:
            log_f.write(json.dumps({"step": n_steps, "val_loss": val_loss, "final": True}) + "\n")
        if config.out_dir is not None and start_step < n_steps:
            ckpt.save(config.out_dir, n_steps, model, optimizer, config=config.to_dict(),
                      fsdp=run.fsdp, train_loss=train_loss)
    finally:
        prefetch.close()
        if log_f is not None:
            log_f.close()
        if bar is not None:
            bar.close()

    steps_run = n_steps - start_step
    tokens_done = steps_run * tokens_per_step
    tokens_per_s = tokens_done / t_train if t_train > 0 else 0.0
    rest_s = t_train - first_step_s  # the steps after the first
    tokens_per_s_steady = ((steps_run - 1) * tokens_per_step / rest_s
                           if steps_run > 1 and rest_s > 0 else None)
    compile_s = (max(first_step_s - rest_s / (steps_run - 1), 0.0)
                 if compiled and steps_run > 1 and rest_s > 0 else None)
    n_tokens = n_steps * tokens_per_step
    record = RunRecord(
        n_params=counts.total, n_params_non_embedding=counts.non_embedding, n_tokens=n_tokens,
        flops=chinchilla_flops_per_token(mcfg) * n_tokens,
        train_loss=train_loss, val_loss=val_loss, wall_s=time.perf_counter() - t_start,
        tokens_per_s=tokens_per_s,
        mfu=mfu(tokens_per_s),
        data_wait_fraction=prefetch.wait_s / t_train if t_train > 0 else 0.0,
        config=config.to_dict(), grammar=sources.grammar_label, grammar_seed=sources.grammar_seed,
        H=H, version=__version__, n_steps=n_steps, vocab_size=mcfg.vocab_size,
        world_size=run.world_size, peak_memory_bytes=_peak_memory(run.device),
        model_flops=flops_per_token * n_tokens, resumed_from_step=start_step,
        model_config=mcfg.to_dict(), compiled=compiled, tokens_per_s_steady=tokens_per_s_steady,
        compile_s=compile_s)
    if config.out_dir is not None and run.rank == 0:
        write_json(os.path.join(config.out_dir, "record.json"), record.to_dict())
    return record
