# Type stubs of pygzlaw/score/_native.pyx (see csrc/score/deflate_batch.h).
import numpy as np

class NativeScoreError(ValueError):
    code: int
    item: int

def deflate_sizes_into(data: np.ndarray, offsets: np.ndarray, level: int, window_bits: int,
                       mem_level: int, strategy: int, n_threads: int,
                       out_bytes: np.ndarray) -> None: ...
def token_deflate_sizes_into(token_bytes: np.ndarray, dtype_code: int, offsets: np.ndarray,
                             width_bytes: int, big_endian: bool, is_signed: bool, level: int,
                             window_bits: int, mem_level: int, strategy: int, n_threads: int,
                             out_bytes: np.ndarray) -> None: ...
def serialize_tokens_into(token_bytes: np.ndarray, dtype_code: int, n_tokens: int,
                          width_bytes: int, big_endian: bool, is_signed: bool,
                          out: np.ndarray) -> bool: ...
