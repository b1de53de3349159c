"""Model configuration, presets, parameter counts and training FLOPs. Imports no torch.

The trainer, the study and the CLI resolve model names and count N here without loading
torch; only :mod:`pygzlaw.model.gpt` needs it.

Architecture (LLaMA-style decoder, no biases; Pandey 2024 §4):
token embedding (V, d) → L × [RMSNorm → causal attention with rotary embeddings → residual,
RMSNorm → SwiGLU MLP (three d×ffn matrices) → residual] → RMSNorm → output head (V, d).

Parameters (exact):
    per block          4·d² (q, k, v, o) + 3·d·ffn (gate, up, down) + 2·d (two RMSNorm weights)
    non-embedding      L · per block + d (final RMSNorm)
    embedding          V·d (token embedding) + V·d (output head; 0 when tied)
With V = 32001 and ffn = 2·d this gives the paper's six sizes exactly (see PAPER_PARAMS).
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import NamedTuple

KERNEL_IMPLS = ("auto", "torch", "triton")

# name: (d_model, n_layers); heads = d_model / 64 (head_dim 64), ffn = 2·d_model.
# Pandey 2024 §4 table; counts at vocab 32001, context 256 in PAPER_PARAMS.
PAPER_PRESETS: dict[str, tuple[int, int]] = {
    "gpt-4m": (64, 2),
    "gpt-9m": (128, 4),
    "gpt-20m": (256, 6),
    "gpt-59m": (512, 10),
    "gpt-275m": (1024, 20),
    "gpt-1.4b": (2048, 30),
}
PAPER_PARAMS: dict[str, int] = {
    "gpt-4m": 4_178_368,
    "gpt-9m": 8_848_768,
    "gpt-20m": 20_320_000,
    "gpt-59m": 58_994_176,
    "gpt-275m": 275_295_232,
    "gpt-1.4b": 1_389_492_224,
}
PAPER_VOCAB_SIZE = 32001
PAPER_SEQ_LEN = 256

FAMILY_WIDTH_STEP = 8        # widths are multiples of 8: head_dim stays even (rotate-half RoPE)
FAMILY_MIN_WIDTH = 8
FAMILY_MAX_HEAD_DIM = 64     # the paper's head_dim
FAMILY_WIDTH_PER_LAYER = 32  # d/L = 32: gives the paper's layers at d = 64 and 128
_FAMILY_RE = re.compile(r"^w(\d+)$")


def _check_int(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"ModelConfig.{name}={value!r} must be an int >= {minimum}")
    if value < minimum:
        raise ValueError(f"ModelConfig.{name}={value} must be >= {minimum}")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a GPT (see the module docstring for the architecture).

    Attributes:
        vocab_size: V, number of token ids (ids in [0, V)).
        seq_len: T, the longest context in tokens (RoPE tables are built for it; also the T
            of the attention FLOPs term).
        d_model: d, the residual width.
        n_layers: L, transformer blocks.
        n_heads: attention heads; must divide d_model, and head_dim = d_model / n_heads must be
            even (rotate-half RoPE pairs i with i + head_dim/2).
        ffn_dim: SwiGLU hidden width; None means 2·d_model (the paper's setting). Resolved at
            construction, so ``dataclasses.replace(cfg, d_model=...)`` keeps the old value:
            pass ffn_dim=None again to re-derive it.
        tie_embeddings: share the token embedding with the output head (the paper unties).
        norm_eps: RMSNorm epsilon.
        rope_base: RoPE frequency base θ (Su et al. 2021; LLaMA uses 10000).
        kernels: "auto" (Triton on CUDA, PyTorch elsewhere), "torch" or "triton"; passed as
            ``impl`` to every :mod:`pygzlaw.kernels` op.

    Raises:
        ValueError: at construction (and from :meth:`validate`), naming the field, its value
            and the constraint.
    """

    vocab_size: int
    seq_len: int
    d_model: int
    n_layers: int
    n_heads: int
    ffn_dim: int | None = None
    tie_embeddings: bool = False
    norm_eps: float = 1e-6
    rope_base: float = 10000.0
    kernels: str = "auto"

    def __post_init__(self) -> None:
        if self.ffn_dim is None and isinstance(self.d_model, int):
            object.__setattr__(self, "ffn_dim", 2 * self.d_model)
        self.validate()

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def validate(self) -> "ModelConfig":
        """Check every field; return self. Raises ValueError naming the field."""
        for name in ("vocab_size", "seq_len", "d_model", "n_layers", "n_heads", "ffn_dim"):
            _check_int(name, getattr(self, name))
        if self.d_model % self.n_heads:
            raise ValueError(
                f"ModelConfig.n_heads={self.n_heads} does not divide d_model={self.d_model}; "
                f"pick n_heads among the divisors of {self.d_model}")
        if self.head_dim % 2:
            raise ValueError(
                f"ModelConfig: head_dim = d_model / n_heads = {self.d_model}/{self.n_heads} = "
                f"{self.head_dim} is odd; rotary embeddings need an even head_dim")
        if not isinstance(self.tie_embeddings, bool):
            raise ValueError(
                f"ModelConfig.tie_embeddings={self.tie_embeddings!r} must be True or False")
        for name in ("norm_eps", "rope_base"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value <= 0:
                raise ValueError(f"ModelConfig.{name}={value!r} must be a finite number > 0")
        if self.kernels not in KERNEL_IMPLS:
            raise ValueError(
                f"ModelConfig.kernels={self.kernels!r} is not one of {', '.join(KERNEL_IMPLS)}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Inverse of :meth:`to_dict`. Raises ValueError on unknown keys (names them)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"ModelConfig: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**d)


def family_shape(width: int) -> tuple[int, int]:
    """(n_layers, n_heads) of the size family at d_model = width.

    The rule (any vocabulary; names ``w<width>``):
      - width is a multiple of 8, at least 8;
      - n_layers = max(1, floor((width + 16) / 32)), i.e. width/32 rounded half up
        (d/L = 32, the paper's aspect at d = 64 and 128: L = 2 and 4;
        deeper than the paper above that, e.g. L = 8 at d = 256 where the paper has 6);
      - n_heads = the smallest h >= ceil(width / 64) that divides width with width/h even,
        so head_dim <= 64 (the paper's head_dim, reached whenever 64 divides width) and
        n_heads >= 1.

    Raises:
        ValueError: width not a positive multiple of 8.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < FAMILY_MIN_WIDTH \
            or width % FAMILY_WIDTH_STEP:
        raise ValueError(
            f"size family width={width!r} must be a multiple of {FAMILY_WIDTH_STEP} and >= "
            f"{FAMILY_MIN_WIDTH} (names like w16, w32, w48, w64, w96, w128)")
    n_layers = max(1, (width + FAMILY_WIDTH_PER_LAYER // 2) // FAMILY_WIDTH_PER_LAYER)
    n_heads = -(-width // FAMILY_MAX_HEAD_DIM)
    while width % n_heads or (width // n_heads) % 2:
        n_heads += 1
    return n_layers, n_heads


def model_names() -> list[str]:
    """The paper presets and a few family members (any ``w<multiple of 8>`` is valid)."""
    return list(PAPER_PRESETS) + [f"w{w}" for w in (16, 24, 32, 48, 64, 96, 128, 192, 256)]


def model_config(name: str, vocab_size: int, seq_len: int, **overrides) -> ModelConfig:
    """Resolve a preset or family name to a ModelConfig.

    Args:
        name: one of the paper's presets (``gpt-4m, gpt-9m, gpt-20m, gpt-59m, gpt-275m,
            gpt-1.4b``: d_model 64..2048, heads d/64, ffn 2·d) or a size-family member
            ``w<width>`` (see :func:`family_shape`), e.g. ``w32``.
        vocab_size: V (a PCFG's own vocabulary, or 32001 for the paper's counts).
        seq_len: context length T in tokens.
        **overrides: other ModelConfig fields (tie_embeddings, kernels, ...).

    Raises:
        ValueError: unknown name (lists the valid ones), or an invalid resulting config.
    """
    if not isinstance(name, str):
        raise ValueError(f"model name {name!r} must be a string")
    key = name.strip().lower()
    if key in PAPER_PRESETS:
        d_model, n_layers = PAPER_PRESETS[key]
        n_heads = d_model // 64
    else:
        m = _FAMILY_RE.match(key)
        if m is None:
            raise ValueError(
                f"unknown model {name!r}; valid: {', '.join(PAPER_PRESETS)}, or a size-family "
                f"width w<multiple of 8> such as w16, w32, w64, w128")
        d_model = int(m.group(1))
        n_layers, n_heads = family_shape(d_model)
    fields = dict(vocab_size=vocab_size, seq_len=seq_len, d_model=d_model,
                  n_layers=n_layers, n_heads=n_heads)
    clash = sorted(set(overrides) & set(fields))
    if clash:
        raise ValueError(f"model_config: {clash} are set by the name {name!r}; "
                         f"build a ModelConfig directly to choose them")
    return ModelConfig(**fields, **overrides)


class ParamCount(NamedTuple):
    """N in parameters. ``total`` counts every parameter once (a tied embedding once);
    ``non_embedding`` leaves out the token embedding and the output head (the two V×d
    matrices), keeping all RMSNorm weights (Kaplan et al. 2020 §2.1 convention)."""
    total: int
    non_embedding: int


def count_params(cfg: ModelConfig) -> ParamCount:
    """Exact parameter count of ``GPT(cfg)`` (tests check it against the module).

    non_embedding = L·(4·d² + 3·d·ffn + 2·d) + d
    total         = non_embedding + V·d + (0 if tied else V·d)
    """
    d, ffn, n_layers, vocab = cfg.d_model, cfg.ffn_dim, cfg.n_layers, cfg.vocab_size
    per_block = 4 * d * d + 3 * d * ffn + 2 * d
    non_embedding = n_layers * per_block + d
    embedding = vocab * d * (1 if cfg.tie_embeddings else 2)
    return ParamCount(total=non_embedding + embedding, non_embedding=non_embedding)


def train_flops_per_token(cfg: ModelConfig, *, include_head: bool = True) -> float:
    """Model FLOPs per trained token (forward + backward), for MFU and for C = flops · D.

    PaLM (Chowdhery et al. 2022, appendix B): 6·N + 12·L·d·T, where 6·N is the weight
    matmuls (2 forward + 4 backward FLOPs per weight per token) and 12·L·d·T the attention
    score and value matmuls (QKᵀ and AV, forward and backward, T = cfg.seq_len; not halved
    for the causal mask, as in PaLM).

    Which weights N counts: every weight that takes part in a matmul, i.e. the
    non-embedding parameters (the RMSNorm weights, L·2·d + d, are counted too: < 0.1% for
    d >= 64, kept for simplicity) plus the output head V·d, but not the token embedding
    (a row lookup, no FLOPs). PaLM's N includes its (tied) embedding, which is its output
    projection, so it counts the head the same way. The head matters: at V = 32001 it is
    2.0M weights of gpt-4m against 82K non-embedding ones, so leaving it out would
    understate gpt-4m's FLOPs ~20×. ``include_head=False`` gives Kaplan's 6·N_non_embedding
    + attention (Kaplan et al. 2020, Table 1).

    Returns:
        FLOPs per token (float).
    """
    n_matmul = count_params(cfg).non_embedding
    if include_head:
        n_matmul += cfg.vocab_size * cfg.d_model
    return 6.0 * n_matmul + 12.0 * cfg.n_layers * cfg.d_model * cfg.seq_len


def chinchilla_flops_per_token(cfg: ModelConfig) -> float:
    """C / D ≈ 6·N with N = all parameters, embeddings included (Hoffmann et al. 2022,
    §3 and appendix F; Pandey 2024 uses C ≈ 6ND with this N). Use it to place runs on the
    paper's compute axis; use :func:`train_flops_per_token` for MFU."""
    return 6.0 * count_params(cfg).total
