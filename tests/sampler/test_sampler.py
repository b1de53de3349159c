"""Native sampler: token-exact against the reference, invariant to threads and
splits, writes into every supported buffer, and rejects bad input clearly."""
import hashlib
import json
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

from pygzlaw.grammar import Grammar, random_pcfg
from pygzlaw.sampler import Sampler, SampleStats, sample_sentences
from pygzlaw.sampler.blocks import alias_table_u64
from pygzlaw.sampler.compile import compile_grammar
from pygzlaw.sampler.reference import (
    sample_docs_reference,
    sample_sentences_reference,
    stream_state,
)

GOLDEN = Path(__file__).parent.parent / "data" / "sampler_golden.json"


def tiny_supercritical() -> Grammar:
    # S -> S S [0.7] | 'a' [0.2] | 'b' [0.1]: mean offspring 1.4, rho > 1
    return Grammar.from_rules({"S": [(["S", "S"], 0.7), (["a"], 0.2), (["b"], 0.1)]}, start="S")


@pytest.mark.parametrize("preset,seed", [("main-1", 0), ("main-2", 1), ("main-3", 2),
                                         ("vocab300-2", 3), ("neareq-2", 4)])
@pytest.mark.parametrize("doc_tokens", [1, 2, 7, 64])
def test_docs_equal_reference(preset, seed, doc_tokens):
    g = random_pcfg(preset, seed)
    s = Sampler(g, doc_tokens, seed=seed + 100, max_depth=40, max_sentence_tokens=300,
                dtype=np.int32)
    got, stats = s.sample(12, first_doc=3)
    want, counts = sample_docs_reference(s.tables, s.seed, 3, 12, doc_tokens, max_depth=40,
                                         max_sentence_tokens=300)
    np.testing.assert_array_equal(got, want)
    assert stats.n_sentences == counts["n_sentences"]
    assert stats.n_rejected_depth == counts["n_rejected_depth"]
    assert stats.n_rejected_length == counts["n_rejected_length"]


@pytest.mark.parametrize("max_depth,max_len", [(3, 1000), (1000, 4), (5, 6)])
def test_guards_equal_reference(max_depth, max_len):
    g = tiny_supercritical()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = Sampler(g, 32, seed=9, max_depth=max_depth, max_sentence_tokens=max_len,
                    dtype=np.int32)
    got, stats = s.sample(20)
    want, counts = sample_docs_reference(s.tables, s.seed, 0, 20, 32, max_depth=max_depth,
                                         max_sentence_tokens=max_len)
    np.testing.assert_array_equal(got, want)
    assert stats.n_rejected > 0
    assert (stats.n_rejected_depth, stats.n_rejected_length) == (
        counts["n_rejected_depth"], counts["n_rejected_length"])


def test_sentences_equal_reference():
    g = random_pcfg("main-2", 5)
    toks, offs, stats = sample_sentences(g, 300, seed=11, first_sentence=17, max_depth=30,
                                         max_sentence_tokens=200, threads=2)
    ref = sample_sentences_reference(compile_grammar(g), 11, 17, 300, max_depth=30,
                                     max_sentence_tokens=200)
    assert [toks[offs[i]:offs[i + 1]].tolist() for i in range(300)] == ref
    assert stats.n_sentences == 300 and stats.n_tokens == offs[-1]


@pytest.mark.parametrize("threads", [1, 2, 3, 7, -1])
def test_threads_do_not_change_output(threads):
    g = random_pcfg("main-4", 0)
    want, want_stats = Sampler(g, 256, seed=5, threads=1).sample(500)
    got, stats = Sampler(g, 256, seed=5, threads=threads).sample(500)
    np.testing.assert_array_equal(got, want)
    assert stats == want_stats


def test_any_split_gives_same_documents():
    g = random_pcfg("main-3", 1)
    s = Sampler(g, 128, seed=2, threads=2)
    whole, _ = s.sample(300)
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(np.arange(1, 300), size=6, replace=False))
    parts = [s.sample(int(b - a), first_doc=int(a))[0]
             for a, b in zip(np.r_[0, cuts], np.r_[cuts, 300])]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_documents_are_packed_exactly():
    g = random_pcfg("main-2", 3)
    s = Sampler(g, 256, seed=4, separator="reserve")
    docs, stats = s.sample(200)
    assert docs.shape == (200, 256) and docs.dtype == np.uint16
    assert docs[:, 0].min() > 0, "a document never starts with the separator"
    assert docs.max() <= g.n_terminals and s.vocab_size == g.n_terminals + 1
    # consecutive separators would mean an empty sentence, which has no derivation
    assert not np.any((docs[:, 1:] == 0) & (docs[:, :-1] == 0))
    n_sep = int((docs == 0).sum())
    # every begun sentence but the cut one is followed by a separator (or ends the doc)
    assert stats.n_sentences - 200 <= n_sep <= stats.n_sentences


