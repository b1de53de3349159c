"""The case shared by tests/train/test_parallelize.py and its worker processes: a tiny GPT,
fixed global batches, and a few AdamW steps in which each rank takes its share of the rows."""
import torch

from pygzlaw.model import ModelConfig

# vocab 37 is odd: the embedding and head shard unevenly (19 + 18 rows) over 2 ranks
CONFIGS = {
    "untied": ModelConfig(vocab_size=37, seq_len=16, d_model=32, n_layers=2, n_heads=2,
                          kernels="torch"),
    "tied": ModelConfig(vocab_size=37, seq_len=16, d_model=32, n_layers=2, n_heads=2,
                        tie_embeddings=True, kernels="torch"),
}
SEED = 11
STEPS = 3
GLOBAL_BATCH = 4


def batches():
    """Fresh random inputs each step; target = (3·input + 1) mod 37, learnable in a few steps."""
    g = torch.Generator().manual_seed(99)
    idx = [torch.randint(0, 37, (GLOBAL_BATCH, 16), generator=g) for _ in range(STEPS)]
    return [(x, (3 * x + 1) % 37) for x in idx]


def _full(t):
    return (t.full_tensor() if hasattr(t, "full_tensor") else t).detach().clone()


def train_steps(model, rank: int = 0, world: int = 1, all_reduce_mean=None):
    """AdamW steps on this rank's rows of each global batch.

    With equal rows per rank, FSDP's averaged gradients equal the global batch's gradient.
    Returns (global mean loss per step, the first step's full gradients by parameter name).
    lr 1e-3: Adam divides by sqrt(v), so rounding in near-zero gradients moves a weight by
    up to ~lr times their relative error; 1e-3 keeps that under the 1e-5 the test allows.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    rows = GLOBAL_BATCH // world
    losses, first_grads = [], None
    for idx, tgt in batches():
        part = slice(rank * rows, (rank + 1) * rows)
        loss = model(idx[part], tgt[part])
        loss.backward()
        if first_grads is None:
            first_grads = {n: _full(p.grad) for n, p in model.named_parameters()}
        opt.step()
        opt.zero_grad(set_to_none=True)
        value = loss.detach().float()
        if all_reduce_mean is not None:
            value = all_reduce_mean(value)
        losses.append(value.item())
    return losses, first_grads
