"""Training: LLaMA-style GPT runs on PCFG data, each ending in a RunRecord.

``train(TrainConfig(...))`` runs one training job (single process, or FSDP2
under torchrun) and returns its :class:`RunRecord`; ``pygzlaw train`` is the
command line. ``TrainConfig`` and ``RunRecord`` import no torch.
"""
from __future__ import annotations

from pygzlaw.train.config import NonFiniteLossError, RunRecord, TrainConfig

__all__ = ["TrainConfig", "RunRecord", "NonFiniteLossError", "train"]


def train(config: TrainConfig, *, on_step=None) -> RunRecord:
    """Run one training job and return its record.

    Args:
        config: a TrainConfig (validated here).
        on_step: optional callback ``on_step(metrics: dict)`` called on rank 0 after each
            logged step with the metrics.jsonl row (step, loss, lr, tokens_per_s, ...).

    Returns:
        RunRecord (also written to ``config.out_dir/record.json`` when out_dir is set).

    Raises:
        ValueError: a bad configuration, naming the field (model vocabulary smaller than the
            data's largest id, batch_docs not divisible by the number of ranks, ...).
        NonFiniteLossError: (a FloatingPointError) a non-finite loss, naming the step; the last
            good checkpoint is kept.
    """
    from pygzlaw.train.loop import train as _train

    return _train(config, on_step=on_step)
