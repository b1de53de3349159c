"""The definition of gzip compressibility, slow and obvious (Pandey 2024, section 3).

These functions are the oracle for the tests and the baseline for the benchmark:
each token id becomes ``int.to_bytes(4, "big", signed=True)`` and the bytes go
through ``gzip.GzipFile(compresslevel=9)`` into a buffer, exactly as the research
code does. Nothing here is fast and nothing here should be.
"""
from __future__ import annotations

import gzip
import io
from typing import Iterable

__all__ = [
    "serialize_tokens_reference",
    "gzip_size_reference",
    "gzip_ratio_reference",
    "research_code_ratio",
]


def serialize_tokens_reference(tokens: Iterable[int], token_bytes: int = 4,
                               byteorder: str = "big", signed: bool = True) -> bytes:
    """Token ids to bytes, one ``int.to_bytes`` per token (the research code's method).

    Args:
        tokens: iterable of Python or numpy integers.
        token_bytes: bytes per token (1, 2, 4 or 8).
        byteorder: "big" or "little".
        signed: two's complement (True) or unsigned (False).

    Returns:
        ``len(tokens) * token_bytes`` bytes.

    Raises:
        OverflowError: a token does not fit the format.
    """
    return b"".join(int(t).to_bytes(token_bytes, byteorder, signed=signed) for t in tokens)


def gzip_size_reference(data: bytes, level: int = 9) -> int:
    """Bytes of the gzip member ``gzip.GzipFile(compresslevel=level)`` writes for data.

    The header carries no file name (the file object is a BytesIO), so it is 10 bytes;
    mtime does not change the size.
    """
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=level, mtime=0) as f:
        f.write(data)
    return len(buf.getvalue())


def gzip_ratio_reference(data: bytes, level: int = 9) -> float:
    """The definition: gzip member bytes / raw bytes (unitless). data must be non-empty."""
    if len(data) == 0:
        raise ValueError("data has 0 bytes; gzip ratio is undefined for an empty sequence")
    return gzip_size_reference(data, level) / len(data)


def research_code_ratio(tokens: Iterable[int]) -> float:
    """The research code's per-document computation: int.to_bytes per token + GzipFile."""
    return gzip_ratio_reference(serialize_tokens_reference(tokens))