def test_research_separator_maps_terminals_unshifted():
    g = random_pcfg("main-1", 0)
    a, _ = Sampler(g, 64, seed=1, separator="reserve", dtype=np.int32).sample(50)
    b, _ = Sampler(g, 64, seed=1, separator="research", dtype=np.int32).sample(50)
    sep = a == 0
    np.testing.assert_array_equal(b[~sep], a[~sep] - 1)
    np.testing.assert_array_equal(b[sep], 0)


def test_dtypes_agree_and_torch_buffers_are_filled():
    torch = pytest.importorskip("torch")
    g = random_pcfg("main-3", 0)
    s = Sampler(g, 96, seed=3, dtype=np.int32)
    want, _ = s.sample(40)
    u16 = np.empty((40, 96), dtype=np.uint16)
    s.fill(u16)
    np.testing.assert_array_equal(u16.astype(np.int32), want)
    for dt in (torch.int32, torch.uint16):
        t = torch.empty((40, 96), dtype=dt)
        s.fill(t)
        np.testing.assert_array_equal(t.numpy().astype(np.int32), want)


def test_batches_stream_the_same_documents():
    g = random_pcfg("main-2", 0)
    s = Sampler(g, 64, seed=8, threads=2)
    want, want_stats = s.sample(1000, first_doc=10)
    for prefetch in (True, False):
        got, total = [], SampleStats()
        for buf, st in s.batches(96, first_doc=10, n_docs=1000, as_torch=False, prefetch=prefetch):
            got.append(np.array(buf))
            total = total + st
        assert [len(b) for b in got] == [96] * 10 + [40]
        np.testing.assert_array_equal(np.concatenate(got), want)
        assert total == want_stats


def test_batches_yield_torch_tensors():
    torch = pytest.importorskip("torch")
    s = Sampler(random_pcfg("main-1", 0), 32, seed=1)
    bufs = [b.clone() for b, _ in s.batches(8, n_docs=20, as_torch=True, pin_memory=False)]
    assert all(isinstance(b, torch.Tensor) for b in bufs)
    np.testing.assert_array_equal(torch.cat(bufs).numpy(), s.sample(20)[0])


def test_streaming_memory_is_flat():
    s = Sampler(random_pcfg("main-3", 0), 256, seed=1)

    def peak(n_batches):
        tracemalloc.start()
        for _ in s.batches(256, n_docs=256 * n_batches, as_torch=False):
            pass
        _, p = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return p

    small, large = peak(4), peak(64)
    assert large < 1.5 * small + (1 << 20), (small, large)


def test_tokens_gives_exact_count():
    s = Sampler(random_pcfg("main-1", 0), 100, seed=1)
    t = s.tokens(1234)
    assert t.shape == (1234,)
    np.testing.assert_array_equal(t, s.sample(13)[0].reshape(-1)[:1234])


def test_supercritical_terminates_and_reports_rejections():
    g = tiny_supercritical()
    with pytest.warns(UserWarning, match="supercritical"):
        s = Sampler(g, 64, seed=0, max_depth=50, max_sentence_tokens=2000)
    docs, stats = s.sample(100)
    assert docs.shape == (100, 64)
    assert stats.n_rejected > 0 and 0 < stats.rejection_rate < 1
    assert stats.to_dict()["rejection_rate"] == stats.rejection_rate


def test_impossible_document_is_named():
    g = Grammar.from_rules({"S": [(["a", "a", "a"], 1.0)]}, start="S")
    s = Sampler(g, 8, seed=0, max_sentence_tokens=2)
    with pytest.raises(RuntimeError, match=r"document 5: every sentence attempt was rejected"):
        s.sample(3, first_doc=5)


def test_alias_table_reproduces_probabilities():
    p = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625])
    thr, other = alias_table_u64(p)
    n = len(p)
    got = np.zeros(n)
    for j in range(n):
        keep = int(thr[j]) / 2**64
        got[j] += keep / n
        got[other[j]] += (1 - keep) / n
    np.testing.assert_allclose(got, p, atol=1e-9)


