"""Fused linear + cross-entropy: mean over tokens of -log softmax(h @ W.T)[target], without ever
holding the full (M, V) logits.

Tokens are processed in chunks of ``chunk_tokens`` rows. For each chunk the forward computes the
(chunk, V) logits, the per-row loss and, at once, the gradient of the logits
(softmax - onehot, the standard cross-entropy derivative), which it turns into that chunk's
rows of dL/dh (= G @ W) and adds into dL/dW (+= G.T @ h) before the next chunk reuses the
memory. Backward then only scales the stored gradients by the incoming dloss. This is the
scheme of Liger-Kernel's fused linear cross-entropy (Hsu et al. 2024, arXiv:2410.10989, §3.4);
peak extra memory is one (chunk, V) block instead of (M, V).

On the Triton path the logits come from cuBLAS (``torch.mm``) and one kernel per chunk does the
softmax part: an online (max, sum-exp) pass over V (Milakov & Gimelshein 2018) giving the loss,
then a pass overwriting the logits with their gradient in place. The PyTorch path runs the same
chunking with eager ops, so CPU training gets the same memory saving.

Line-up: Triton kernel → launcher (the chunk loop) → custom op ``pygzlaw::fused_linear_ce``
→ eager reference → public ``fused_linear_cross_entropy``.
"""
from __future__ import annotations

import torch

from ._launch import resolve_impl, tl, triton

# Columns of V per step of the row loop: 4096 values = 16 per thread at 8 warps; the loop
# makes any V work.
_CE_BLOCK_MAX = 4096


