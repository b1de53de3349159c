"""The GPT model stage: config, presets, parameter and FLOP counts (no torch needed), and the
``GPT`` module (torch; loaded on first use).

    from pygzlaw.model import model_config, count_params, GPT
    cfg = model_config("w32", vocab_size=300, seq_len=256)
    count_params(cfg).total        # N
    model = GPT(cfg)               # builds on the current default device

Importing this package does not import torch; ``GPT`` and ``gpt_forward_reference`` import it
when first touched. Parallelism is applied from outside (``pygzlaw.train.parallelize``).
"""
from pygzlaw.model.config import (
    KERNEL_IMPLS,
    PAPER_PARAMS,
    PAPER_PRESETS,
    ModelConfig,
    ParamCount,
    chinchilla_flops_per_token,
    count_params,
    family_shape,
    model_config,
    model_names,
    train_flops_per_token,
)

__all__ = [
    "KERNEL_IMPLS", "PAPER_PARAMS", "PAPER_PRESETS", "ModelConfig", "ParamCount",
    "chinchilla_flops_per_token", "count_params", "family_shape", "model_config",
    "model_names", "train_flops_per_token",
]  # GPT and gpt_forward_reference are left out so that `import *` does not load torch

_LAZY = {"GPT": "pygzlaw.model.gpt", "gpt_forward_reference": "pygzlaw.model.reference"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pygzlaw.model' has no attribute {name!r}")
