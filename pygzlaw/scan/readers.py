"""Corpus readers: turn files into a stream of document parts and bad-input records.

Every reader is a generator of events (plain tuples, to stay cheap per document):

* ``(PART, doc_index, payload, last)``: a piece of document ``doc_index``; payload is
  ``bytes`` (raw text) or ``str`` (decoded JSON/Parquet text); ``last`` closes the
  document. Only ``.txt`` in file mode sends documents in several parts.
* ``(TOKENS, first_doc, array)``: rows of a PCFG token shard, shape (n_docs, doc_tokens).
* ``(BAD, line, kind, message)``: bad input; ``line`` is 1-based (a line, a Parquet
  row, a JSON array item, or a shard's first document + 1). The scan goes on.

Readers never raise for bad data; they raise only for programming errors. A corrupt
compressed stream ends its file with one ``corrupt_compressed`` record; what was read
before it stays scored. Text is UTF-8: a leading byte-order mark is skipped (the file
reads as without it), a UTF-16/32 file is one ``undecodable`` record. A lone surrogate
that a JSON escape puts into a document is reported by the scanner when it encodes the
document (``lone_surrogate`` writes the message).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from pygzlaw.textio import foreign_bom

PART, TOKENS, BAD = 0, 1, 2
FORMATS = ("txt", "jsonl", "json", "parquet", "pcfg")
COMPRESSIONS = ("", "gz", "zst")
READ_CHUNK_BYTES = 1 << 20
UTF8_BOM = b"\xef\xbb\xbf"
# json.loads keeps an unpaired UTF-16 surrogate escape (\ud83d alone) as a lone surrogate in
# the str, which no UTF-8 encoder accepts (paired escapes become one character). Documents are
# not searched for them: the scanner catches the UnicodeEncodeError when it encodes a document
# (free when none occurs; a search cost 13% of json.loads on text full of \u escapes).
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Unit:
    """One resumable piece of work: a file, stdin, or one PCFG shard.

    Attributes:
        key: stable name in the manifest and summaries (the path as given, or
            ``dir/shard-00000.npy``).
        path: file to open ("-" = stdin).
        fmt: one of FORMATS.
        compression: "", "gz" or "zst".
        size_bytes: on-disk size for the progress bar (0 if unknown).
        shard: for fmt "pcfg": {"file", "first_doc", "n_docs", "sha256", "doc_tokens", "dtype"}.
    """

    key: str
    path: str
    fmt: str
    compression: str = ""
    size_bytes: int = 0
    shard: dict | None = field(default=None, compare=False)


class ByteCounter:
    """Bytes consumed from the underlying (possibly compressed) file: drives progress."""

    def __init__(self) -> None:
        self.n_bytes = 0


class _CountingFile(io.RawIOBase):
    def __init__(self, f, counter: ByteCounter):
        self._f = f
        self._c = counter

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self._f.readinto(b)
        if n:
            self._c.n_bytes += n
        return n

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._c.n_bytes += len(data)
        return data


def split_suffix(path: str) -> tuple[str, str]:
    """(format, compression) from a file name, ("", "") if unsupported."""
    name = os.path.basename(path).lower()
    comp = ""
    for c in ("gz", "zst"):
        if name.endswith("." + c):
            comp, name = c, name[: -len(c) - 1]
            break
    for fmt in ("txt", "jsonl", "json", "parquet"):
        if name.endswith("." + fmt):
            return fmt, comp
    return "", comp


def parse_format(spec: str) -> tuple[str, str]:
    """'jsonl.zst' -> ('jsonl', 'zst'); used for stdin and --format."""
    parts = spec.lower().split(".")
    fmt, comp = parts[0], (parts[1] if len(parts) > 1 else "")
    if fmt not in FORMATS[:4] or comp not in COMPRESSIONS or len(parts) > 2:
        raise ValueError(f"format {spec!r} is unknown; use txt, jsonl, json or parquet, "
                         "optionally with .gz or .zst (e.g. jsonl.zst)")
    return fmt, comp


def _is_pcfg_dir(path: str) -> bool:
    m = os.path.join(path, "manifest.json")
    if not os.path.isfile(m):
        return False
    try:
        with open(m, "rb") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and "shards" in doc


def _pcfg_units(path: str) -> list[Unit]:
    with open(os.path.join(path, "manifest.json"), "rb") as f:
        doc = json.load(f)
    doc_tokens = doc.get("doc_tokens")
    dtype = doc.get("dtype")
    if not isinstance(doc_tokens, int) or doc_tokens < 1:
        raise ValueError(f"{path}/manifest.json: doc_tokens={doc_tokens!r} must be a positive int")
    if dtype not in ("uint16", "int32"):
        raise ValueError(f"{path}/manifest.json: dtype={dtype!r} must be 'uint16' or 'int32'")
    from pygzlaw.sampler.formats import FORMATS as SHARD_FORMATS

    shard_format = doc.get("shard_format", "npy")  # manifests before --format: npy
    if shard_format not in SHARD_FORMATS:
        raise ValueError(f"{path}/manifest.json: shard_format={shard_format!r} must be one of "
                         f"{', '.join(SHARD_FORMATS)} (written by a newer pygzlaw?)")
    units = []
    for i, s in enumerate(doc["shards"]):
        if not isinstance(s, dict) or "file" not in s:
            raise ValueError(f"{path}/manifest.json: shards[{i}] has no 'file'")
        fpath = os.path.join(path, s["file"])
        size = sum(os.path.getsize(os.path.join(path, f["file"]))
                   for f in s.get("files") or [s] if os.path.exists(os.path.join(path, f["file"])))
        units.append(Unit(key=fpath, path=fpath, fmt="pcfg", size_bytes=size,
                          shard={**s, "doc_tokens": doc_tokens, "dtype": dtype,
                                 "shard_format": shard_format, "dataset_dir": path}))
    return units


def discover(paths: list[str], *, fmt: str | None = None,
             stdin_format: str = "txt") -> tuple[list[Unit], list[str]]:
    """Expand paths into units, in a deterministic order.

    Directories are walked recursively in sorted order; a directory holding a
    ``manifest.json`` with a ``"shards"`` list is a PCFG shard set (one unit per shard).
    Files in directories with unsupported names are skipped and returned; a file
    named explicitly with an unsupported name becomes a unit that reports
    ``unsupported_file``.

    Args:
        paths: files, directories, or "-" (stdin).
        fmt: force a format for named files ("jsonl", "txt.gz", ...); None = by suffix.
        stdin_format: format of "-" (e.g. "jsonl.zst").

    Returns:
        (units, skipped_paths).
    """
    units: list[Unit] = []
    skipped: list[str] = []
    forced = parse_format(fmt) if fmt else None

    def add_file(p: str, named: bool) -> None:
        f, c = forced if forced else split_suffix(p)
        if not f:
            if named:
                units.append(Unit(key=p, path=p, fmt="", compression=c))
            else:
                skipped.append(p)
            return
        units.append(Unit(key=p, path=p, fmt=f, compression=c, size_bytes=os.path.getsize(p)))

    for p in paths:
        if p == "-":
            f, c = parse_format(stdin_format)
            units.append(Unit(key="-", path="-", fmt=f, compression=c))
        elif os.path.isdir(p):
            if _is_pcfg_dir(p):
                units.extend(_pcfg_units(p))
                continue
            for root, dirs, files in os.walk(p):
                dirs.sort()
                keep = []
                for d in dirs:
                    full = os.path.join(root, d)
                    if _is_pcfg_dir(full):
                        units.extend(_pcfg_units(full))
                    else:
                        keep.append(d)
                dirs[:] = keep
                for name in sorted(files):
                    add_file(os.path.join(root, name), named=False)
        elif os.path.exists(p):
            add_file(p, named=True)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return units, skipped


def _open_stream(unit: Unit, counter: ByteCounter):
    """Decompressed binary stream of a unit (caller closes)."""
    raw = sys.stdin.buffer if unit.path == "-" else open(unit.path, "rb")
    counted = _CountingFile(raw, counter)
    if unit.compression == "gz":
        return gzip.GzipFile(fileobj=counted, mode="rb"), raw
    if unit.compression == "zst":
        return _ZstdStream(counted), raw
    return counted, raw


class _ZstdStream:
    """Multi-frame zstd decompression that notices truncation.

    zstandard's stream_reader returns a silent EOF for a frame cut short (measured
    with zstandard 0.25 on a truncated single-block frame), so frames are decoded with
    decompressobj and an unfinished frame at end of input raises.
    """

    # Compressed bytes per step: bounds the output of one step for ordinary data.
    _STEP = 1 << 16

    def __init__(self, f):
        import zstandard

        self._zstd = zstandard
        self._f = f
        self._dctx = zstandard.ZstdDecompressor()  # one per file: not thread-safe
        self._obj = None
        self._pending = b""
        self._out: list[bytes] = []
        self._n_out = 0
        self._done = False

    def read(self, n: int = -1) -> bytes:
        """At least min(n, what is left) bytes; may return more than n (our callers
        split lines themselves), which saves a copy per call."""
        while not self._done and (n < 0 or self._n_out < n):
            self._step()
        data = b"".join(self._out)
        self._out = []
        self._n_out = 0
        return data

    def _step(self) -> None:
        if not self._pending:
            self._pending = self._f.read(self._STEP)
            if not self._pending:
                self._done = True
                if self._obj is not None:  # input ended inside a frame
                    raise self._zstd.ZstdError("truncated zstd stream: the last frame is incomplete")
                return
        if self._obj is None:
            self._obj = self._dctx.decompressobj()
        data, self._pending = self._pending, b""
        chunk = self._obj.decompress(data)
        if chunk:
            self._out.append(chunk)
            self._n_out += len(chunk)
        if self._obj.eof:
            self._pending = self._obj.unused_data
            self._obj = None


_DECOMPRESS_ERRORS = (OSError, EOFError, zlib.error, ValueError)


def _zstd_error():
    try:
        import zstandard

        return (zstandard.ZstdError,)
    except ImportError:  # pragma: no cover
        return ()


def _iter_line_blocks(stream) -> Iterator[list[bytes]]:
    """Lists of complete lines (no newline), one list per ~1 MB read."""
    rest = b""
    while True:
        chunk = stream.read(READ_CHUNK_BYTES)
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        if lines:
            yield lines
    if rest:
        yield [rest]


def read_unit(unit: Unit, counter: ByteCounter, *, field_name: str = "text",
              column: str = "text", txt_unit: str = "file", check_utf8: bool = True):
    """Events (see the module docstring) of one unit."""
    if unit.fmt == "":
        yield (BAD, 0, "unsupported_file",
               "unsupported file name; expected .txt, .jsonl, .json or .parquet "
               "(optionally .gz/.zst), or pass --format")
        return
    if unit.fmt == "pcfg":
        yield from _read_pcfg(unit, counter)
        return
    if unit.fmt == "parquet":
        yield from _read_parquet(unit, counter, column)
        return
    try:
        stream, raw = _open_stream(unit, counter)
    except OSError as exc:
        yield (BAD, 0, "read_error", f"cannot open: {exc}")
        return
    errors = _DECOMPRESS_ERRORS + _zstd_error()
    pos = [0]  # lines fully read so far, kept per block by the parsers (for error lines)
    try:
        try:
            stream, bad = _skip_bom(stream)
        except errors as exc:
            kind = "corrupt_compressed" if unit.compression else "read_error"
            yield (BAD, 1, kind, f"{type(exc).__name__}: {exc}")
            return
        if bad is not None:
            yield bad
            return
        if unit.fmt == "txt":
            gen = _txt_events(stream, txt_unit, check_utf8, pos)
        else:
            gen = _json_events(stream, unit.fmt, field_name, pos)
        try:
            yield from gen
        except errors as exc:
            kind = "corrupt_compressed" if unit.compression else "read_error"
            yield (BAD, pos[0] + 1, kind, f"{type(exc).__name__}: {exc}")
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()


def _skip_bom(stream):
    """(stream without a leading UTF-8 byte-order mark, None), or (None, BAD event) when the
    stream starts with a UTF-16/32 mark: those files are not UTF-8 at all.

    Editors on Windows (Notepad, Excel's "CSV UTF-8") write the UTF-8 mark; it is an
    encoding signature, not text, so the file reads as if it were absent."""
    head = b""
    while len(head) < 4:
        b = stream.read(READ_CHUNK_BYTES)
        if not b:
            break
        head += b
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM):]
    elif (name := foreign_bom(head)) is not None:
        return None, (BAD, 1, "undecodable",
                      f"the file starts with a {name} byte-order mark; pygzlaw reads "
                      f"UTF-8: convert it (e.g. iconv -f {name[:6]} -t UTF-8) and rescan")
    return _Prepend(head, stream), None


def _utf8_cut(data: bytes, cut: int) -> int:
    """``cut`` moved back (by at most 3 bytes) so that it does not split a UTF-8 character."""
    i = cut
    # Step back over continuation bytes 10xxxxxx to the lead byte of the last character.
    while i > 0 and cut - i < 4 and (data[i - 1] & 0xC0) == 0x80:
        i -= 1
    if i > 0 and cut - i < 4:
        lead = data[i - 1]
        need = 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else \
            4 if lead >> 3 == 0b11110 else 1
        if need > 1 + (cut - i):  # the last character is incomplete: keep it for the next part
            return i - 1
    return cut


def lone_surrogate(text: str, field_name: str):
    """Message for a str holding an unpaired UTF-16 surrogate (from a JSON escape), else None."""
    m = _SURROGATE_RE.search(text)
    if m is None:
        return None
    return (f"field {field_name!r} holds an unpaired UTF-16 surrogate \\u{ord(m.group()):04x} "
            f"at character {m.start()} (a JSON escape without its other half, not valid "
            "Unicode); document skipped: fix or drop this record at its source")


def _txt_events(stream, txt_unit: str, check_utf8: bool, pos: list):
    if txt_unit == "line":
        i = 0
        for lines in _iter_line_blocks(stream):
            for line in lines:
                if line[-1:] == b"\r":  # a CRLF line end is the line end, not text
                    line = line[:-1]
                if check_utf8:
                    try:
                        line.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        yield (BAD, i + 1, "undecodable", str(exc))
                        i += 1
                        continue
                yield (PART, i, line, True)
                i += 1
            pos[0] = i
        return
    # File mode: the whole file is one document, sent in ~1 MB parts cut at newlines.
    rest = b""
    first_line = 1
    while True:
        chunk = stream.read(READ_CHUNK_BYTES)
        if not chunk:
            break
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) < 16 * READ_CHUNK_BYTES:
            rest = data
            continue
        if cut == 0:
            # A huge line: pass it on in pieces, never splitting a UTF-8 character.
            cut = _utf8_cut(data, len(data))
        part, rest = data[:cut], data[cut:]
        n_newlines = part.count(b"\n")
        part, bad = _drop_undecodable(part, first_line) if check_utf8 else (part, [])
        yield from bad
        first_line += n_newlines
        pos[0] = first_line - 1
        yield (PART, 0, part, False)
    if rest:
        rest, bad = _drop_undecodable(rest, first_line) if check_utf8 else (rest, [])
        yield from bad
    yield (PART, 0, rest, True)


def _drop_undecodable(part: bytes, first_line: int):
    try:
        part.decode("utf-8")
        return part, []
    except UnicodeDecodeError:
        pass
    good, bad = [], []
    for j, line in enumerate(part.split(b"\n")):
        try:
            line.decode("utf-8")
            good.append(line)
        except UnicodeDecodeError as exc:
            bad.append((BAD, first_line + j, "undecodable", str(exc)))
    return b"\n".join(good), bad


def _loads(data: bytes, first_line: int = 1):
    """Parse JSON (a whole file, or one JSON Lines line at ``first_line``) as
    ``(value, None)``, or ``(None, bad_record)`` naming the line of the fault."""
    try:
        return json.loads(data), None
    except UnicodeDecodeError as exc:
        return None, (BAD, first_line, "undecodable", str(exc))
    except json.JSONDecodeError as exc:
        return None, (BAD, first_line + exc.lineno - 1, "invalid_json",
                      f"{exc.msg} at column {exc.colno}")


def _json_events(stream, fmt: str, field_name: str, pos: list):
    keys = field_name.split(".")
    if fmt == "json":
        head = stream.read(READ_CHUNK_BYTES)
        if head.lstrip()[:1] == b"[":
            # A JSON array is parsed whole (not streaming): prefer JSON Lines for big data.
            items, bad = _loads(head + stream.read())
            if bad is not None:
                yield bad
                return
            for i, obj in enumerate(items):
                yield _json_doc(obj, i, keys, field_name)
            return
        first = next((ln for ln in head.split(b"\n") if ln.strip()), b"")
        if first.lstrip()[:1] == b"{" and not _parses(first):
            # One JSON object spread over several lines (pretty-printed): one document.
            obj, bad = _loads(head + stream.read())
            if bad is not None:
                yield bad
                return
            yield _json_doc(obj, 0, keys, field_name)
            return
        stream = _Prepend(head, stream)
    line_no = 0
    for lines in _iter_line_blocks(stream):
        # One json.loads per ~1 MB block (as an array) costs about half of one call per
        # line; a block with a bad line falls back to per-line parsing to name it.
        block = [ln for ln in lines if ln.strip()]
        objs = None
        if len(block) == len(lines) and block:
            try:
                objs = json.loads(b"[" + b",".join(block) + b"]")
                if len(objs) != len(block):  # a line held several values: find it
                    objs = None
            except ValueError:  # JSONDecodeError and UnicodeDecodeError
                objs = None
        if objs is not None:
            if len(keys) == 1:
                # Inline of _json_doc for the common top-level field.
                key = keys[0]
                for j, obj in enumerate(objs, start=line_no):
                    v = obj.get(key) if type(obj) is dict else None
                    if type(v) is str:
                        yield (PART, j, v, True)
                    else:
                        yield _json_doc(obj, j, keys, field_name)
            else:
                for j, obj in enumerate(objs):
                    yield _json_doc(obj, line_no + j, keys, field_name)
            line_no += len(lines)
            pos[0] = line_no
            continue
        for line in lines:
            i = line_no
            line_no += 1
            if not line.strip():
                continue
            obj, bad = _loads(line, i + 1)
            yield bad if bad is not None else _json_doc(obj, i, keys, field_name)
        pos[0] = line_no


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _json_doc(obj, i: int, keys: list[str], field_name: str):
    v = obj
    for k in keys:
        if not isinstance(v, dict) or k not in v:
            return (BAD, i + 1, "missing_field", f"no field {field_name!r}")
        v = v[k]
    if not isinstance(v, str):
        return (BAD, i + 1, "not_text", f"field {field_name!r} is {type(v).__name__}, not a string")
    return (PART, i, v, True)


class _Prepend:
    def __init__(self, head: bytes, stream):
        self._head = head
        self._s = stream

    def read(self, n: int = -1) -> bytes:
        if self._head:
            h, self._head = self._head, b""
            return h
        return self._s.read(n)


def _read_parquet(unit: Unit, counter: ByteCounter, column: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = None
    try:
        if unit.compression or unit.path == "-":
            # Parquet needs random access: decompress to a temporary file first.
            stream, raw = _open_stream(unit, counter)
            tmp = tempfile.TemporaryFile()
            try:
                while True:
                    b = stream.read(READ_CHUNK_BYTES)
                    if not b:
                        break
                    tmp.write(b)
            except _DECOMPRESS_ERRORS + _zstd_error() as exc:
                yield (BAD, 0, "corrupt_compressed", f"{type(exc).__name__}: {exc}")
                return
            finally:
                if raw is not sys.stdin.buffer:
                    raw.close()
            tmp.seek(0)
            src = tmp
        else:
            src = unit.path
        try:
            pf = pq.ParquetFile(src)
        except (OSError, pa.ArrowException) as exc:
            yield (BAD, 0, "corrupt_file", f"not a readable Parquet file: {exc}")
            return
        if column not in pf.schema_arrow.names:
            yield (BAD, 0, "missing_field",
                   f"no column {column!r} (columns: {', '.join(pf.schema_arrow.names)})")
            return
        per_row = (unit.size_bytes / pf.metadata.num_rows) if pf.metadata.num_rows else 0.0
        row = 0
        try:
            for batch in pf.iter_batches(columns=[column], batch_size=1024):
                for v in batch.column(0).to_pylist():
                    if v is None:
                        yield (BAD, row + 1, "missing_field", f"column {column!r} is null")
                    elif isinstance(v, (str, bytes)):
                        yield (PART, row, v, True)
                    else:
                        yield (BAD, row + 1, "not_text",
                               f"column {column!r} holds {type(v).__name__}, not text")
                    row += 1
                if not unit.compression:
                    counter.n_bytes = int(row * per_row)
        except (OSError, pa.ArrowException) as exc:
            yield (BAD, row + 1, "corrupt_file", f"{type(exc).__name__}: {exc}")
    finally:
        if tmp is not None:
            tmp.close()


# Rows of a shard handed on at once: 4096 x 256 int32 tokens = 4 MB.
_SHARD_ROWS = 4096


def _read_pcfg(unit: Unit, counter: ByteCounter):
    """Rows of a shard of any ``generate --format`` (npy, parquet, bin, mds): one window
    per document; every file of the shard is checked against its manifest sha256."""
    s = unit.shard
    first_doc = int(s.get("first_doc", 0))
    line = first_doc + 1
    fmt = s.get("shard_format", "npy")
    files = s.get("files") or [{"file": None, "sha256": s.get("sha256")}]
    for fe in files:
        fpath = unit.path if fe["file"] is None else os.path.join(s["dataset_dir"], fe["file"])
        if not os.path.exists(fpath):
            yield (BAD, line, "read_error", f"shard file {os.path.basename(fpath)} is missing")
            return
        want = fe.get("sha256")
        if want:
            h = hashlib.sha256()
            with open(fpath, "rb") as f:
                for b in iter(lambda: f.read(READ_CHUNK_BYTES), b""):
                    h.update(b)
            if h.hexdigest() != want:
                yield (BAD, line, "sha256_mismatch", f"{os.path.basename(fpath)}: sha256 "
                       f"{h.hexdigest()} != manifest {want}; shard skipped")
                return
    try:
        if fmt == "npy":
            arr = np.load(unit.path, mmap_mode="r", allow_pickle=False)
        else:
            from pygzlaw.sampler.formats import read_shard

            arr = read_shard(fmt, s["dataset_dir"], s, s["doc_tokens"], s["dtype"])
    except (OSError, ValueError, KeyError) as exc:
        yield (BAD, line, "bad_shard", f"cannot load the {fmt} shard: {exc}")
        return
    n_docs = s.get("n_docs")
    if arr.ndim != 2 or arr.shape[1] != s["doc_tokens"] or (n_docs is not None and arr.shape[0] != n_docs):
        yield (BAD, line, "bad_shard", f"shape {arr.shape} != (n_docs={n_docs}, "
               f"doc_tokens={s['doc_tokens']}) from manifest.json")
        return
    if arr.dtype != np.dtype(s["dtype"]):
        yield (BAD, line, "bad_shard", f"dtype {arr.dtype} != manifest dtype {s['dtype']}")
        return
    row_bytes = arr.shape[1] * arr.dtype.itemsize
    for b in range(0, arr.shape[0], _SHARD_ROWS):
        chunk = np.ascontiguousarray(arr[b:b + _SHARD_ROWS])
        counter.n_bytes += chunk.shape[0] * row_bytes
        yield (TOKENS, first_doc + b, chunk)
