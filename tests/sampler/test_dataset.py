"""write_dataset: the Python API behind pygzlaw generate gives the CLI's bytes and resumes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pygzlaw.cli import main
from pygzlaw.grammar import random_pcfg
from pygzlaw.sampler import Sampler
from pygzlaw.sampler.dataset import MANIFEST, write_dataset


def test_api_equals_cli_and_resumes(tmp_path):
    g = random_pcfg("main-2", 0)
    res = write_dataset(g, str(tmp_path / "api"), n_tokens=5000, doc_tokens=64, seed=3, shard_docs=30,
                        origin={"preset": "main-2", "grammar_seed": 0})
    assert res["stats"]["n_docs"] == 79 and res["stats"]["n_shards"] == 3 and res["n_resumed"] == 0
    assert main(["generate", "--preset", "main-2", "--tokens", "5000", "--doc-tokens", "64", "--seed", "3",
                 "--shard-docs", "30", "--out", str(tmp_path / "cli"), "--quiet", "--json"]) == 0
    for name in ("shard-00000.npy", "shard-00001.npy", "shard-00002.npy"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    a = json.loads((tmp_path / "api" / MANIFEST).read_text())
    assert a["complete"] and a["stats"]["gzip_ratio_median"] == res["stats"]["gzip_ratio_median"]
    want = np.empty((30, 64), dtype=np.uint16)
    Sampler(g, 64, seed=3).fill(want, first_doc=30)
    assert np.array_equal(np.load(tmp_path / "api" / "shard-00001.npy"), want)
    again = write_dataset(g, str(tmp_path / "api"), n_tokens=5000, doc_tokens=64, seed=3, shard_docs=30,
                          origin={"preset": "main-2", "grammar_seed": 0})
    assert again["n_resumed"] == 3


def test_other_parameters_are_refused(tmp_path):
    g = random_pcfg("main-1", 0)
    write_dataset(g, str(tmp_path), n_tokens=1000, doc_tokens=32, seed=1)
    with pytest.raises(ValueError, match=r"seed: 1 → 2"):
        write_dataset(g, str(tmp_path), n_tokens=1000, doc_tokens=32, seed=2)
