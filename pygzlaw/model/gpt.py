"""LLaMA-style GPT decoder (Pandey 2024 §4). Knows no parallelism: no torch.distributed here.

Read top to bottom: RMSNorm → Attention → FeedForward → Block → OutputHead → GPT.
Fused ops come only through :mod:`pygzlaw.kernels` with ``impl=cfg.kernels``.

Build for sharding (see ``pygzlaw.train.parallelize``): construct under
``torch.device("meta")``, shard, ``to_empty(device=...)``, then ``init_weights(seed)``, which
also fills the RoPE tables (non-persistent buffers, garbage after ``to_empty``).
"""
from __future__ import annotations

import hashlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from pygzlaw import kernels
from pygzlaw.model.config import ModelConfig

INIT_STD = 0.02  # GPT-2 / LLaMA reference init


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x²) + eps) · weight (Zhang & Sennrich 2019); fp32 math, x.dtype out."""

    def __init__(self, dim: int, eps: float, impl: str):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps
        self.impl = impl

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., d) -> (..., d)
        return kernels.rms_norm(x, self.weight, self.eps, impl=self.impl)


class Attention(nn.Module):
    """Causal multi-head self-attention with rotary embeddings (Su et al. 2021), no biases."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.head_dim = cfg.head_dim
        self.impl = cfg.kernels
        # q, k, v in one (3·d, d) matrix (3·d² weights, as three would be): fwd+bwd of the
        # projection 2.1× faster at d 64, 1.1× at d 128 than three matmuls (2 CPU threads, B·T 2048)
        self.wqkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.wo = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        qkv = self.wqkv(x).view(B, T, 3, self.n_heads, self.head_dim)   # (B, T, 3, H, hd)
        q, k, v = qkv.unbind(dim=2)                                      # each (B, T, H, hd)
        q, k = kernels.apply_rope(q, k, cos, sin, impl=self.impl)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))                  # (B, H, T, hd)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)      # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, d)                           # (B, T, d)
        return self.wo(y)