def test_stream_state_golden():
    # pins the RNG definition shared by csrc/common/rng.h and reference.py
    assert stream_state(0, 0) == stream_state(0, 0)
    assert stream_state(0, 1) != stream_state(1, 0)
    golden = json.loads(GOLDEN.read_text())
    assert stream_state(12345, 678) == golden["stream_state_12345_678"]


@pytest.mark.parametrize("preset", ["main-1", "main-2", "main-3", "main-4", "main-5", "main-6"])
def test_preset_output_is_stable(preset):
    """sha256 of 64 documents per preset: any change to the output bytes is deliberate."""
    golden = json.loads(GOLDEN.read_text())
    docs, _ = Sampler(random_pcfg(preset, 0), 256, seed=0, dtype=np.int32).sample(64)
    assert hashlib.sha256(docs.tobytes()).hexdigest() == golden[preset]


# -- bad input -------------------------------------------------------------
@pytest.fixture(scope="module")
def sampler():
    return Sampler(random_pcfg("main-1", 0), 16, seed=0)


@pytest.mark.parametrize("out,match", [
    (np.zeros((4, 16), dtype=np.int64), "dtype int64; expected int32 or uint16"),
    (np.zeros((4, 15), dtype=np.int32), r"shape \(4, 15\); expected \(n_docs, 16\)"),
    (np.zeros(16, dtype=np.int32), r"shape \(16,\)"),
    (np.zeros((16, 4), dtype=np.int32).T, "not C-contiguous"),
    (np.zeros((4, 32), dtype=np.int32)[:, ::2], "not C-contiguous"),
])
def test_bad_buffers(sampler, out, match):
    with pytest.raises(ValueError, match=match):
        sampler.fill(out)


def test_read_only_and_foreign_buffers(sampler):
    ro = np.zeros((2, 16), dtype=np.int32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        sampler.fill(ro)
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        sampler.fill([[0] * 16])
    with pytest.raises(ValueError, match="first_doc=-1"):
        sampler.fill(np.zeros((2, 16), dtype=np.int32), first_doc=-1)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"doc_tokens": 0}, ValueError, "doc_tokens=0 must be an int >= 1"),
    ({"threads": 0}, ValueError, "threads=0"),
    ({"max_depth": 0}, ValueError, "max_depth=0"),
    ({"max_depth": 2.5}, TypeError, "max_depth=2.5 must be an int"),
    ({"max_sentence_tokens": 0}, ValueError, "max_sentence_tokens=0"),
    ({"separator": "none"}, ValueError, "separator='none'"),
    ({"dtype": np.int64}, ValueError, "dtype=int64 is not supported"),
])
def test_bad_arguments(kwargs, exc, match):
    args = {"doc_tokens": 16, **kwargs}
    with pytest.raises(exc, match=match):
        Sampler(random_pcfg("main-1", 0), args.pop("doc_tokens"), seed=0, **args)


def test_uint16_refused_for_large_vocabulary():
    g = Grammar.from_rules({"S": [([str(i)], 1 / 70000) for i in range(70000)]}, start="S")
    with pytest.raises(ValueError, match="uint16 cannot hold 70001"):
        Sampler(g, 8, seed=0, dtype=np.uint16)
    s = Sampler(g, 8, seed=0)
    assert s.dtype == np.int32
    with pytest.raises(ValueError, match="pass an int32 buffer"):
        s.fill(np.zeros((1, 8), dtype=np.uint16))


def test_batch_stays_intact_until_the_iterator_advances_twice():
    s = Sampler(random_pcfg("main-2", 0), 32, seed=3, threads=2)
    want, _ = s.sample(80)
    it = s.batches(16, n_docs=80, as_torch=False)
    prev, _ = next(it)
    for k in range(1, 5):
        cur, _ = next(it)
        # the previous batch is still unchanged while the next one is being filled
        np.testing.assert_array_equal(prev, want[16 * (k - 1):16 * k])
        prev = cur


def test_batches_reraise_errors_and_stop_early_cleanly():
    g = Grammar.from_rules({"S": [(["a", "a", "a"], 1.0)]}, start="S")
    s = Sampler(g, 8, seed=0, max_sentence_tokens=2)
    with pytest.raises(RuntimeError, match="every sentence attempt was rejected"):
        next(s.batches(4, n_docs=8, as_torch=False))
    it = Sampler(random_pcfg("main-1", 0), 8, seed=0).batches(4, as_torch=False)  # endless
    assert next(it)[0].shape == (4, 8)
    it.close()