@triton.jit
def _ce_fwd_bwd_kernel(logits_ptr, targets_ptr, loss_ptr, row_stride, n_cols, ignore_index,
                       BLOCK: tl.constexpr):
    """One program per row of a (n_rows, n_cols) logits chunk. Writes the row's loss
    (logsumexp - logit[target], fp32; 0 for an ignored row) and overwrites the row with the
    unscaled gradient softmax - onehot (zeros for an ignored row)."""
    row = tl.program_id(0).to(tl.int64)
    base = logits_ptr + row * row_stride
    target = tl.load(targets_ptr + row)
    valid = target != ignore_index
    offs = tl.arange(0, BLOCK)

    # pass 1: online max m and sum d of exp(x - m)
    m = float("-inf")
    d = 0.0
    for start in range(0, n_cols, BLOCK):
        cols = start + offs
        x = tl.load(base + cols, mask=cols < n_cols, other=float("-inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(x, axis=0))
        d = d * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
        m = m_new
    safe_target = tl.where(valid, target, 0)
    x_target = tl.load(base + safe_target).to(tl.float32)
    loss = tl.log(d) + m - x_target
    tl.store(loss_ptr + row, tl.where(valid, loss, 0.0))

    # pass 2: gradient of the loss wrt the logits, in place
    inv_d = 1.0 / d
    for start in range(0, n_cols, BLOCK):
        cols = start + offs
        mask = cols < n_cols
        x = tl.load(base + cols, mask=mask, other=0.0).to(tl.float32)
        g = tl.exp(x - m) * inv_d
        g = tl.where(cols == target, g - 1.0, g)
        g = tl.where(valid, g, 0.0)
        tl.store(base + cols, g.to(logits_ptr.dtype.element_ty), mask=mask)


def default_chunk_tokens(n_tokens: int, vocab_size: int, d_model: int) -> int:
    """Rows per chunk: a (chunk, V) logits block of about max(M * d, 2**25) elements, as a power
    of two, at least 1 and at most M.

    M * d (h's size) is Liger-Kernel's rule, next_power_of_2(ceil(M / ceil(V / d))). The 2**25
    floor (64 MiB of bf16 logits) bounds the number of chunks: each chunk also reads and writes
    the whole fp32 (V, d) dW accumulator, which at V 32001, d 1024 and Liger's 32 chunks costs
    8 GB of memory traffic per step, as much time as the matmuls; with the floor it is 8
    chunks, and the logits block stays 8x smaller than the unfused (M, V)."""
    ratio = -(-vocab_size // max(d_model, 1))
    chunk = triton.next_power_of_2(-(-n_tokens // max(ratio, 1)))
    floor = 1 << max((2**25 // max(vocab_size, 1)).bit_length() - 1, 0)   # power of 2 <= 2**25/V
    return max(1, min(max(chunk, floor), n_tokens))


def _chunk_logits(h_chunk: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(chunk, d) @ (V, d).T → (chunk, V) in h's dtype. The only place logits are made (the
    tests hook it to check that no block has more than chunk_tokens rows)."""
    return h_chunk @ weight.t()


def linear_ce_forward(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                      ignore_index: int, chunk_tokens: int, use_triton: bool,
                      compute_grad: bool):
    """Chunked loss and gradients. h: (M, d); weight: (V, d); targets: (M,) int64.

    Returns (loss: () fp32, grad_h: like h, grad_weight: like weight) where the gradients are
    those of the mean loss; when ``compute_grad`` is False both are empty (0,) tensors.
    No host-device synchronisation: the count of valid targets stays on the device."""
    h = h.contiguous()
    targets = targets.contiguous()  # the Triton kernel reads targets_ptr + row
    M, _d = h.shape
    V = weight.shape[0]
    valid = targets != ignore_index
    inv_n = 1.0 / valid.sum().to(torch.float32)              # inf if all ignored: loss NaN
    loss_sum = torch.zeros((), dtype=torch.float32, device=h.device)
    if compute_grad:
        grad_h = torch.empty_like(h)
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=h.device)
    for start in range(0, M, chunk_tokens):
        stop = min(start + chunk_tokens, M)
        h_c, t_c = h[start:stop], targets[start:stop]
        logits = _chunk_logits(h_c, weight)                  # (chunk, V)
        if use_triton:
            loss_rows = torch.empty(stop - start, dtype=torch.float32, device=h.device)
            block = min(_CE_BLOCK_MAX, triton.next_power_of_2(V))
            _ce_fwd_bwd_kernel[(stop - start,)](logits, t_c, loss_rows, logits.stride(0), V,
                                                ignore_index, BLOCK=block, num_warps=4
                                                if block <= 1024 else 8)
            g = logits                                       # now softmax - onehot, in place
        else:
            lf = logits.float()
            v_c = valid[start:stop]
            safe_t = torch.where(v_c, t_c, 0)
            lse = torch.logsumexp(lf, dim=-1)
            loss_rows = (lse - lf.gather(1, safe_t[:, None]).squeeze(1)) * v_c
            if compute_grad:                                 # softmax in place, from the lse
                g = lf.sub_(lse[:, None]).exp_()
                g.scatter_add_(1, safe_t[:, None], torch.full_like(lse, -1.0)[:, None])
                g.mul_(v_c[:, None])
                g = g.to(h.dtype)
            del lf
        loss_sum += loss_rows.sum()
        if compute_grad:
            torch.mm(g, weight, out=grad_h[start:stop])
            if grad_w.dtype == g.dtype:
                grad_w.addmm_(g.t(), h_c)
            else:                                            # bf16 product, fp32 accumulation
                grad_w.add_(g.t() @ h_c)
            del g
        del logits                                           # free this block before the next
    loss = loss_sum * inv_n
    if not compute_grad:
        empty = h.new_empty(0)
        return loss, empty, weight.new_empty(0)
    grad_h.mul_(inv_n.to(grad_h.dtype))
    return loss, grad_h, (grad_w * inv_n).to(weight.dtype)


@torch.library.custom_op("pygzlaw::fused_linear_ce", mutates_args=())
def _fused_linear_ce_op(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                        ignore_index: int, chunk_tokens: int, use_triton: bool,
                        compute_grad: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return linear_ce_forward(h, weight, targets, ignore_index, chunk_tokens, use_triton,
                             compute_grad)


@_fused_linear_ce_op.register_fake
def _(h, weight, targets, ignore_index, chunk_tokens, use_triton, compute_grad):
    loss = h.new_empty((), dtype=torch.float32)
    if compute_grad:
        return (loss, torch.empty_like(h, memory_format=torch.contiguous_format),
                torch.empty_like(weight, memory_format=torch.contiguous_format))
    return loss, h.new_empty(0), weight.new_empty(0)


def _fused_linear_ce_setup(ctx, inputs, output):
    _loss, grad_h, grad_w = output
    ctx.save_for_backward(grad_h, grad_w)


def _fused_linear_ce_backward(ctx, dloss, _dgh, _dgw):
    grad_h, grad_w = ctx.saved_tensors
    if grad_h.numel() == 0 and grad_w.numel() == 0:
        raise RuntimeError("fused_linear_cross_entropy: backward through a call made with "
                           "gradients disabled (torch.no_grad or inputs without requires_grad)")
    return ((grad_h * dloss).to(grad_h.dtype), (grad_w * dloss).to(grad_w.dtype),
            None, None, None, None, None)


_fused_linear_ce_op.register_autograd(_fused_linear_ce_backward,
                                      setup_context=_fused_linear_ce_setup)


def fused_linear_cross_entropy_reference(h: torch.Tensor, weight: torch.Tensor,
                                         targets: torch.Tensor,
                                         ignore_index: int = -100) -> torch.Tensor:
    """The definition, materialising all (M, V) logits in fp32:
    F.cross_entropy(h @ W.T, targets, ignore_index), mean over non-ignored targets.
    The oracle for tests."""
    logits = h.float() @ weight.float().t()                  # (M, V)
    return torch.nn.functional.cross_entropy(logits, targets, ignore_index=ignore_index)


def fused_linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *,
                               ignore_index: int = -100, chunk_tokens: int | None = None,
                               impl: str = "auto") -> torch.Tensor:
    """Mean cross-entropy of the logits h @ weight.T against targets, in chunks of tokens.

    Args:
        h: (M, d) final hidden states (fp32 or bf16); M = tokens.
        weight: (V, d) output projection, same dtype as h; V = vocabulary size. Under
            autocast both are cast to the autocast dtype first, as a matmul would be.
        targets: (M,) int64 ids in [0, V), or ``ignore_index`` for tokens left out of the mean.
        ignore_index: target value that contributes neither loss nor gradient.
        chunk_tokens: rows per chunk; peak extra memory is one (chunk_tokens, V) logits block
            plus fp32 dL/dW (V, d). None: ``default_chunk_tokens`` (a block of about
            max(M * d, 2**25) elements).
        impl: "auto" (Triton on CUDA tensors when triton imports, else torch), "torch", or
            "triton" (CPU tensors only under TRITON_INTERPRET=1).

    Returns:
        () fp32 tensor: the mean loss in nats/token over non-ignored targets (NaN when every
        target is ignored, as in torch.nn.functional.cross_entropy). Differentiable wrt h and
        weight; the gradients are computed during the forward, chunk by chunk.

    Raises:
        ValueError: shapes, dtypes or chunk_tokens are wrong, impl is unknown, or (for CPU
            tensors, where the check is free) a target lies outside [0, V) and is not
            ignore_index. CUDA targets are not checked (that would cost a device sync), nor
            are targets inside torch.compile (data-dependent control flow).
        RuntimeError: impl="triton" where Triton cannot run.
    """
    if h.dim() != 2 or weight.dim() != 2 or h.shape[1] != weight.shape[1]:
        raise ValueError(f"fused_linear_cross_entropy: h {tuple(h.shape)} and weight "
                         f"{tuple(weight.shape)} must be (M, d) and (V, d)")
    if targets.shape != (h.shape[0],) or targets.dtype != torch.int64:
        raise ValueError(f"fused_linear_cross_entropy: targets {tuple(targets.shape)} "
                         f"{targets.dtype} must be ({h.shape[0]},) int64")
    if torch.is_autocast_enabled(h.device.type):
        # custom ops are outside autocast: cast here as autocast would cast h @ weight.T
        dtype = torch.get_autocast_dtype(h.device.type)
        h, weight = h.to(dtype), weight.to(dtype)
    if h.dtype != weight.dtype:
        raise ValueError(f"fused_linear_cross_entropy: h is {h.dtype} but weight is "
                         f"{weight.dtype}; cast one, e.g. h.to(weight.dtype)")
    if chunk_tokens is not None and chunk_tokens < 1:
        raise ValueError(f"fused_linear_cross_entropy: chunk_tokens={chunk_tokens} must be >= 1")
    M, d = h.shape
    V = weight.shape[0]
    if not targets.is_cuda and M and not torch.compiler.is_compiling():
        bad = (targets != ignore_index) & ((targets < 0) | (targets >= V))
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(f"fused_linear_cross_entropy: targets[{i}]={int(targets[i])} is "
                             f"outside [0, {V}) and is not ignore_index ({ignore_index})")
    use_triton = resolve_impl("fused_linear_cross_entropy", impl, h, weight, targets) == "triton"
    chunk = chunk_tokens if chunk_tokens is not None else default_chunk_tokens(M, V, d)
    compute_grad = torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad)
    loss, _gh, _gw = _fused_linear_ce_op(h, weight, targets, int(ignore_index), int(chunk),
                                         use_triton, compute_grad)
    return loss
