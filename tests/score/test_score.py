"""Exact mode: byte-identical gzip sizes to gzip.GzipFile(compresslevel=9)."""
import gzip
import io
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pygzlaw.score import (EMPTY_GZIP_BYTES, gzip_ratio_batch, score_bytes, score_tokens,
                           serialize_tokens)
from pygzlaw.score.reference import (gzip_ratio_reference, gzip_size_reference,
                                     research_code_ratio, serialize_tokens_reference)

SIZES = [0, 1, 2, 63, 64, 65, 257, 1023, 1024, 1025, 4095, 4096, 65537]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def _mixed_byte_seqs(rng, n_per_kind=250):
    """Random, low-entropy, repetitive, empty and one-byte sequences."""
    seqs = []
    for _ in range(n_per_kind):
        n = int(rng.integers(0, 3000))
        seqs.append(rng.integers(0, 256, n, dtype=np.uint8).tobytes())       # random
        seqs.append(rng.integers(0, 4, n, dtype=np.uint8).tobytes())         # low entropy
        unit = rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8).tobytes()
        seqs.append((unit * (n // len(unit) + 1))[:n])                        # repetitive
    seqs += [b"", b"\x00", b"a", b"\xff" * 70000]
    return seqs


def test_thousands_of_byte_sequences_match_gzipfile(rng):
    seqs = _mixed_byte_seqs(rng)
    got = score_bytes(seqs, threads=2, empty="nan").compressed_bytes
    want = [gzip_size_reference(s) for s in seqs]
    assert got.tolist() == want


def test_thousands_of_token_documents_match_gzipfile(rng):
    # Paper-style documents (256 tokens), plus ragged, repetitive, empty and 1-token ones.
    docs = [rng.integers(0, int(v), 256) for v in rng.integers(2, 5000, 1500)]
    docs += [np.repeat(rng.integers(0, 100, 8), 32) for _ in range(200)]
    docs += [rng.integers(-(2**31), 2**31 - 1, int(n)) for n in rng.integers(0, 600, 300)]
    docs += [np.array([t]) for t in (0, 1, -1, 2**31 - 1, -(2**31))] + [np.zeros(0, np.int64)]
    got = score_tokens(docs, threads=2, empty="nan").compressed_bytes
    want = [gzip_size_reference(serialize_tokens_reference(d)) for d in docs]
    assert got.tolist() == want


def test_gzipfile_write_then_close_is_what_the_reference_measures():
    # The research code's exact call sequence, spelled out once.
    data = bytes(range(256)) * 7
    buf = io.BytesIO()
    f = gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9)
    f.write(data)
    f.close()
    assert score_bytes([data]).compressed_bytes[0] == len(buf.getvalue())
    assert len(buf.getvalue()) == len(zlib.compress(data, 9, -15)) + 18


@pytest.mark.parametrize("seq_bytes", SIZES)
@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_size_ladder_all_levels(rng, seq_bytes, level):
    seqs = rng.integers(0, 8, size=(5, seq_bytes), dtype=np.uint8)  # low entropy on purpose
    got = score_bytes(seqs, level=level, empty="nan").compressed_bytes
    assert got.tolist() == [gzip_size_reference(s.tobytes(), level) for s in seqs]


def test_output_larger_than_worker_buffer():
    # 3 MB of random bytes deflate to > 1 MB: the worker loops over its output buffer.
    data = np.random.default_rng(1).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()
    assert score_bytes([data]).compressed_bytes[0] == len(zlib.compress(data, 9, -15)) + 18


@pytest.mark.parametrize("threads", [1, 2, 3, 7, -1])
def test_threads_do_not_change_result(rng, threads):
    tokens = rng.integers(0, 300, size=(301, 256)).astype(np.int32)
    base = score_tokens(tokens, threads=1)
    got = score_tokens(tokens, threads=threads)
    assert np.array_equal(got.compressed_bytes, base.compressed_bytes)
    assert np.array_equal(got.ratio, base.ratio)


def test_ratio_is_research_code_ratio(rng):
    tokens = rng.integers(0, 50, size=(20, 256))
    got = score_tokens(tokens).ratio
    assert got.tolist() == [research_code_ratio(t) for t in tokens]  # exact floats
    assert np.all(score_tokens(tokens).raw_bytes == 1024)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32,
                                   np.uint32, np.int64, np.uint64, ">i4", "<u2"])
