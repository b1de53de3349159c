"""What a study worker process runs: one training run through the trainer's Python API.

``python -m pygzlaw.study.worker RUN_FN THREADS PARENT_PID RESULT_FD`` is the worker process
(see pygzlaw.study.executor.worker_main).
"""
from __future__ import annotations

import sys

__all__ = ["train_run"]


def train_run(payload: dict, *, threads: int = 1) -> dict:
    """Train one run and return its RunRecord as a dict.

    Args:
        payload: TrainConfig.to_dict() of the run.
        threads: torch intra-op threads for this worker.

    Returns:
        RunRecord.to_dict().
    """
    import torch

    from pygzlaw.train import TrainConfig, train

    torch.set_num_threads(threads)
    cfg = TrainConfig.from_dict({**payload, "threads": threads, "progress": False})
    return train(cfg).to_dict()


if __name__ == "__main__":
    from pygzlaw.study.executor import worker_main

    sys.exit(worker_main())
