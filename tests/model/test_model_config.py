"""ModelConfig, presets, the size family, parameter counts and FLOPs (counts checked against
the real module, built on the meta device)."""
import ast
import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest

from pygzlaw.model import (
    PAPER_PARAMS,
    ModelConfig,
    chinchilla_flops_per_token,
    count_params,
    family_shape,
    model_config,
    train_flops_per_token,
)

MODEL_DIR = Path(__file__).resolve().parents[2] / "pygzlaw" / "model"

PAPER_SHAPES = {  # Pandey 2024 §4: d_model, layers, heads
    "gpt-4m": (64, 2, 1), "gpt-9m": (128, 4, 2), "gpt-20m": (256, 6, 4),
    "gpt-59m": (512, 10, 8), "gpt-275m": (1024, 20, 16), "gpt-1.4b": (2048, 30, 32),
}


def _module_numel(cfg):
    import torch

    from pygzlaw.model.gpt import GPT

    with torch.device("meta"):
        model = GPT(cfg)
    return (sum(p.numel() for p in model.parameters()),
            sum(p.numel() for n, p in model.named_parameters()
                if n not in ("tok_embeddings.weight", "head.output.weight")))


@pytest.mark.parametrize("name", list(PAPER_PARAMS))
def test_paper_presets_have_the_papers_exact_counts(name):
    cfg = model_config(name, vocab_size=32001, seq_len=256)
    assert (cfg.d_model, cfg.n_layers, cfg.n_heads) == PAPER_SHAPES[name]
    assert cfg.ffn_dim == 2 * cfg.d_model and cfg.head_dim == 64 and not cfg.tie_embeddings
    n = count_params(cfg)
    assert n.total == PAPER_PARAMS[name]
    assert _module_numel(cfg) == (n.total, n.non_embedding)


@pytest.mark.parametrize("name,vocab,kw", [
    ("w16", 301, {}), ("w48", 301, {}), ("w96", 7, {"tie_embeddings": True}),
    ("gpt-9m", 513, {"tie_embeddings": True}),
])
def test_count_params_matches_the_module(name, vocab, kw):
    cfg = model_config(name, vocab_size=vocab, seq_len=64, **kw)
    n = count_params(cfg)
    assert _module_numel(cfg) == (n.total, n.non_embedding)
    tied = 1 if cfg.tie_embeddings else 2
    assert n.total - n.non_embedding == tied * vocab * cfg.d_model


def test_custom_ffn_dim_is_counted():
    cfg = ModelConfig(vocab_size=50, seq_len=8, d_model=32, n_layers=3, n_heads=2, ffn_dim=40)
    assert count_params(cfg).non_embedding == 3 * (4 * 32 * 32 + 3 * 32 * 40 + 2 * 32) + 32
    assert _module_numel(cfg)[0] == count_params(cfg).total


@pytest.mark.parametrize("width", [8, 16, 24, 32, 40, 48, 64, 72, 96, 128, 136, 160, 192, 256,
                                   384, 512, 1024])
