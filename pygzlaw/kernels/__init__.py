"""Fused kernels for the trainer, each a Triton kernel with an exact PyTorch reference beside it.

Every public op takes ``impl``: "auto" (Triton on CUDA tensors when triton imports, PyTorch
otherwise), "torch", or "triton" (on CPU tensors only under ``TRITON_INTERPRET=1``, for tests).
The Triton paths are ``torch.library`` custom ops with fake implementations and registered
autograd, so ``torch.compile(fullgraph=True)`` of a model using them traces through.

- ``rms_norm``                    RMSNorm forward/backward           (rmsnorm.py)
- ``swiglu``                      silu(gate) * up forward/backward   (swiglu.py)
- ``apply_rope``, ``rope_tables`` rotate-half rotary embedding       (rope.py)
- ``fused_linear_cross_entropy``  chunked linear + cross-entropy     (linear_ce.py)

This stage imports torch; ``import pygzlaw`` does not import it.
"""
from .linear_ce import (default_chunk_tokens, fused_linear_cross_entropy,
                        fused_linear_cross_entropy_reference)
from .rmsnorm import rms_norm, rms_norm_reference
from .rope import apply_rope, apply_rope_reference, rope_tables
from .swiglu import swiglu, swiglu_reference
from ._launch import HAS_TRITON

__all__ = [
    "HAS_TRITON", "apply_rope", "apply_rope_reference", "default_chunk_tokens",
    "fused_linear_cross_entropy", "fused_linear_cross_entropy_reference", "rms_norm",
    "rms_norm_reference", "rope_tables", "swiglu", "swiglu_reference",
]
