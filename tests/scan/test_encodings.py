"""Inputs real users bring (issue 13): lone surrogates, byte-order marks, long multi-byte
lines, changed inputs on resume. Each case's input is built here (the shared copies under
../shared/cases/new-user-2 are used only when present, and only as an extra check)."""
import gzip
import json
import os
import random
from pathlib import Path

import pytest
import zstandard

from pygzlaw.scan import scan
from pygzlaw.scan import readers

CASES = Path(__file__).resolve().parents[3] / "shared" / "cases" / "new-user-2"
TEXT = "a document long enough to give a few windows of sixteen bytes each, twice over."


def _scan(path, **kw):
    kw.setdefault("window_bytes", 16)
    return scan([os.fspath(path)], progress=False, **kw)


def _windows(summary):
    return summary["overall"]["n_windows"], summary["overall"]["stats"]["median"]


# --- 01: an escaped lone surrogate in JSON -------------------------------------------------

LONE = ['{"text": "half an emoji: \\ud83d"}', '{"text": "lone \\udc00 low surrogate"}',
        '{"text": "reversed pair \\ude00\\ud83d"}', '{"text": "upper case \\uD83D escape"}',
        '{"meta": {"body": "nested \\udbff"}}']


@pytest.mark.parametrize("line", LONE)
def test_lone_surrogate_is_bad_input_with_line_and_scan_goes_on(tmp_path, line):
    nested = "meta" in line
    good = json.dumps({"meta": {"body": TEXT}} if nested else {"text": TEXT})
    p = tmp_path / "a.jsonl"
    p.write_text("\n".join([good, line, good]) + "\n")
    s = _scan(p, field="meta.body" if nested else "text")
    assert s["overall"]["n_docs"] == 2
    assert s["overall"]["bad_input"] == {"undecodable": 1}
    ex = s["bad_examples"][0]
    assert (ex["file"], ex["line"]) == (str(p), 2)
    assert "surrogate" in ex["message"] and "\\ud" in ex["message"]