class FeedForward(nn.Module):
    """SwiGLU MLP (Shazeer 2020): w2(silu(x·w_gate) * (x·w_up)); three d×ffn matrices."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.impl = cfg.kernels
        # gate and up stacked in one (2·ffn, d) matrix: rows [0, ffn) gate, [ffn, 2·ffn) up
        self.w13 = nn.Linear(cfg.d_model, 2 * cfg.ffn_dim, bias=False)
        self.w2 = nn.Linear(cfg.ffn_dim, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w13(x).chunk(2, dim=-1)                          # each (B, T, ffn)
        return self.w2(kernels.swiglu(gate, up, impl=self.impl))        # (B, T, d)


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then h + ffn(norm(h))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.d_model, cfg.norm_eps, cfg.kernels)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.d_model, cfg.norm_eps, cfg.kernels)
        self.feed_forward = FeedForward(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), cos, sin)
        return h + self.feed_forward(self.ffn_norm(h))


class OutputHead(nn.Module):
    """Final RMSNorm and the (V, d) output projection, as one module so that it can be its
    own FSDP unit (its weights are gathered when its forward runs).

    With targets it returns the mean cross-entropy through the fused linear + CE kernel,
    which never holds the (B·T, V) logits at once; without, the logits.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps, cfg.kernels)
        self.output = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.impl = cfg.kernels

    def forward(self, h: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(h)                                                 # (B, T, d)
        if targets is None:
            return self.output(h)                                        # (B, T, V)
        weight = self.output.weight
        # (B·T, d) against (V, d); the kernel wants equal dtypes (autocast may leave h fp32)
        return kernels.fused_linear_cross_entropy(
            h.reshape(-1, h.shape[-1]).to(weight.dtype), weight, targets.reshape(-1),
            impl=self.impl)


def _param_seed(seed: int, name: str) -> int:
    """63-bit generator seed from (seed, parameter name): stable across processes and ranks."""
    digest = hashlib.sha256(f"pygzlaw-init:{int(seed)}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _shard_of(full: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """This rank's piece of ``full`` for a DTensor parameter (duck-typed: no torch.distributed
    import). DTensor's Shard(dim) splits like ``torch.chunk`` along dim over each mesh dim's
    ranks (uneven last shard, possibly empty); Replicate keeps the whole tensor."""
    mesh = param.device_mesh
    coord = mesh.get_coordinate()
    for mesh_dim, placement in enumerate(param.placements):
        if placement.is_shard():
            n = mesh.size(mesh_dim)
            chunks = torch.chunk(full, n, dim=placement.dim)
            i = coord[mesh_dim]
            if i < len(chunks):
                full = chunks[i]
            else:
                shape = list(full.shape)
                shape[placement.dim] = 0
                full = full.new_empty(shape)
        elif not placement.is_replicate():
            raise ValueError(f"init_weights: unsupported placement {placement} "
                             f"(expected Shard or Replicate)")
    return full


class GPT(nn.Module):
    """Decoder-only transformer over token ids.

    Parameter names (stable for checkpoints): ``tok_embeddings.weight``,
    ``layers.<i>.{attention_norm,ffn_norm}.weight``, ``layers.<i>.attention.{wqkv,wo}.weight``,
    ``layers.<i>.feed_forward.{w13,w2}.weight``, ``head.norm.weight``,
    ``head.output.weight`` (the same tensor as ``tok_embeddings.weight`` when tied).
    Count: :func:`pygzlaw.model.count_params`.

    Args:
        cfg: a ModelConfig (validated again here).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleDict({str(i): Block(cfg) for i in range(cfg.n_layers)})
        self.head = OutputHead(cfg)
        if cfg.tie_embeddings:
            self.head.output.weight = self.tok_embeddings.weight
        cos, sin = self._rope_tables(self.tok_embeddings.weight.device)
        self.register_buffer("rope_cos", cos, persistent=False)         # (T, hd/2) fp32
        self.register_buffer("rope_sin", sin, persistent=False)

    def _rope_tables(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        return kernels.rope_tables(self.cfg.seq_len, self.cfg.head_dim, self.cfg.rope_base,
                                   device=device)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits, or the mean next-token loss when targets are given.

        Args:
            idx: (B, T) int64 token ids in [0, vocab_size), T <= cfg.seq_len.
            targets: optional (B, T) int64; the target of position t (usually idx shifted by
                one); -100 is ignored.

        Returns:
            targets None: (B, T, vocab_size) logits in the compute dtype.
            otherwise: scalar fp32 mean cross-entropy in nats/token over non-ignored targets.

        Raises:
            ValueError: idx not 2-D, or T > cfg.seq_len, or targets' shape differs from idx's.
        """
        if idx.dim() != 2:
            raise ValueError(f"GPT.forward: idx must be (B, T) token ids, got shape "
                             f"{tuple(idx.shape)}")
        T = idx.shape[1]
        if T > self.cfg.seq_len:
            raise ValueError(f"GPT.forward: sequence length {T} exceeds ModelConfig.seq_len="
                             f"{self.cfg.seq_len}; build the model with a larger seq_len")
        if targets is not None and targets.shape != idx.shape:
            raise ValueError(f"GPT.forward: targets shape {tuple(targets.shape)} != idx shape "
                             f"{tuple(idx.shape)}")
        h = self.tok_embeddings(idx)                                     # (B, T, d)
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]                  # (T, hd/2)
        for layer in self.layers.values():
            h = layer(h, cos, sin)
        return self.head(h, targets)

    @torch.no_grad()
    def init_weights(self, seed: int = 0) -> None:
        """Initialise every parameter and the RoPE tables, deterministically.

        Parameter p is drawn on its full shape, in fp32 on the CPU, from a generator seeded by
        sha256(seed, p's name); a sharded (DTensor) parameter then keeps its own slice. So the
        weights are the same for any number of ranks and any device.

        Weights ~ N(0, 0.02²) (GPT-2 / LLaMA), except the residual output projections
        (``attention.wo`` and ``feed_forward.w2``), which get std 0.02/sqrt(2·L): GPT-2
        (Radford et al. 2019, §2.3) scales residual-layer weights by 1/sqrt(N) with N = 2·L
        residual layers. RMSNorm weights = 1. A tied head shares the embedding's draw.
        """
        depth_std = INIT_STD / math.sqrt(2 * self.cfg.n_layers)
        for name, param in self.named_parameters():  # a tied weight is listed once
            if name.endswith("norm.weight"):
                full = torch.ones(param.shape)
            else:
                std = depth_std if name.endswith(("attention.wo.weight",
                                                  "feed_forward.w2.weight")) else INIT_STD
                gen = torch.Generator(device="cpu").manual_seed(_param_seed(seed, name))
                full = torch.empty(param.shape).normal_(0.0, std, generator=gen)
            if hasattr(param, "placements"):                            # DTensor (sharded)
                param.to_local().copy_(_shard_of(full, param))
            else:
                param.copy_(full)
        cos, sin = self._rope_tables(self.rope_cos.device)
        self.rope_cos.copy_(cos)
        self.rope_sin.copy_(sin)
