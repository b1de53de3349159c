"""Reading the text files users hand to pygzlaw (grammars, runs tables, law files, configs).

One function so that every reader treats encodings alike: UTF-8, with the byte-order mark
that Windows editors and spreadsheets write dropped, Windows and old-Mac line ends read as
``\\n`` (as Python's text mode does), and any other encoding refused with the file, line,
column, the offending byte and the fix, instead of a bare ``UnicodeDecodeError``.
"""
from __future__ import annotations

import os

__all__ = ["read_text", "decode_text", "foreign_bom", "not_a_file"]

# UTF-32 first: its little-endian mark starts with UTF-16's.
_UTF16_32_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32LE"), (b"\x00\x00\xfe\xff", "UTF-32BE"),
                  (b"\xff\xfe", "UTF-16LE"), (b"\xfe\xff", "UTF-16BE"))


def not_a_file(path: str | os.PathLike, what: str) -> str | None:
    """Why ``path`` cannot be read as a ``what`` file ("no such law file", "is a directory, not a
    law file"), or None when it is a file. Callers prefix the path or flag."""
    if os.path.isfile(path):
        return None
    if os.path.isdir(path):
        return f"is a directory, not a {what} file"
    return f"no such {what} file"


def foreign_bom(head: bytes) -> str | None:
    """The encoding ("UTF-16LE", ...) whose byte-order mark ``head`` starts with, for the
    UTF-16/32 marks (files that are not UTF-8 at all); None otherwise."""
    for mark, name in _UTF16_32_BOMS:
        if head.startswith(mark):
            return name
    return None


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 ``data`` as str: BOM dropped, ``\\r\\n`` and ``\\r`` turned into ``\\n``.

    Raises:
        ValueError: UTF-16/32 data, or bytes that are not UTF-8; the message names
            ``source``, the line and column (1-based), the byte and how to fix it.
    """
    name = foreign_bom(data)
    if name is not None:
        raise ValueError(f"{source}: the file is {name} (it starts with that byte-order "
                         "mark); pygzlaw reads UTF-8: re-save it as UTF-8 (e.g. iconv -f "
                         f"{name[:6]} -t UTF-8)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ValueError(f"{source} line {line} column {col}: byte 0x{data[exc.start]:02x} is "
                         "not valid UTF-8 (was the file saved as Latin-1 or Windows-1252?); "
                         "re-save it as UTF-8") from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def read_text(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file, as :func:`decode_text` makes it."""
    with open(path, "rb") as f:
        data = f.read()
    return decode_text(data, os.fspath(path))
