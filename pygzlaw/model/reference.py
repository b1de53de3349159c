"""The GPT forward written out in plain PyTorch: the oracle for tests of :mod:`pygzlaw.model.gpt`.

No pygzlaw.kernels calls, full logits, F.cross_entropy: slow, obviously correct. It reads the
weights of an (unsharded) ``GPT`` so the two can be compared on the same parameters.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def rope_tables_reference(seq_len: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (seq_len, head_dim/2), fp32: angle[t, i] = t · base^(-2i/head_dim)
    (Su et al. 2021, eq. 15; LLaMA's frequencies)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angle = torch.arange(seq_len, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return angle.cos().float(), angle.sin().float()


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * weight.float()).to(x.dtype)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half: pairs (i, i + hd/2). x (B, T, H, hd); cos, sin (T, hd/2)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half].float(), x[..., half:].float()
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.cat([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1).to(x.dtype)


def gpt_forward_reference(model, idx: torch.Tensor, targets: torch.Tensor | None = None):
    """Same contract as ``GPT.forward`` (logits (B, T, V), or the scalar mean loss with
    targets, ignore_index -100), computed from ``model``'s weights without fused kernels.
    Attention is written out as softmax(QKᵀ/sqrt(hd) + causal mask)·V."""
    cfg = model.cfg
    B, T = idx.shape
    H, hd = cfg.n_heads, cfg.head_dim
    cos, sin = rope_tables_reference(T, hd, cfg.rope_base)
    cos, sin = cos.to(idx.device), sin.to(idx.device)
    mask = torch.ones(T, T, dtype=torch.bool, device=idx.device).tril()
    x = model.tok_embeddings.weight[idx]                                # (B, T, d)
    for layer in model.layers.values():
        a = _rms_norm(x, layer.attention_norm.weight, cfg.norm_eps)
        q, k, v = (a @ layer.attention.wqkv.weight.T).view(B, T, 3, H, hd).unbind(2)
        q, k = _rope(q, cos, sin), _rope(k, cos, sin)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))                 # (B, H, T, hd)
        scores = (q @ k.transpose(-1, -2)) / hd ** 0.5                   # (B, H, T, T)
        scores = scores.masked_fill(~mask, float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1)  # (B, T, d)
        x = x + y @ layer.attention.wo.weight.T
        m = _rms_norm(x, layer.ffn_norm.weight, cfg.norm_eps)
        gate, up = (m @ layer.feed_forward.w13.weight.T).chunk(2, dim=-1)
        x = x + (F.silu(gate) * up) @ layer.feed_forward.w2.weight.T
    x = _rms_norm(x, model.head.norm.weight, cfg.norm_eps)
    logits = x @ model.head.output.weight.T                             # (B, T, V)
    if targets is None:
        return logits
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=-100)
