"""argparse ``type=`` functions shared by the stage CLIs (one wording for every command)."""
from __future__ import annotations

import argparse
import re

_SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9, "t": 10**12}


def parse_count(text: str) -> int:
    """'50M', '1e8', '2.5G', '100_000', '64k' → int (>= 1). Also used for TOML/JSON strings."""
    s = str(text).strip().replace("_", "").replace(",", "")
    mult = 1
    if s and s[-1].lower() in _SUFFIXES:
        mult = _SUFFIXES[s[-1].lower()]
        s = s[:-1]
    try:
        value = float(s) * mult if re.search(r"[.eE]", s) else int(s) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a count; write e.g. 50M, 1e8, 2.5G or 100000") from None
    if value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number >= 1")
    return int(value)


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} must be >= 1")
    return v


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive finite number")
    return v


def zlib_level(text: str) -> int:
    """argparse type of --level: a zlib level 0..9 (score and scan)."""
    try:
        v = int(text)
    except ValueError:
        v = -1
    if not 0 <= v <= 9:
        raise argparse.ArgumentTypeError(f"{text!r} is not a zlib level; use 0..9 (9 = the paper)")
    return v


def thread_count(text: str) -> int:
    """argparse type of --threads: n >= 1, or -1 for all cores (score and scan)."""
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1 and v != -1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a thread count; use n >= 1 or -1 "
                                         "(all cores)")
    return v
