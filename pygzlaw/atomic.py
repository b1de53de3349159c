"""Atomic file writes: a temp file in the target's directory, fsync, then os.replace.

Readers see the old file or the new one, never half of one, and a crash or an
exception leaves the old file untouched. Every stage writes its outputs
(shards, manifests, summaries, laws, figures) through here.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from typing import IO, Iterator

__all__ = ["atomic_open", "write_bytes", "write_text", "write_json"]


def _default_file_mode() -> int:
    """0o666 minus the process umask: the mode open() would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *,
                encoding: str | None = None) -> Iterator[IO]:
    """Open a temp file beside ``path`` for writing; on a clean exit it replaces ``path``.

    Args:
        path: the final file; its directory is created if missing.
        mode: "wb" or "w" (text, ``encoding`` defaults to UTF-8).

    On an exception inside the block the temp file is removed and ``path`` is
    left as it was.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode={mode!r}; atomic_open writes whole files: use 'w' or 'wb'")
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        kwargs = {"encoding": encoding or "utf-8"} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_file_mode())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def write_json(path: str | os.PathLike, obj, *, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON (plus a newline) atomically.

    Raises:
        ValueError: ``obj`` holds NaN or infinity (not JSON); ``path`` is untouched.
    """
    write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")