def test_family_rule(width):
    n_layers, n_heads = family_shape(width)
    assert n_layers == max(1, math.floor(width / 32 + 0.5))
    assert n_heads >= 1 and width % n_heads == 0
    head_dim = width // n_heads
    assert head_dim <= 64 and head_dim % 2 == 0
    if width % 64 == 0:
        assert head_dim == 64
    # smallest such count of heads
    assert all(width % h or (width // h) % 2 or width // h > 64 for h in range(1, n_heads))
    cfg = model_config(f"w{width}", vocab_size=300, seq_len=256)
    assert (cfg.n_layers, cfg.n_heads, cfg.d_model) == (n_layers, n_heads, width)


def test_family_matches_paper_layers_where_stated():
    assert family_shape(64) == (2, 1) and family_shape(128) == (4, 2)


def test_family_spans_two_decades_at_a_pcfg_vocabulary():
    n = [count_params(model_config(f"w{w}", 300, 256)) for w in (16, 32, 64, 128, 256)]
    assert all(a.total < b.total for a, b in zip(n, n[1:]))
    assert n[-1].total / n[0].total > 100
    assert n[-1].non_embedding / n[0].non_embedding > 1000


def test_flops_formula():
    cfg = model_config("gpt-4m", 32001, 256)
    n = count_params(cfg)
    attn = 12 * 2 * 64 * 256
    assert train_flops_per_token(cfg) == 6 * (n.non_embedding + 32001 * 64) + attn
    assert train_flops_per_token(cfg, include_head=False) == 6 * n.non_embedding + attn
    assert chinchilla_flops_per_token(cfg) == 6 * n.total
    tied = dataclasses.replace(cfg, tie_embeddings=True)
    assert train_flops_per_token(tied) == train_flops_per_token(cfg)  # the head still multiplies
    assert chinchilla_flops_per_token(tied) == 6 * (n.total - 32001 * 64)


def test_dict_round_trip():
    cfg = model_config("w32", 300, 128, tie_embeddings=True, kernels="torch")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['widht'\]"):
        ModelConfig.from_dict({**cfg.to_dict(), "widht": 3})


def test_ffn_dim_defaults_to_twice_width():
    assert ModelConfig(10, 8, 48, 1, 3).ffn_dim == 96


BAD = [
    (dict(n_heads=3), r"n_heads=3 does not divide d_model=64"),
    (dict(n_heads=64), r"head_dim .* = 1 is odd"),
    (dict(d_model=0), r"ModelConfig.d_model=0 must be >= 1"),
    (dict(n_layers=-2), r"ModelConfig.n_layers=-2 must be >= 1"),
    (dict(vocab_size=0), r"ModelConfig.vocab_size=0 must be >= 1"),
    (dict(seq_len=0), r"ModelConfig.seq_len=0 must be >= 1"),
    (dict(ffn_dim=0), r"ModelConfig.ffn_dim=0 must be >= 1"),
    (dict(n_layers=2.0), r"ModelConfig.n_layers=2.0 must be an int"),
    (dict(vocab_size=True), r"ModelConfig.vocab_size=True must be an int"),
    (dict(norm_eps=0.0), r"ModelConfig.norm_eps=0.0 must be a finite number > 0"),
    (dict(rope_base=float("nan")), r"ModelConfig.rope_base=nan"),
    (dict(kernels="cuda"), r"ModelConfig.kernels='cuda' is not one of auto, torch, triton"),
    (dict(tie_embeddings=1), r"ModelConfig.tie_embeddings=1 must be True or False"),
]


@pytest.mark.parametrize("change,msg", BAD)
def test_bad_config_names_the_field(change, msg):
    fields = dict(vocab_size=100, seq_len=16, d_model=64, n_layers=2, n_heads=2)
    with pytest.raises(ValueError, match=msg):
        ModelConfig(**{**fields, **change})


def test_validate_catches_a_config_changed_after_construction():
    cfg = ModelConfig(100, 16, 64, 2, 2)
    object.__setattr__(cfg, "n_heads", 5)
    with pytest.raises(ValueError, match="n_heads=5 does not divide d_model=64"):
        cfg.validate()


@pytest.mark.parametrize("name,msg", [
    ("gpt-3m", r"unknown model 'gpt-3m'; valid: gpt-4m, gpt-9m, gpt-20m, gpt-59m, gpt-275m, "
               r"gpt-1.4b, or a size-family width"),
    ("w30", r"width=30 must be a multiple of 8"),
    ("w0", r"width=0 must be a multiple of 8"),
    ("", r"unknown model ''"),
])
def test_bad_name(name, msg):
    with pytest.raises(ValueError, match=msg):
        model_config(name, 300, 256)


def test_name_is_case_insensitive_and_overrides_are_checked():
    assert model_config(" GPT-4M ", 300, 256) == model_config("gpt-4m", 300, 256)
    with pytest.raises(ValueError, match=r"\['d_model'\] are set by the name 'w32'"):
        model_config("w32", 300, 256, d_model=64)
    with pytest.raises(ValueError, match="vocab_size=0"):
        model_config("w32", 0, 256)


def test_importing_the_config_does_not_import_torch():
    code = ("import sys, pygzlaw.model as m; m.count_params(m.model_config('w32', 300, 256)); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_model_package_imports_no_torch_distributed():
    """The model knows no parallelism (pygzlaw.train.parallelize applies it)."""
    files = sorted(MODEL_DIR.glob("*.py"))
    assert {f.name for f in files} >= {"config.py", "gpt.py", "reference.py"}
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            assert not any(n.startswith("torch.distributed") for n in names), (f.name, names)
