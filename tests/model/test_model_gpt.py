"""GPT forward, loss, causality, the reference forward, kernel paths and init determinism.

Tiny shapes throughout (vocab 37 with an odd count, context 16, widths 16-64)."""
import dataclasses
import math
import os

import pytest
import torch
import torch.nn.functional as F

from pygzlaw.model import GPT, ModelConfig, gpt_forward_reference, model_config
from pygzlaw.model.reference import rope_tables_reference

V, T = 37, 16


def _cfg(**kw):
    return ModelConfig(**{**dict(vocab_size=V, seq_len=T, d_model=32, n_layers=2, n_heads=2,
                                 kernels="torch"), **kw})


def _model(seed=0, **kw):
    m = GPT(_cfg(**kw))
    m.init_weights(seed)
    return m


def _batch(B=3, t=T, seed=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (B, t), generator=g), torch.randint(0, V, (B, t), generator=g)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)


@pytest.mark.parametrize("t", [1, 7, T])
def test_shapes_and_dtypes(t):
    m = _model()
    idx, tgt = _batch(t=t)
    logits = m(idx)
    assert logits.shape == (3, t, V) and logits.dtype == torch.float32
    loss = m(idx, tgt)
    assert loss.shape == () and loss.dtype == torch.float32 and torch.isfinite(loss)
    # an untrained model is near uniform: loss ~ ln V
    assert abs(loss.item() - math.log(V)) < 0.1


def test_causal_later_tokens_do_not_change_earlier_logits():
    m = _model()
    idx, _ = _batch()
    base = m(idx)
    for pos in (0, 5, T - 1):
        changed = idx.clone()
        changed[:, pos] = (changed[:, pos] + 1) % V
        out = m(changed)
        torch.testing.assert_close(out[:, :pos], base[:, :pos], rtol=0, atol=1e-6)
        assert (out[:, pos:] - base[:, pos:]).abs().amax(-1).min() > 1e-4


def test_prefix_gives_the_prefix_of_the_logits():
    m = _model()
    idx, _ = _batch()
    torch.testing.assert_close(m(idx[:, :6]), m(idx)[:, :6], rtol=1e-5, atol=1e-6)


def test_loss_equals_cross_entropy_of_the_logits():
    m = _model(seed=3)
    idx, tgt = _batch()
    tgt[0, :4] = -100                                   # ignored targets leave the mean
    want = F.cross_entropy(m(idx).reshape(-1, V), tgt.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(m(idx, tgt), want, rtol=1e-6, atol=1e-6)


def _grads(loss, model):
    loss.backward()
    out = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return out


@pytest.mark.parametrize("kw", [{}, {"tie_embeddings": True}, {"d_model": 48, "n_heads": 3,
                                                                "ffn_dim": 40, "n_layers": 1}])
def test_model_equals_the_plain_reference(kw):
    m = _model(seed=1, **kw)
    idx, tgt = _batch()
    torch.testing.assert_close(m(idx), gpt_forward_reference(m, idx), rtol=1e-5, atol=1e-5)
    g_model = _grads(m(idx, tgt), m)
    g_ref = _grads(gpt_forward_reference(m, idx, tgt), m)
    assert g_model.keys() == g_ref.keys()
    for name in g_model:
        torch.testing.assert_close(g_model[name], g_ref[name], rtol=1e-4, atol=1e-6, msg=name)


def test_rope_tables_match_the_reference_and_survive_meta_build():
    with torch.device("meta"):
        m = GPT(_cfg())
    m.to_empty(device="cpu")
    m.init_weights(0)
    cos, sin = rope_tables_reference(T, 16, 10000.0)
    torch.testing.assert_close(m.rope_cos, cos, rtol=0, atol=1e-7)
    torch.testing.assert_close(m.rope_sin, sin, rtol=0, atol=1e-7)


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available(),
                    reason="Triton kernels need a GPU or TRITON_INTERPRET=1 (set by tests/conftest.py)")
