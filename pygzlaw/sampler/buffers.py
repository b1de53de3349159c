"""A ring of host buffers for streaming batches (pinned when CUDA is present).

The sampler fills one slot while the consumer reads (or copies to the GPU) the
others. torch is optional: without it, or with as_torch=False, slots are numpy.
"""
from __future__ import annotations

import numpy as np


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


class BufferRing:
    """``n_slots`` buffers of shape (batch_docs, doc_tokens) and one dtype.

    Args:
        n_slots: number of buffers.
        shape: (batch_docs, doc_tokens).
        dtype: numpy dtype (uint16 or int32).
        as_torch: torch tensors (default: when CUDA is available).
        pin_memory: page-locked torch memory (default: when CUDA is available).
            Pinned memory needs an accelerator; asking for it without one raises.
    """

    def __init__(self, n_slots: int, shape: tuple[int, int], dtype, *,
                 as_torch: bool | None = None, pin_memory: bool | None = None) -> None:
        cuda = _cuda_available() if (as_torch is None or pin_memory is None) else False
        self.as_torch = cuda if as_torch is None else bool(as_torch)
        self.pin_memory = (cuda if pin_memory is None else bool(pin_memory)) and self.as_torch
        if pin_memory and not self.as_torch:
            raise ValueError("pin_memory=True needs as_torch=True (pinned buffers are torch tensors)")
        dtype = np.dtype(dtype)
        if self.as_torch:
            import torch

            tdtype = {np.dtype(np.int32): torch.int32, np.dtype(np.uint16): torch.uint16}[dtype]
            if self.pin_memory and not torch.cuda.is_available():
                raise ValueError("pin_memory=True needs CUDA (torch.cuda.is_available() is False)")
            self._torch = [torch.empty(shape, dtype=tdtype, pin_memory=self.pin_memory)
                           for _ in range(n_slots)]
            self._numpy = [t.numpy() for t in self._torch]
        else:
            self._torch = None
            self._numpy = [np.empty(shape, dtype=dtype) for _ in range(n_slots)]

    def numpy_view(self, slot: int, n: int) -> np.ndarray:
        """First n rows of slot as a numpy array sharing its memory."""
        return self._numpy[slot][:n]

    def view(self, slot: int, n: int):
        """First n rows of slot in the buffer's own type (torch or numpy)."""
        return self._torch[slot][:n] if self._torch is not None else self._numpy[slot][:n]