@pytest.mark.parametrize("token_bytes", [1, 2, 4, 8])
@pytest.mark.parametrize("byteorder", ["big", "little"])
def test_serialization_formats(rng, dtype, token_bytes, byteorder):
    dt = np.dtype(dtype)
    signed = dt.kind == "i"
    bits = min(8 * token_bytes, 8 * dt.itemsize) - (1 if signed else 0)
    lo = -(1 << bits) if signed else 0
    tokens = rng.integers(lo, (1 << bits) - 1, size=(6, 37), endpoint=True,
                          dtype=dt.newbyteorder("=")).astype(dt)
    data, off = serialize_tokens(tokens, token_bytes=token_bytes, byteorder=byteorder,
                                 signed=signed)
    want = [serialize_tokens_reference(t, token_bytes, byteorder, signed) for t in tokens]
    assert data == b"".join(want)
    assert off.tolist() == [i * 37 * token_bytes for i in range(7)]
    got = score_tokens(tokens, token_bytes=token_bytes, byteorder=byteorder, signed=signed)
    assert got.compressed_bytes.tolist() == [gzip_size_reference(w) for w in want]


def test_unsigned_format_allows_full_range():
    t = np.array([[0, 255, 128]], dtype=np.int64)
    got = score_tokens(t, token_bytes=1, signed=False)
    assert got.compressed_bytes[0] == gzip_size_reference(bytes([0, 255, 128]))
    big = np.array([[2**64 - 1]], dtype=np.uint64)
    assert serialize_tokens(big, token_bytes=8, signed=False)[0] == b"\xff" * 8
    with pytest.raises(ValueError, match=r"seqs\[0\] token 0 = 18446744073709551615 does not fit"):
        score_tokens(big, token_bytes=8)


def test_input_forms_agree(rng):
    docs = [rng.integers(0, 9, int(n)).astype(np.int32) for n in rng.integers(1, 300, 40)]
    values = np.concatenate(docs)
    off = np.concatenate(([0], np.cumsum([len(d) for d in docs])))
    a = score_tokens(docs).compressed_bytes
    b = score_tokens(values, off).compressed_bytes
    data, boff = serialize_tokens(docs)
    c = score_bytes(data, boff).compressed_bytes
    d = score_bytes(np.frombuffer(data, np.uint8), boff).compressed_bytes
    e = score_bytes([data[boff[i]:boff[i + 1]] for i in range(len(docs))]).compressed_bytes
    assert a.tolist() == b.tolist() == c.tolist() == d.tolist() == e.tolist()
    # offsets may start past 0 and skip data at the end
    assert score_tokens(values, off[5:10]).compressed_bytes.tolist() == a[5:9].tolist()


def test_gzip_ratio_batch_and_out():
    seqs = np.frombuffer(b"abcabcabcabc" * 20, np.uint8).reshape(4, 60)
    out = np.empty(4)
    got = gzip_ratio_batch(seqs, out=out)
    assert got is out
    assert out.tolist() == [gzip_ratio_reference(s.tobytes()) for s in seqs]


def test_empty_sequence_policy():
    with pytest.raises(ValueError, match=r"seqs\[2\] has 0 bytes; gzip ratio is undefined"):
        gzip_ratio_batch([b"a", b"bb", b"", b"c"])
    s = score_bytes([b"a", b""], empty="nan")
    assert s.compressed_bytes.tolist() == [gzip_size_reference(b"a"), EMPTY_GZIP_BYTES]
    assert EMPTY_GZIP_BYTES == gzip_size_reference(b"")
    assert np.isnan(s.ratio[1]) and s.ratio[0] == 21.0
    assert len(score_tokens(np.zeros((0, 256), np.int32))) == 0


@pytest.mark.parametrize("kwargs, pattern", [
    ({"level": 12}, r"level=12 is out of range; zlib levels are 0\.\.9"),
    ({"threads": 0}, r"threads=0 is invalid"),
    ({"mode": "turbo"}, r"mode='turbo' is unknown"),
    ({"empty": "skip"}, r"empty='skip' is unknown"),
    ({"token_bytes": 3}, r"token_bytes=3 is unsupported"),
    ({"byteorder": "middle"}, r"byteorder='middle' is unknown"),
])
def test_bad_parameters_are_named(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        score_tokens(np.zeros((2, 4), np.int32), **kwargs)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"seqs\[1\] token 2 = 300 does not fit 1-byte signed"):
        score_tokens(np.array([[1, 2, 3], [1, 2, 300]]), token_bytes=1)
    with pytest.raises(TypeError, match="token ids must be integers"):
        score_tokens(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"offsets must be non-decreasing: offsets\[2\]=1"):
        score_tokens(np.arange(10), [0, 5, 1])
    with pytest.raises(ValueError, match=r"offsets\[-1\]=11 exceeds the 10 tokens"):
        score_tokens(np.arange(10), [0, 11])
    with pytest.raises(TypeError, match=r"seqs\[0\] is str"):
        score_bytes(["text"])
    with pytest.raises(TypeError, match="needs offsets"):
        score_bytes(b"abc")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=700), min_size=1, max_size=12),
       st.sampled_from([1, 2, 5]))
def test_property_any_bytes(seqs, threads):
    got = score_bytes(seqs, threads=threads, empty="nan").compressed_bytes
    assert got.tolist() == [gzip_size_reference(s) for s in seqs]
