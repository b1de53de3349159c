"""Token shard formats that other trainers read: npy, parquet, bin (+ Megatron .idx), mds.

A generated dataset is a list of shards; shard i holds documents
``first_doc .. first_doc + n_docs - 1``, each ``doc_tokens`` token ids, and is written
as one or more files whose sizes and sha256 go in the dataset manifest (so a rerun
keeps a shard only if every one of its files still matches). Every file is written
to a temporary name and renamed (``pygzlaw.atomic``), so a killed run never leaves a
half-written shard under its final name.

Formats (``FORMATS``):

* ``npy``: ``shard-00000.npy``, an array of shape (n_docs, doc_tokens) (``np.save``).
* ``parquet``: ``shard-00000.parquet``, one row per document with columns
  ``input_ids`` (list of uint16/int32 token ids) and ``doc_index`` (int64, the
  document's index in the dataset), written by pyarrow in row groups of about
  ``PARQUET_ROW_GROUP_BYTES`` of tokens. Hugging Face ``datasets``
  (``load_dataset("parquet", data_files=...)``), polars and DuckDB read it as it is.
* ``bin``: ``shard-00000.bin``, the flat token stream (documents back to back, the
  dtype of the dataset, native little-endian as numpy writes it), which nanoGPT-style
  trainers ``np.memmap``; and ``shard-00000.idx``, Megatron-LM's indexed-dataset
  index, so ``megatron.core.datasets.indexed_dataset.IndexedDataset("…/shard-00000")``
  opens the pair. The index layout (Megatron-LM, ``megatron/core/datasets/
  indexed_dataset.py``, version 1): the 9-byte magic ``b"MMIDIDX\\x00\\x00"``; version
  (<u8, 1); dtype code (<u1: uint8 1, int8 2, int16 3, int32 4, int64 5, float64 6,
  float32 7, uint16 8); sequence count S (<u8); document count S + 1 (<u8); sequence
  lengths (int32, S); sequence byte offsets into .bin (int64, S); document indices
  (int64, S + 1: 0, 1, ..., S, since every document is one sequence).
* ``mds``: ``shard-00000/`` holding MosaicML Streaming shards and their
  ``index.json``, written by the ``mosaicml-streaming`` library's own ``MDSWriter``
  (optional extra ``pygzlaw[mds]``); columns ``input_ids`` (``ndarray:<dtype>:<doc_tokens>``)
  and ``doc_index`` (int64). When a dataset is complete, ``finish_dataset`` merges the
  shard indices into ``DIR/index.json``, so ``StreamingDataset(local=DIR)`` reads it all.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pygzlaw.atomic import atomic_open, write_bytes

__all__ = ["FORMATS", "shard_stem", "shard_primary", "write_shard", "verify_shard",
           "read_shard", "finish_dataset", "megatron_index_bytes", "read_megatron_index",
           "PARQUET_ROW_GROUP_BYTES", "MEGATRON_DTYPE_CODES"]

FORMATS = ("npy", "parquet", "bin", "mds")
# Token bytes per Parquet row group: ~32 MiB keeps a row group a few thousand documents
# (8192 x 256 int32, 65536 x 256 uint16), small enough for readers that load one group
# at a time and large enough that the per-group footer costs nothing.
PARQUET_ROW_GROUP_BYTES = 32 << 20
MEGATRON_INDEX_MAGIC = b"MMIDIDX\x00\x00"
MEGATRON_INDEX_VERSION = 1
# Megatron-LM's DType enum (indexed_dataset.py).
MEGATRON_DTYPE_CODES = {"uint8": 1, "int8": 2, "int16": 3, "int32": 4, "int64": 5,
                        "float64": 6, "float32": 7, "uint16": 8}
_HASH_BLOCK_BYTES = 1 << 22
_MDS_EXTRA = "pip install 'pygzlaw[mds]' (mosaicml-streaming)"


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r} (--format) must be one of {', '.join(FORMATS)}")


def shard_stem(i: int) -> str:
    """Name of shard i without suffix: ``shard-00000``."""
    return f"shard-{i:05d}"


def shard_primary(fmt: str, i: int) -> str:
    """The file of shard i that holds its tokens (relative to the dataset directory):
    ``shard-00000.npy`` / ``.parquet`` / ``.bin``, or ``shard-00000/index.json`` (mds)."""
    _check_format(fmt)
    if fmt == "mds":
        return f"{shard_stem(i)}/index.json"
    return f"{shard_stem(i)}.{fmt}"


class _HashingWriter:
    """File wrapper that sha256-hashes what is written through it (no second read)."""

    def __init__(self, f) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()
        self.n_bytes = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.n_bytes += memoryview(data).nbytes
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()


def _file_sha256(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_HASH_BLOCK_BYTES), b""):
            h.update(block)
            n += len(block)
    return h.hexdigest(), n


def _entry(rel: str, sha: str, n_bytes: int) -> dict:
    return {"file": rel, "sha256": sha, "n_bytes": n_bytes}


def _write_hashed(path: str, write) -> tuple[str, int]:
    with atomic_open(path, "wb") as f:
        w = _HashingWriter(f)
        write(w)
    return w.sha256.hexdigest(), w.n_bytes


def megatron_index_bytes(n_docs: int, doc_tokens: int, dtype) -> bytes:
    """Megatron-LM indexed-dataset index (``.idx``, version 1) of ``n_docs`` documents of
    ``doc_tokens`` tokens each, stored back to back in the matching ``.bin``.

    Args:
        n_docs: number of documents (= sequences), >= 0.
        doc_tokens: tokens per document, >= 1.
        dtype: token dtype of the .bin (a key of ``MEGATRON_DTYPE_CODES``).

    Returns:
        the index file's bytes (layout in the module docstring).

    Raises:
        ValueError: a dtype Megatron has no code for, or doc_tokens >= 2**31 (its
            sequence lengths are int32).
    """
    dt = np.dtype(dtype)
    if dt.name not in MEGATRON_DTYPE_CODES:
        raise ValueError(f"dtype {dt.name} has no Megatron indexed-dataset code "
                         f"(supported: {', '.join(MEGATRON_DTYPE_CODES)})")
    if not 1 <= doc_tokens < 2**31:
        raise ValueError(f"doc_tokens={doc_tokens} must be in [1, 2**31) for a Megatron index")
    lengths = np.full(n_docs, doc_tokens, dtype="<i4")
    pointers = np.arange(n_docs, dtype="<i8") * (doc_tokens * dt.itemsize)
    doc_idx = np.arange(n_docs + 1, dtype="<i8")
    head = (MEGATRON_INDEX_MAGIC + struct.pack("<Q", MEGATRON_INDEX_VERSION)
            + struct.pack("<B", MEGATRON_DTYPE_CODES[dt.name])
            + struct.pack("<Q", n_docs) + struct.pack("<Q", n_docs + 1))
    return head + lengths.tobytes() + pointers.tobytes() + doc_idx.tobytes()


def read_megatron_index(path: str) -> dict:
    """Parse a Megatron-LM ``.idx`` (version 1, not multimodal).

    Returns:
        {"dtype": numpy dtype, "lengths": int32 (S,), "pointers": int64 (S,) byte
        offsets, "document_indices": int64 (D,)}.

    Raises:
        ValueError: naming the file and the field that is wrong (magic, version,
            dtype code, truncated arrays).
    """
    with open(path, "rb") as f:
        data = f.read()
    head = len(MEGATRON_INDEX_MAGIC) + 8 + 1 + 8 + 8
    if len(data) < head or data[:9] != MEGATRON_INDEX_MAGIC:
        raise ValueError(f"{path}: not a Megatron indexed-dataset index (magic "
                         f"{data[:9]!r} != {MEGATRON_INDEX_MAGIC!r})")
    version, = struct.unpack_from("<Q", data, 9)
    if version != MEGATRON_INDEX_VERSION:
        raise ValueError(f"{path}: index version {version} != {MEGATRON_INDEX_VERSION}")
    code, = struct.unpack_from("<B", data, 17)
    names = {v: k for k, v in MEGATRON_DTYPE_CODES.items()}
    if code not in names:
        raise ValueError(f"{path}: dtype code {code} is not one of Megatron's "
                         f"{sorted(names)}")
    n_seq, n_doc = struct.unpack_from("<QQ", data, 18)
    need = head + n_seq * 4 + n_seq * 8 + n_doc * 8
    if len(data) < need:
        raise ValueError(f"{path}: {len(data)} bytes, but {n_seq} sequences and {n_doc} "
                         f"document indices need {need}")
    lengths = np.frombuffer(data, "<i4", n_seq, head)
    pointers = np.frombuffer(data, "<i8", n_seq, head + 4 * n_seq)
    doc_idx = np.frombuffer(data, "<i8", n_doc, head + 12 * n_seq)
    return {"dtype": np.dtype(names[code]), "lengths": lengths, "pointers": pointers,
            "document_indices": doc_idx}


def _parquet_table(tokens: np.ndarray, first_doc: int):
    import pyarrow as pa

    n, t = tokens.shape
    values = pa.array(tokens.reshape(-1))  # zero-copy for a contiguous array
    offsets = pa.array(np.arange(0, (n + 1) * t, t, dtype=np.int32 if n * t < 2**31 else np.int64))
    ids = (pa.ListArray if offsets.type == pa.int32() else pa.LargeListArray).from_arrays(
        offsets, values)
    index = pa.array(np.arange(first_doc, first_doc + n, dtype=np.int64))
    return pa.Table.from_arrays([ids, index], names=["input_ids", "doc_index"])


def write_shard(fmt: str, out_dir: str, i: int, tokens: np.ndarray, first_doc: int) -> dict:
    """Write shard i of a dataset in ``fmt``, atomically, hashing every file.

    Args:
        fmt: one of FORMATS.
        out_dir: the dataset directory.
        i: shard number (names the files: ``shard-{i:05d}``).
        tokens: (n_docs, doc_tokens) uint16 or int32, C-contiguous; row r is document
            ``first_doc + r``.
        first_doc: index of the shard's first document in the dataset.

    Returns:
        {"file": primary file, "sha256", "n_bytes" (of the primary file), "files":
        [{"file", "sha256", "n_bytes"}, ...] (every file of the shard, paths relative
        to out_dir)}.

    Raises:
        ValueError: unknown fmt, or tokens not 2-D.
        ImportError: fmt "mds" without mosaicml-streaming (names the extra).
    """
    _check_format(fmt)
    tokens = np.ascontiguousarray(tokens)
    if tokens.ndim != 2:
        raise ValueError(f"tokens has shape {tokens.shape}; a shard is (n_docs, doc_tokens)")
    stem = shard_stem(i)
    files: list[dict] = []
    if fmt == "npy":
        rel = stem + ".npy"
        sha, nb = _write_hashed(os.path.join(out_dir, rel),
                                lambda w: np.save(w, tokens, allow_pickle=False))
        files.append(_entry(rel, sha, nb))
    elif fmt == "bin":
        rel = stem + ".bin"
        flat = tokens.reshape(-1)
        if flat.dtype.byteorder == ">":  # memmap readers assume little-endian
            flat = flat.astype(flat.dtype.newbyteorder("<"))
        idx = megatron_index_bytes(tokens.shape[0], tokens.shape[1], tokens.dtype)
        # The index is written (and fsync'd) beside the token stream, not after it: a
        # second fsync in series cost bin ~25% of npy's write speed on 8 MB shards.
        with ThreadPoolExecutor(max_workers=1) as pool:
            idx_done = pool.submit(write_bytes, os.path.join(out_dir, stem + ".idx"), idx)
            sha, nb = _write_hashed(os.path.join(out_dir, rel),
                                    lambda w: w.write(memoryview(flat).cast("B")))
            idx_done.result()
        files.append(_entry(rel, sha, nb))
        files.append(_entry(stem + ".idx", hashlib.sha256(idx).hexdigest(), len(idx)))
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        rel = stem + ".parquet"
        row_bytes = max(1, tokens.shape[1] * tokens.itemsize)
        rows = max(1, min(tokens.shape[0], PARQUET_ROW_GROUP_BYTES // row_bytes))
        sink = pa.BufferOutputStream()
        pq.write_table(_parquet_table(tokens, first_doc), sink, row_group_size=rows)
        data = sink.getvalue()
        sha, nb = _write_hashed(os.path.join(out_dir, rel), lambda w: w.write(data))
        files.append(_entry(rel, sha, nb))
    else:
        files = _write_mds(out_dir, stem, tokens, first_doc)
    primary = files[-1] if fmt == "mds" else files[0]
    return {"file": primary["file"], "sha256": primary["sha256"],
            "n_bytes": primary["n_bytes"], "files": files}


def _import_mds_writer():
    try:
        from streaming import MDSWriter
    except ImportError as exc:
        raise ImportError(f"format 'mds' needs mosaicml-streaming: {_MDS_EXTRA} "
                          f"({type(exc).__name__}: {exc})") from None
    return MDSWriter


def _write_mds(out_dir: str, stem: str, tokens: np.ndarray, first_doc: int) -> list[dict]:
    MDSWriter = _import_mds_writer()
    final = os.path.join(out_dir, stem)
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=out_dir, prefix="." + stem + ".", suffix=".tmp")
    try:
        columns = {"input_ids": f"ndarray:{tokens.dtype.name}:{tokens.shape[1]}",
                   "doc_index": "int64"}
        # MDSWriter refuses an existing non-empty directory; it writes into tmp/ itself.
        os.rmdir(tmp)
        with MDSWriter(out=tmp, columns=columns, compression=None, hashes=[],
                       size_limit=1 << 26, progress_bar=False) as w:
            for r in range(tokens.shape[0]):
                w.write({"input_ids": tokens[r], "doc_index": first_doc + r})
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    names = sorted(n for n in os.listdir(final) if n != "index.json") + ["index.json"]
    return [_entry(f"{stem}/{n}", *_file_sha256(os.path.join(final, n))) for n in names]


def verify_shard(out_dir: str, entry: dict) -> bool:
    """Whether every file of a manifest shard entry exists with its recorded size and
    sha256 (entries from before ``files`` existed: the one ``file``)."""
    files = entry.get("files") or [{"file": entry["file"], "sha256": entry.get("sha256"),
                                    "n_bytes": entry.get("n_bytes")}]
    for f in files:
        path = os.path.join(out_dir, f["file"])
        if not os.path.isfile(path) or os.path.getsize(path) != f.get("n_bytes"):
            return False
        if _file_sha256(path) != (f.get("sha256"), f.get("n_bytes")):
            return False
    return True


def read_shard(fmt: str, out_dir: str, entry: dict, doc_tokens: int, dtype) -> np.ndarray:
    """The tokens of a written shard, shape (entry["n_docs"], doc_tokens), ``dtype``
    (a read-only memory map for npy and bin).

    Raises:
        ValueError: the file's shape, dtype or document indices disagree with the
            manifest (naming the file and the field).
    """
    _check_format(fmt)
    dt = np.dtype(dtype)
    n = int(entry["n_docs"])
    path = os.path.join(out_dir, entry["file"])
    if fmt == "npy":
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    elif fmt == "bin":
        want = n * doc_tokens * dt.itemsize
        if os.path.getsize(path) != want:
            raise ValueError(f"{path}: {os.path.getsize(path)} bytes != n_docs {n} x "
                             f"doc_tokens {doc_tokens} x {dt.itemsize} bytes")
        arr = np.memmap(path, dtype=dt.newbyteorder("<"), mode="r", shape=(n, doc_tokens))
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=["input_ids", "doc_index"])
        col = table.column("input_ids").combine_chunks()
        arr = col.flatten().to_numpy(zero_copy_only=False)
        if arr.size != n * doc_tokens:
            raise ValueError(f"{path}: {arr.size} tokens != n_docs {n} x doc_tokens {doc_tokens}")
        arr = arr.reshape(n, doc_tokens)
        first = int(entry.get("first_doc", 0))
        idx = table.column("doc_index").to_numpy()
        if not np.array_equal(idx, np.arange(first, first + n)):
            raise ValueError(f"{path}: doc_index is not {first}..{first + n - 1}")
    else:
        arr = _read_mds(os.path.dirname(path), n, doc_tokens, dt)
    if arr.shape != (n, doc_tokens) or arr.dtype != dt:
        raise ValueError(f"{path}: shape {arr.shape} dtype {arr.dtype} != manifest "
                         f"({n}, {doc_tokens}) {dt}")
    return arr


def _read_mds(shard_dir: str, n: int, doc_tokens: int, dt: np.dtype) -> np.ndarray:
    """Tokens of an uncompressed MDS shard directory written by ``_write_mds``.

    MDS shard layout (mosaicml-streaming docs, "MDS" format): uint32 sample count, then
    uint32 byte offsets of the samples (count + 1), then the samples; a sample with only
    fixed-size columns is the columns' bytes in name order (``int64`` 8 little-endian
    bytes, ``ndarray:<dtype>:<shape>`` raw).
    """
    with open(os.path.join(shard_dir, "index.json"), encoding="utf-8") as f:
        index = json.load(f)
    out = np.empty((n, doc_tokens), dtype=dt)
    row = 0
    tok_bytes = doc_tokens * dt.itemsize
    for s in index["shards"]:
        if s.get("compression"):
            raise ValueError(f"{shard_dir}: compressed MDS shards are not read here")
        with open(os.path.join(shard_dir, s["raw_data"]["basename"]), "rb") as f:
            data = f.read()
        count, = struct.unpack_from("<I", data, 0)
        offsets = np.frombuffer(data, "<u4", count + 1, 4)
        if row + count > n:
            raise ValueError(f"{shard_dir}: more than n_docs={n} samples")
        for k in range(count):
            start = int(offsets[k])
            if int(offsets[k + 1]) - start != tok_bytes + 8:
                raise ValueError(f"{shard_dir}: sample {row + k} is not {tok_bytes + 8} bytes")
            # MDSWriter orders columns by name: doc_index (int64), then input_ids.
            out[row + k] = np.frombuffer(data, dt, doc_tokens, start + 8)
        row += count
    if row != n:
        raise ValueError(f"{shard_dir}: {row} samples != n_docs {n}")
    return out


def finish_dataset(fmt: str, out_dir: str, entries: list[dict]) -> dict | None:
    """Files that describe a whole dataset once all shards are written.

    For mds: ``out_dir/index.json``, the shard indices merged (paths prefixed with the
    shard directory), so ``StreamingDataset(local=out_dir)`` reads every shard.

    Returns:
        {"file", "sha256", "n_bytes"} of the file written, or None (other formats).
    """
    _check_format(fmt)
    if fmt != "mds":
        return None
    shards = []
    version = 2
    for e in entries:
        sub = os.path.dirname(e["file"])
        with open(os.path.join(out_dir, sub, "index.json"), encoding="utf-8") as f:
            index = json.load(f)
        version = index.get("version", version)
        for s in index["shards"]:  # freshly loaded: rewritten in place
            for part in ("raw_data", "zip_data"):
                if s.get(part):
                    s[part]["basename"] = f"{sub}/{s[part]['basename']}"
            shards.append(s)
    data = (json.dumps({"version": version, "shards": shards}, sort_keys=True) + "\n").encode()
    write_bytes(os.path.join(out_dir, "index.json"), data)
    return _entry("index.json", hashlib.sha256(data).hexdigest(), len(data))
