"""Atomic writes: the old file survives any failure, no temp files are left behind."""
import json
import os
import stat

import pytest

from pygzlaw.atomic import atomic_open, write_bytes, write_json, write_text


def test_write_json_refuses_nan_and_keeps_old_file(tmp_path):
    p = tmp_path / "law.json"
    write_json(p, {"a": 1})
    with pytest.raises(ValueError):
        write_json(p, {"a": float("nan")})  # NaN is not JSON
    assert json.loads(p.read_text()) == {"a": 1}
    assert [x.name for x in tmp_path.iterdir()] == ["law.json"]


def test_exception_inside_block_leaves_old_content(tmp_path):
    p = tmp_path / "shard.bin"
    write_bytes(p, b"old")
    with pytest.raises(RuntimeError):
        with atomic_open(p, "wb") as f:
            f.write(b"partial new content")
            raise RuntimeError("killed mid-write")
    assert p.read_bytes() == b"old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["shard.bin"]


def test_creates_directories_and_uses_umask_mode(tmp_path):
    p = tmp_path / "a" / "b" / "notes.txt"
    write_text(p, "héllo\n")
    assert p.read_text(encoding="utf-8") == "héllo\n"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask


def test_rejects_append_mode(tmp_path):
    with pytest.raises(ValueError, match="mode='a'"):
        with atomic_open(tmp_path / "x", "a"):
            pass
