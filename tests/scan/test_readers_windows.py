"""Readers and windowers in isolation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import zstandard

from pygzlaw.scan import readers, select_shard
from pygzlaw.scan.windows import ByteWindower, TokenWindower


def _events(unit, **kw):
    return list(readers.read_unit(unit, readers.ByteCounter(), **kw))


def test_truncated_zstd_is_reported_not_silent(tmp_path):
    raw = b"".join(b'{"text": "%s"}\n' % (b"abc " * i) for i in range(60))
    comp = zstandard.ZstdCompressor().compress(raw)
    for name, data in [("cut.jsonl.zst", comp[: len(comp) // 2]),
                       ("two.jsonl.zst", comp + comp[:-3])]:
        p = tmp_path / name
        p.write_bytes(data)
        unit = readers.Unit(key=str(p), path=str(p), fmt="jsonl", compression="zst")
        ev = _events(unit)
        assert ev[-1][0] == readers.BAD and ev[-1][2] == "corrupt_compressed", name
        assert "truncated" in ev[-1][3]
    # multi-frame files decode completely
    p = tmp_path / "ok.jsonl.zst"
    p.write_bytes(comp + comp)
    ev = _events(readers.Unit(key=str(p), path=str(p), fmt="jsonl", compression="zst"))
    assert sum(1 for e in ev if e[0] == readers.PART) == 120


def test_byte_counter_tracks_compressed_input(tmp_path):
    p = tmp_path / "x.txt.zst"
    p.write_bytes(zstandard.ZstdCompressor().compress(b"hello\n" * 10000))
    c = readers.ByteCounter()
    list(readers.read_unit(readers.Unit(str(p), str(p), "txt", "zst"), c))
    assert c.n_bytes == p.stat().st_size


@pytest.mark.parametrize("cut", [1, 7, 100, 1023, 1024, 5000])
def test_byte_windower_parts_equal_whole(cut):
    data = bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8))
    a = ByteWindower(1024, keep_tail=True)
    whole = list(a.feed(3, data, True)) + list(a.flush())
    b = ByteWindower(1024, keep_tail=True)
    parts = list(b.feed(3, data[:cut], False)) + list(b.feed(3, data[cut:], True))
    parts += list(b.flush())
    assert len(whole) == len(parts) == 1
    for x, y in zip(whole, parts):
        assert x.data.tobytes() == y.data.tobytes()
        assert x.offsets.tolist() == y.offsets.tolist() == [0, 1024, 2048, 3072, 4096, 5000]
        assert x.window.tolist() == [0, 1, 2, 3, 4] and x.doc.tolist() == [3] * 5
    assert (a.n_docs, a.n_tails, a.tail_units) == (b.n_docs, b.n_tails, b.tail_units) == (1, 1, 904)


def test_windower_batches_are_bounded():
    w = ByteWindower(100, batch_units=1000)
    batches = []
    for d in range(50):
        batches += list(w.feed(d, b"x" * 250, True))
    batches += list(w.flush())
    assert all(b.data.size <= 1000 + 250 for b in batches)
    doc = np.concatenate([b.doc for b in batches])
    win = np.concatenate([b.window for b in batches])
    assert doc.tolist() == [d for d in range(50) for _ in range(2)]
    assert win.tolist() == [0, 1] * 50
    assert w.n_tails == 50 and w.tail_units == 50 * 50


def test_token_windower_rows_and_tail():
    rows = np.arange(30, dtype=np.int32).reshape(3, 10)
    w = TokenWindower(4, keep_tail=False)
    b = list(w.feed_rows(100, rows)) + list(w.flush())
    assert b[0].offsets.tolist() == [0, 4, 8, 12, 16, 20, 24]
    assert b[0].data.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17,
                                  20, 21, 22, 23, 24, 25, 26, 27]
    assert b[0].doc.tolist() == [100, 100, 101, 101, 102, 102]
    assert (w.n_docs, w.n_tails, w.tail_units) == (3, 3, 6)


def test_select_shard_is_a_partition():
    units = list(range(17))
    parts = [select_shard(units, (i, 4)) for i in range(4)]
    assert sorted(x for p in parts for x in p) == units
    assert parts[1] == [1, 5, 9, 13]


def test_discover_order_and_formats(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ["z.txt", "a.jsonl.gz", "b/c.parquet", "b/d.json.zst", "e.csv"]:
        (tmp_path / name).write_bytes(b"")
    units, skipped = readers.discover([str(tmp_path)])
    assert [(u.key[len(str(tmp_path)) + 1:], u.fmt, u.compression) for u in units] == [
        ("a.jsonl.gz", "jsonl", "gz"), ("z.txt", "txt", ""), ("b/c.parquet", "parquet", ""),
        ("b/d.json.zst", "json", "zst")]
    assert skipped == [str(tmp_path / "e.csv")]


def _windows_reference(docs, window, keep_tail):
    out = []
    for d, data in enumerate(docs):
        n = len(data) // window
        out += [(d, i, data[i * window:(i + 1) * window]) for i in range(n)]
        if keep_tail and len(data) % window:
            out.append((d, n, data[n * window:]))
    return out


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=30), st.integers(1, 64), st.booleans(),
       st.integers(1, 500), st.data())
def test_byte_windower_matches_reference(docs, window, keep_tail, batch_units, data):
    w = ByteWindower(window, keep_tail=keep_tail, batch_units=batch_units)
    batches = []
    for d, doc in enumerate(docs):
        # Split each document into random parts (the .txt file mode path).
        cuts = sorted(data.draw(st.lists(st.integers(0, len(doc)), max_size=3)))
        parts = [doc[a:b] for a, b in zip([0] + cuts, cuts + [len(doc)])]
        for k, part in enumerate(parts):
            batches += list(w.feed(d, part, k == len(parts) - 1))
    batches += list(w.flush())
    got = [(int(b.doc[i]), int(b.window[i]), b.data[b.offsets[i]:b.offsets[i + 1]].tobytes())
           for b in batches for i in range(b.n_windows)]
    assert got == _windows_reference(docs, window, keep_tail)
    assert w.n_docs == len(docs)
    assert w.tail_units == sum(len(x) % window for x in docs)
