"""The data path: fixed document ranges per step, split between ranks; shards; validation; H."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pygzlaw.grammar import random_pcfg  # noqa: E402
from pygzlaw.sampler import Sampler  # noqa: E402
from pygzlaw.train.config import VAL_FIRST_DOC  # noqa: E402
from pygzlaw.train.data import (Prefetcher, SamplerSource, ShardSource, make_sources,  # noqa: E402
                                measure_h)
from trainutil import SEQ, tiny  # noqa: E402


@pytest.fixture(scope="module")
def sampler():
    return Sampler(random_pcfg("vocab300-1", 0), SEQ, seed=1234, dtype=np.int32)


def _steps(source, *, n_steps, batch_docs, grad_accum, rank=0, world_size=1, first_step=0):
    p = Prefetcher(source, first_step=first_step, n_steps=n_steps, batch_docs=batch_docs,
                   grad_accum=grad_accum, rank=rank, world_size=world_size, depth=2)
    out = []
    try:
        for s in range(first_step, n_steps):
            buf, slot = p.get(s)
            out.append(buf.clone())
            p.release(slot)
    finally:
        p.close()
    return out


def test_step_is_the_fixed_document_range(sampler):
    src = SamplerSource(sampler)
    got = _steps(src, n_steps=4, batch_docs=6, grad_accum=2)
    want, _ = sampler.sample(4 * 12)                           # documents [0, 48)
    for s, buf in enumerate(got):
        assert buf.shape == (2, 6, SEQ) and buf.dtype == torch.int32
        assert np.array_equal(buf.reshape(12, SEQ).numpy(), want[12 * s:12 * (s + 1)])


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_split_the_same_global_batch(sampler, world_size):
    src = SamplerSource(sampler)
    one = _steps(src, n_steps=3, batch_docs=6, grad_accum=2)
    parts = [_steps(src, n_steps=3, batch_docs=6, grad_accum=2, rank=r, world_size=world_size)
             for r in range(world_size)]
    for s in range(3):
        joined = torch.cat([p[s] for p in parts], dim=1)       # ranks side by side per micro
        assert torch.equal(joined, one[s])


def test_resume_starts_at_the_step(sampler):
    src = SamplerSource(sampler)
    full = _steps(src, n_steps=5, batch_docs=4, grad_accum=1)
    tail = _steps(src, n_steps=5, batch_docs=4, grad_accum=1, first_step=3)
    assert all(torch.equal(a, b) for a, b in zip(full[3:], tail))


def test_producer_error_reaches_the_consumer():
    class Broken(SamplerSource):
        def __init__(self):
            self.seq_len, self.vocab_size, self.n_docs = SEQ, 10, None

        def fill(self, out, first_doc):
            raise RuntimeError(f"cannot read document {first_doc}")

    p = Prefetcher(Broken(), first_step=0, n_steps=2, batch_docs=2, grad_accum=1)
    with pytest.raises(RuntimeError, match="cannot read document 0"):
        p.get(0)
    p.close()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from pygzlaw.cli import main

    out = tmp_path_factory.mktemp("data") / "ds"
    assert main(["generate", "--preset", "vocab300-1", "--seed", "1234", "--tokens", str(50 * SEQ),
                 "--doc-tokens", str(SEQ), "--shard-docs", "16", "--threads", "1",
                 "--out", str(out), "--quiet", "--json"]) == 0
    return out


def test_shards_read_across_shard_boundaries(dataset, sampler):
    src = ShardSource(str(dataset))
    assert src.n_docs == 50 and src.vocab_size == 301
    out = np.empty((20, SEQ), dtype=np.int32)
    src.fill(out, 10)                                           # spans shards 0, 1 and 2
    want, _ = sampler.sample(20, first_doc=10)
    assert np.array_equal(out, want)
    with pytest.raises(ValueError, match=r"documents \[45, 65\) run past the dataset's 50"):
        src.fill(out, 45)


def test_dataset_config_checks(dataset, tmp_path):
    with pytest.raises(ValueError, match="seq_len=32 but .* holds 16-token documents"):
        make_sources(tiny(data_dir=str(dataset), seq_len=32, n_tokens=4 * 32))
    with pytest.raises(ValueError, match=r"needs 52 documents but .* holds 50"):
        make_sources(tiny(data_dir=str(dataset), n_tokens=13 * 4 * SEQ))
    with pytest.raises(ValueError, match="has no manifest.json"):
        make_sources(tiny(data_dir=str(tmp_path)))


def test_validation_comes_from_a_disjoint_range(sampler):
    s = make_sources(tiny())
    out = np.empty((3, SEQ), dtype=np.int32)
    s.val.fill(out, VAL_FIRST_DOC)
    want, _ = sampler.sample(3, first_doc=VAL_FIRST_DOC)
    assert np.array_equal(out, want)
    # training reads far below 2**40 documents: n_steps * B for any realistic run
    assert tiny(n_tokens=10**12).n_steps * 4 < VAL_FIRST_DOC


def test_h_is_the_median_gzip_ratio(sampler):
    import gzip

    s = make_sources(tiny())
    rows, _ = sampler.sample(31, first_doc=VAL_FIRST_DOC)
    want = np.median([len(gzip.compress(r.astype(">i4").tobytes(), 9, mtime=0)) / r.nbytes
                      for r in rows])
    assert measure_h(s, 31) == pytest.approx(want, rel=0, abs=0)
    assert measure_h(s, 0) is None


def test_unknown_grammar_is_named():
    with pytest.raises(ValueError, match=r"grammar='main-9' is not a preset or a file; presets: "):
        make_sources(tiny(grammar="main-9"))
    with pytest.raises(ValueError, match=r"grammar='nope.json': no such grammar file"):
        make_sources(tiny(grammar="nope.json"))