def test_paired_surrogates_and_literal_backslash_u_are_text(tmp_path):
    # A valid pair is one character (U+1F600); an escaped backslash before "ud83d" is text.
    docs = ['{"text": "smile \\ud83d\\ude00 ' + TEXT + '"}',
            '{"text": "literal \\\\ud83d ' + TEXT + '"}']
    p = tmp_path / "a.jsonl"
    p.write_text("\n".join(docs) + "\n")
    s = _scan(p)
    assert s["overall"]["bad_input_total"] == 0 and s["overall"]["n_docs"] == 2
    want = sum(len(json.loads(d)["text"].encode()) // 16 for d in docs)
    assert s["overall"]["n_windows"] == want


def test_lone_surrogate_in_every_json_path(tmp_path):
    """Block fast path, per-line fallback (block with an invalid line), JSON array, compressed."""
    good = json.dumps({"text": TEXT})
    bad = LONE[0]
    (tmp_path / "fallback.jsonl").write_text("\n".join([good, "{oops", bad, good]) + "\n")
    (tmp_path / "array.json").write_text("[" + ",".join([good, bad, good]) + "]")
    (tmp_path / "c.jsonl.zst").write_bytes(
        zstandard.ZstdCompressor().compress(("\n".join([good, bad]) + "\n").encode()))
    (tmp_path / "d.jsonl.gz").write_bytes(gzip.compress(("\n".join([bad, good]) + "\n").encode()))
    s = _scan(tmp_path)
    lines = {(os.path.basename(e["file"]), e["line"], e["kind"]) for e in s["bad_examples"]}
    assert lines == {("fallback.jsonl", 2, "invalid_json"), ("fallback.jsonl", 3, "undecodable"),
                     ("array.json", 2, "undecodable"), ("c.jsonl.zst", 2, "undecodable"),
                     ("d.jsonl.gz", 1, "undecodable")}
    assert s["n_units_done"] == 4 and s["overall"]["n_docs"] == 2 + 2 + 1 + 1


def test_directory_with_a_bad_file_scans_the_later_files_and_writes_the_summary(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for name in ("a_good.jsonl", "c_good.jsonl"):
        (d / name).write_text(json.dumps({"text": TEXT}) + "\n")
    (d / "b_bad.jsonl").write_text(LONE[0] + "\n")
    out = tmp_path / "out"
    s = _scan(d, out_dir=os.fspath(out))
    assert s["n_units_done"] == 3 and s["overall"]["n_docs"] == 2
    assert json.loads((out / "summary.json").read_text())["overall"]["bad_input"] == {"undecodable": 1}


# --- 06 / 07: byte-order marks ---------------------------------------------------------------

def _bom_variants(tmp_path, name, body: bytes):
    """(file with a UTF-8 BOM, same without), for plain, .gz and .zst."""
    out = []
    for comp, enc in (("", lambda b: b), (".gz", gzip.compress),
                      (".zst", zstandard.ZstdCompressor().compress)):
        a, b = tmp_path / f"bom-{name}{comp}", tmp_path / f"plain-{name}{comp}"
        a.write_bytes(enc(readers.UTF8_BOM + body))
        b.write_bytes(enc(body))
        out.append((a, b))
    return out


@pytest.mark.parametrize("name, body, kw", [
    ("x.json", b'[\n  {"text": "first document of a JSON array saved by Notepad"},\n'
               b'  {"text": "second document of a JSON array saved by Notepad"}\n]\n', {}),
    ("x.json", b'{"text": "a .json file holding JSON Lines, first line"}\n'
               b'{"text": "and its second line, also a document"}\n', {}),
    ("x.jsonl", b'{"text": "JSON Lines saved with a byte-order mark, line one"}\r\n'
                b'{"text": "line two, with Windows line ends"}\r\n', {}),
    ("x.txt", ("caf\u00e9 text saved by an editor on Windows " * 4).encode(), {}),
    ("x.txt", b"line one of a text file\r\nline two of a text file\r\n", {"txt_unit": "line"}),
])
def test_utf8_bom_reads_as_without(tmp_path, name, body, kw):
    for with_bom, without in _bom_variants(tmp_path, name, body):
        a, b = _scan(with_bom, **kw), _scan(without, **kw)
        assert a["overall"]["bad_input_total"] == 0, a["bad_examples"]
        for k in ("n_docs", "n_windows", "n_tails", "tail_units", "window_raw_bytes"):
            assert a["overall"][k] == b["overall"][k], k
        assert a["overall"]["stats"] == b["overall"]["stats"]
        assert a["overall"]["n_docs"] >= 1


@pytest.mark.parametrize("enc, name", [("utf-16", "UTF-16LE"), ("utf-32", "UTF-32LE")])
def test_utf16_and_utf32_files_are_refused_with_the_fix(tmp_path, enc, name):
    p = tmp_path / "w.jsonl"
    p.write_bytes(json.dumps({"text": TEXT}).encode(enc))  # Python writes the LE mark first
    s = _scan(p)
    assert s["overall"]["bad_input"] == {"undecodable": 1}
    msg = s["bad_examples"][0]["message"]
    assert name in msg and "iconv" in msg and s["bad_examples"][0]["line"] == 1


# --- 11: one huge line of multi-byte UTF-8 ---------------------------------------------------

@pytest.mark.parametrize("char, pad", [("\u4e2d", 0), ("\u4e2d", 1), ("\u4e2d", 2),
                                       ("\U0001f600", 1), ("\u00e9", 1)])
def test_huge_line_of_multibyte_text_is_scored_whole(tmp_path, monkeypatch, char, pad):
    # Shrink the read chunk so a "huge" line (over 16 chunks) is a few hundred KB.
    monkeypatch.setattr(readers, "READ_CHUNK_BYTES", 1 << 14)
    text = ("x" * pad + char * ((17 << 14) // len(char.encode()) + 123)).encode()
    p = tmp_path / "one_line.txt.gz"
    p.write_bytes(gzip.compress(text))
    s = _scan(p, window_bytes=1024)
    assert s["overall"]["bad_input_total"] == 0, s["bad_examples"]
    assert s["overall"]["n_windows"] == len(text) // 1024
    assert s["overall"]["tail_units"] == len(text) % 1024


def test_utf8_cut_never_splits_a_character():
    rng = random.Random(0)
    chars = ["a", "\u00e9", "\u4e2d", "\U0001f600"]
    for _ in range(300):
        data = "".join(rng.choice(chars) for _ in range(rng.randint(1, 12))).encode()
        for cut in range(len(data) + 1):
            c = readers._utf8_cut(data, cut)
            assert cut - 3 <= c <= cut
            data[:c].decode("utf-8")  # whole characters only
            data[c:].decode("utf-8")
            if cut < len(data) and c == cut:  # not moved: cut was already a boundary
                data[:cut].decode("utf-8")


@pytest.mark.skipif(not (CASES / "11_one_line_cjk_17MB.txt.gz").exists(),
                    reason="../shared/cases not present (a clone without shared/)")
def test_case_11_shared_input():
    raw = gzip.decompress((CASES / "11_one_line_cjk_17MB.txt.gz").read_bytes())
    s = _scan(CASES / "11_one_line_cjk_17MB.txt.gz", window_bytes=1024)
    assert s["overall"]["bad_input_total"] == 0
    assert s["overall"]["n_windows"] == len(raw) // 1024


# --- 12: resume notices a changed input ------------------------------------------------------

def _crawl(p, day, n=3):
    with open(p, "a") as f:
        for i in range(n):
            f.write(json.dumps({"text": f"day {day} page {i} " * 30}) + "\n")


def test_resume_rescans_a_grown_file_and_says_so(tmp_path, capsys):
    from pygzlaw.cli import main

    p, out = tmp_path / "crawl.jsonl", tmp_path / "out"
    _crawl(p, "one")
    args = [os.fspath(p), "--out", os.fspath(out), "--window-bytes", "64", "--no-progress"]
    assert main(["scan", *args]) == 0
    first = capsys.readouterr().out
    assert "changed" not in first
    _crawl(p, "two")
    assert main(["scan", *args]) == 0
    again = capsys.readouterr().out
    assert again.splitlines()[0].startswith("units 1/1 (1 changed since the last scan, rescanned)")
    assert "size" in again and "docs 6" in again
    fresh = _scan(p, window_bytes=64)
    saved = json.loads((out / "summary.json").read_text())
    assert saved["overall"]["n_windows"] == fresh["overall"]["n_windows"]
    assert saved["throughput"]["units_rescanned_changed"] == 1
    assert saved["changed_inputs"][0]["unit"] == os.fspath(p)
    # Unchanged now: the third run resumes without scanning.
    assert main(["scan", *args]) == 0
    assert "changed" not in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["throughput"]["units_resumed"] == 1


def test_resume_notices_same_size_changes(tmp_path):
    p, out = tmp_path / "a.jsonl", os.fspath(tmp_path / "out")
    p.write_text(json.dumps({"text": "a" * 200}) + "\n")
    _scan(p, out_dir=out)
    st = os.stat(p)
    # Same size, new content, modification time put back (as cp -p or rsync -t would).
    p.write_text(json.dumps({"text": "ab" * 100}) + "\n")
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    s = _scan(p, out_dir=out)
    assert s["changed_inputs"] == [{"unit": os.fspath(p),
                                    "reason": "content changed (same size and modification time)"}]
    assert s["overall"]["stats"]["median"] == _scan(p)["overall"]["stats"]["median"]
    # Only the modification time changes: rescanned too (the content may differ in the middle).
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert _scan(p, out_dir=out)["changed_inputs"][0]["reason"] == "modification time changed"


def test_resume_keeps_unchanged_files_and_rescans_manifests_without_fingerprints(tmp_path):
    d, out = tmp_path / "in", tmp_path / "out"
    d.mkdir()
    for name in ("a.jsonl", "b.jsonl"):
        _crawl(d / name, name)
    _scan(d, out_dir=os.fspath(out))
    _crawl(d / "b.jsonl", "later", n=1)
    s = _scan(d, out_dir=os.fspath(out))
    assert [c["unit"] for c in s["changed_inputs"]] == [os.fspath(d / "b.jsonl")]
    assert s["throughput"]["units_resumed"] == 1 and s["overall"]["n_docs"] == 7
    # A manifest written before fingerprints existed: its units are scanned again.
    m = out / "manifest.jsonl"
    lines = m.read_text().splitlines()
    recs = [json.loads(x) for x in lines[1:]]
    for r in recs:
        r.pop("input")
    m.write_text("\n".join([lines[0]] + [json.dumps(r) for r in recs]) + "\n")
    s = _scan(d, out_dir=os.fspath(out))
    assert len(s["changed_inputs"]) == 2 and "older pygzlaw" in s["changed_inputs"][0]["reason"]


def test_lone_surrogate_in_tokenizer_mode_is_bad_input(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([TEXT], trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    tok.save(str(tmp_path / "tok.json"))
    p = tmp_path / "a.jsonl"
    good = json.dumps({"text": TEXT + " caf\u00e9"})
    p.write_text("\n".join([good, LONE[0], good]) + "\n")
    s = _scan(p, tokenizer=str(tmp_path / "tok.json"), window_tokens=4)
    assert s["overall"]["n_docs"] == 2 and s["overall"]["bad_input"] == {"undecodable": 1}
    assert s["bad_examples"][0]["line"] == 2 and "surrogate" in s["bad_examples"][0]["message"]


@pytest.mark.parametrize("bom", [b"", readers.UTF8_BOM])
def test_pretty_printed_json_object_is_one_document(tmp_path, bom):
    doc = {"id": 7, "text": TEXT, "meta": {"lang": "en"}}
    (tmp_path / "one.json").write_bytes(bom + json.dumps(doc, indent=2).encode())
    (tmp_path / "one.jsonl").write_text(json.dumps(doc) + "\n")
    a, b = _scan(tmp_path / "one.json"), _scan(tmp_path / "one.jsonl")
    assert a["overall"]["bad_input_total"] == 0 and a["overall"]["n_docs"] == 1
    assert a["overall"]["n_windows"] == b["overall"]["n_windows"] > 0
    (tmp_path / "bad.json").write_text('{\n  "text": "x",\n  "oops"\n}\n')
    s = _scan(tmp_path / "bad.json")
    assert s["bad_examples"][0]["line"] == 4 and s["bad_examples"][0]["kind"] == "invalid_json"


def test_txt_lines_with_crlf_ends_score_like_lf(tmp_path):
    lines = [f"line {i} of a text file saved on Windows, " * 3 for i in range(20)]
    (tmp_path / "crlf.txt").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    (tmp_path / "lf.txt").write_bytes(("\n".join(lines) + "\n").encode())
    a = _scan(tmp_path / "crlf.txt", txt_unit="line")
    b = _scan(tmp_path / "lf.txt", txt_unit="line")
    assert a["overall"]["n_docs"] == b["overall"]["n_docs"] == 20
    assert a["overall"]["stats"] == b["overall"]["stats"]
    assert a["overall"]["window_raw_bytes"] == b["overall"]["window_raw_bytes"]
