"""Shared helpers for the trainer tests: tiny configurations (fast on a 2-core CPU), a free port."""
import socket

from pygzlaw.train import TrainConfig

SEQ = 16          # tokens per document
BATCH = 4         # documents per micro-batch


def tiny(**changes) -> TrainConfig:
    """w16 (1 layer, d 16) on vocab300-1 (301 ids), 16-token documents, fp32 on CPU."""
    base = dict(model="w16", grammar="vocab300-1", n_tokens=6 * BATCH * SEQ, batch_docs=BATCH,
                seq_len=SEQ, lr=1e-2, val_docs=8, device="cpu", threads=1, progress=False,
                h_docs=0)
    base.update(changes)
    return TrainConfig(**base)


def losses_of(config) -> tuple[list[float], object]:
    """(per-step training losses, RunRecord) of one in-process run."""
    from pygzlaw.train import train

    rows = []
    record = train(config, on_step=rows.append)
    return [r["loss"] for r in rows], record


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a rendezvous of local ranks)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
