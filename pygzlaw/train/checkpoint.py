"""Checkpoints that resume exactly, written atomically.

Layout: ``out_dir/checkpoints/step-000120/`` holding ``meta.json`` (step, format, world
size, config) and either ``state.pt`` (single process: ``torch.save`` of model and
optimizer state dicts and the RNG states) or a ``torch.distributed.checkpoint`` directory
(FSDP2: sharded model and optimizer state through get/set_state_dict, loadable with any
number of ranks). Each is written to ``step-000120.tmp/`` and renamed when complete, so a
crash leaves the previous checkpoint intact and never a half-written one under a final
name. The step recorded is the number of optimizer steps done (the next step to run).
"""
from __future__ import annotations

import json
import os
import re
import shutil

import torch

from pygzlaw.atomic import write_json

__all__ = ["save", "load", "latest", "KEEP_LAST"]

KEEP_LAST = 2  # older checkpoints are removed once a newer one is complete
_STEP_RE = re.compile(r"^step-(\d{6,})$")


def _ckpt_root(out_dir: str) -> str:
    return os.path.join(out_dir, "checkpoints")


def latest(out_dir: str) -> str | None:
    """Path of the newest complete checkpoint in out_dir, or None."""
    root = _ckpt_root(out_dir)
    if not os.path.isdir(root):
        return None
    steps = sorted((int(m.group(1)), name) for name in os.listdir(root)
                   if (m := _STEP_RE.match(name)) and os.path.isfile(os.path.join(root, name, "meta.json")))
    return os.path.join(root, steps[-1][1]) if steps else None


def _is_dist() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def save(out_dir: str, step: int, model, optimizer, *, config: dict, fsdp: bool,
         train_loss: float | None = None) -> str:
    """Write the checkpoint after ``step`` optimizer steps; returns its final path.

    Every rank must call it under FSDP (collective); rank 0 renames and prunes.
    """
    root = _ckpt_root(out_dir)
    final = os.path.join(root, f"step-{step:06d}")
    tmp = final + ".tmp"
    rank = torch.distributed.get_rank() if _is_dist() else 0
    if rank == 0:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
        os.makedirs(tmp)
    meta = {"step": step, "format": "dcp" if fsdp else "torch",
            "world_size": torch.distributed.get_world_size() if _is_dist() else 1,
            "train_loss": train_loss, "config": config}
    if fsdp:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        torch.distributed.barrier()
        model_sd, optim_sd = get_state_dict(model, optimizer)
        dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=tmp)
        torch.distributed.barrier()
    else:
        state = {"model": model.state_dict(), "optim": optimizer.state_dict(),
                 "rng_cpu": torch.get_rng_state(),
                 "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
        torch.save(state, os.path.join(tmp, "state.pt"))
    if rank == 0:
        write_json(os.path.join(tmp, "meta.json"), meta)
        if os.path.isdir(final):  # a rerun reached the same step: replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
        _prune(root, keep=KEEP_LAST)
    if fsdp:
        torch.distributed.barrier()
    return final


def _prune(root: str, keep: int) -> None:
    steps = sorted((int(m.group(1)), name) for name in os.listdir(root)
                   if (m := _STEP_RE.match(name)))
    for _, name in steps[:-keep]:
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def load(path: str, model, optimizer, *, fsdp: bool) -> dict:
    """Restore model and optimizer state from ``path``; returns its meta dict (``step``: the
    step to continue from; ``train_loss``: the loss of the step before it).

    Raises:
        ValueError: the checkpoint's format does not match the run (a single-process
            ``torch`` checkpoint cannot be loaded into an FSDP run and vice versa).
    """
    with open(os.path.join(path, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    want = "dcp" if fsdp else "torch"
    if meta["format"] != want:
        raise ValueError(
            f"resume: {path} is a {meta['format']!r} checkpoint written with "
            f"{meta['world_size']} rank(s) but this run needs {want!r} "
            f"({'torchrun with 2+ ranks' if fsdp else 'a single process'}); resume it "
            f"{'in a single process' if meta['format'] == 'torch' else 'under torchrun with 2+ ranks'}, "
            "or use a new out_dir")
    if fsdp:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        model_sd, optim_sd = get_state_dict(model, optimizer)
        state = {"model": model_sd, "optim": optim_sd}
        dcp.load(state, checkpoint_id=path)
        set_state_dict(model, optimizer, model_state_dict=state["model"],
                       optim_state_dict=state["optim"])
    else:
        state = torch.load(os.path.join(path, "state.pt"), map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optim"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
    return meta