def test_triton_and_torch_kernel_paths_agree():
    pytest.importorskip("triton")
    dev = "cuda" if torch.cuda.is_available() else "cpu"  # real Triton launches need CUDA tensors
    ref = _model(seed=2, d_model=16, n_heads=1, n_layers=1).to(dev)
    tri = GPT(dataclasses.replace(ref.cfg, kernels="triton")).to(dev)
    tri.load_state_dict(ref.state_dict())
    tri.init_weights(2)                                 # fills RoPE tables, same weights
    idx, tgt = (t.to(dev) for t in _batch(B=2, t=8))
    torch.testing.assert_close(tri(idx), ref(idx), rtol=1e-5, atol=1e-5)
    g_ref, g_tri = _grads(ref(idx, tgt), ref), _grads(tri(idx, tgt), tri)
    for name in g_ref:
        torch.testing.assert_close(g_tri[name], g_ref[name], rtol=1e-4, atol=1e-5, msg=name)


def test_auto_on_cpu_is_the_torch_path():
    m = _model(seed=4)
    auto = GPT(dataclasses.replace(m.cfg, kernels="auto"))
    auto.init_weights(4)
    idx, tgt = _batch()
    assert torch.equal(auto(idx, tgt), m(idx, tgt))


def test_every_parameter_gets_a_finite_gradient():
    m = _model()
    idx, tgt = _batch()
    for name, g in _grads(m(idx, tgt), m).items():
        assert torch.isfinite(g).all() and g.abs().sum() > 0, name


def test_tied_embeddings_share_one_tensor():
    m = _model(tie_embeddings=True)
    assert m.head.output.weight is m.tok_embeddings.weight
    names = [n for n, _ in m.named_parameters()]
    assert "head.output.weight" not in names and "tok_embeddings.weight" in names


def test_init_is_deterministic_and_seeded():
    a, b, c = _model(seed=7), _model(seed=7), _model(seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["layers.0.attention.wqkv.weight"],
                           sc["layers.0.attention.wqkv.weight"])
    # parameters get independent draws: no two matrices of one shape are equal
    assert not torch.equal(sa["layers.0.attention.wo.weight"], sa["layers.1.attention.wo.weight"])


def test_init_does_not_depend_on_the_global_rng_or_the_build_path():
    torch.manual_seed(1)
    a = _model(seed=7)
    torch.manual_seed(2)
    with torch.device("meta"):
        b = GPT(_cfg())
    b.to_empty(device="cpu")
    b.init_weights(7)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_init_statistics():
    cfg = model_config("w64", vocab_size=500, seq_len=16)   # 2 layers
    m = GPT(cfg)
    m.init_weights(0)
    depth_std = 0.02 / math.sqrt(2 * cfg.n_layers)
    for name, p in m.named_parameters():
        if name.endswith("norm.weight"):
            assert torch.equal(p, torch.ones_like(p)), name
            continue
        want = depth_std if name.endswith(("wo.weight", "w2.weight")) else 0.02
        assert abs(p.std().item() / want - 1) < 0.05, name
        assert abs(p.mean().item()) < 3 * want / math.sqrt(p.numel()) + 1e-4, name


@pytest.mark.parametrize("make,msg", [
    (lambda: (torch.zeros(2, T + 1, dtype=torch.long), None), r"sequence length 17 exceeds "
                                                               r"ModelConfig.seq_len=16"),
    (lambda: (torch.zeros(T, dtype=torch.long), None), r"idx must be \(B, T\) token ids"),
    (lambda: (torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 5, dtype=torch.long)),
     r"targets shape \(2, 5\) != idx shape \(2, 4\)"),
])
def test_bad_input_is_named(make, msg):
    m = _model()
    idx, tgt = make()
    with pytest.raises(ValueError, match=msg):
        m(idx, tgt)


def test_out_of_range_target_is_named():
    m = _model()
    idx, tgt = _batch()
    tgt[1, 2] = V
    with pytest.raises(ValueError, match=r"targets\[18\]=37 is outside \[0, 37\)"):
        m(idx, tgt)
