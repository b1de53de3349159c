import gzip
import json
import random

import pytest

WORDS = ("the of and a to in is you that it he was for on are as with his they at be this "
         "have from or one had by word but not what all were we when your can said").split()


def make_doc(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


@pytest.fixture
def corpus(tmp_path):
    """A small corpus with every format and some bad input.

    Returns (root, docs) where docs maps file name -> list of good texts in order.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    rng = random.Random(0)
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    docs = {}
    texts = [make_doc(rng, rng.randint(0, 700)) for _ in range(60)]
    lines = [json.dumps({"text": t, "id": i}) for i, t in enumerate(texts)]
    # bad lines at known line numbers 61, 62, 63, 64
    bad = ["{not json", json.dumps({"id": 1}), json.dumps({"text": 3}), ""]
    raw = ("\n".join(lines + bad) + "\n").encode() + b'{"text": "\xff\xfe"}\n'
    (root / "a.jsonl").write_bytes(raw)
    (root / "sub" / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    (root / "sub" / "c.jsonl.gz").write_bytes(gzip.compress(raw))
    docs["a.jsonl"] = docs["b.jsonl.zst"] = docs["c.jsonl.gz"] = texts
    txt = make_doc(rng, 3000)
    (root / "d.txt").write_text(txt)
    docs["d.txt"] = [txt]
    ptexts = [make_doc(rng, rng.randint(100, 400)) for _ in range(30)]
    pq.write_table(pa.table({"text": ptexts + [None], "n": list(range(31))}), root / "e.parquet")
    docs["e.parquet"] = ptexts
    (root / "f.json").write_text(json.dumps([{"text": t} for t in texts[:10]]))
    docs["f.json"] = texts[:10]
    (root / "notes.md").write_text("skipped: unsupported name in a directory")
    return root, docs
