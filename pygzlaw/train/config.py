"""Training configuration and the run record every training run ends with.

``TrainConfig`` is a frozen dataclass checked by ``validate()`` (each error names
the field and the fix). ``RunRecord`` is what ``train()`` returns and what
``record.json`` holds; ``RunRecord.to_row()`` gives the columns ``pygzlaw fit``
reads (see ``pygzlaw/laws/io.py``).

This module imports no torch, so the study can build configs cheaply.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from pygzlaw.model.config import KERNEL_IMPLS as KERNELS

__all__ = ["TrainConfig", "RunRecord", "NonFiniteLossError", "DEVICES", "DTYPES", "KERNELS",
           "COMPILES", "COMPILE_AUTO_MIN_FLOPS"]

DEVICES = ("auto", "cpu", "cuda")
COMPILES = ("auto", "on", "off")
# compile="auto" compiles a CPU run whose model FLOPs (train_flops_per_token x D) reach this.
# Measured on this project's 2-core CPU (bench/bench_trainer.py): torch.compile runs the
# w32..w128 family 1.15-1.3x faster per step, for a one-off 8-18 s compile (up to ~100 s on a
# loaded machine); eager training runs at ~50 GFLOP/s per thread, so 3e13 FLOPs is >= 5 min
# of eager work and the compile pays for itself several times over. Shorter runs (a study's
# tiny grid: ~1 s each) stay eager.
COMPILE_AUTO_MIN_FLOPS = 3e13
DTYPES = ("auto", "float32", "bfloat16")
# Validation documents start here: training reads documents [0, steps * B), far below 2**40
# (1.1e12 documents = 2.8e14 tokens at 256 per document), so the two ranges never meet.
VAL_FIRST_DOC = 1 << 40


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the step and the last
    good checkpoint (which is kept)."""


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class TrainConfig:
    """One training run: model, data, optimisation, device, outputs.

    Documents are ``seq_len`` tokens (the paper's 256-token context); the model reads
    doc[:-1] and predicts doc[1:], so each document gives seq_len - 1 predictions and
    counts seq_len tokens towards D (the paper's token count: documents x 256).

    Attributes:
        model: preset or size-family name (``gpt-4m`` ... ``gpt-1.4b``, ``w32`` ...), resolved
            with the data's vocabulary and ``seq_len``; or a ``pygzlaw.model.ModelConfig``.
        grammar: grammar preset (main-1..6, vocab300-*, neareq-*) or a grammar file path
            (.json, .txt, .cfg, .pcfg). Ignored for the data itself when ``data_dir`` is set
            (the manifest's grammar is used), but still recorded.
        n_tokens: D, training tokens; steps = n_tokens // (batch_docs * grad_accum * seq_len).
        grammar_seed: seed of the random grammar (presets only).
        data_seed: sampler seed; document d is a function of (grammar, data_seed, d).
        seed: model initialisation seed.
        batch_docs: documents per micro-batch, over all ranks together (split between them).
        seq_len: tokens per document (context length).
        grad_accum: micro-batches per optimizer step; the global batch is
            B = batch_docs * grad_accum documents.
        lr: peak learning rate (AdamW); cosine decay to lr * min_lr_ratio at the last step.
        min_lr_ratio: final lr / peak lr, in [0, 1].
        warmup_steps: linear warmup steps (0 = none, the paper's setting).
        weight_decay: AdamW decoupled weight decay.
        betas: AdamW betas.
        grad_clip: max global gradient L2 norm (0 = no clipping).
        val_docs: validation documents (from index 2**40 of the same stream: disjoint).
        val_every_steps: validate every k steps (0 = only at the end).
        device: "auto" (cuda if available, else cpu), "cpu" or "cuda".
        dtype: "auto" (bfloat16 autocast on cuda, float32 on cpu), "float32", "bfloat16".
        threads: torch intra-op threads (None = torch's default).
        kernels: "auto", "torch" or "triton" (passed to the model).
        compile: "auto", "on" or "off" (True/False are read as "on"/"off"): torch.compile the
            model for training steps (validation stays eager: no second compile). "auto"
            compiles single-process CPU runs of at least COMPILE_AUTO_MIN_FLOPS model FLOPs
            (where the one-off compile is paid back; the record's ``compiled`` says which ran)
            and falls back to eager with a warning if compiling fails; CUDA runs compile only
            with "on" until it is measured there (bench/gpu_check.sh).
        out_dir: directory for metrics.jsonl, record.json and checkpoints (None = none written).
        checkpoint_every_steps: write a checkpoint every k steps (0 = only at the end when
            out_dir is set).
        progress: tqdm progress bar (shown only on a terminal).
        data_dir: a ``pygzlaw generate`` dataset (manifest.json + shards) to train on instead of
            sampling on the fly; validation documents still come from the manifest's grammar
            and seed at index 2**40.
        resume: continue from the latest checkpoint in out_dir when there is one.
        h_docs: documents sampled to measure H (median gzip ratio); 0 = do not measure
            (record H = None). The paper uses 1000.
        separator: sampler separator mode ("reserve": token 0 is only the separator).
        log_every_steps: metrics.jsonl line every k steps (validation steps always log).
    """

    model: Any
    grammar: str
    n_tokens: int
    grammar_seed: int = 0
    data_seed: int = 1234
    seed: int = 0
    batch_docs: int = 32
    seq_len: int = 256
    grad_accum: int = 1
    lr: float = 5e-5
    min_lr_ratio: float = 0.0
    warmup_steps: int = 0
    weight_decay: float = 0.0
    betas: tuple = (0.9, 0.999)
    grad_clip: float = 1.0
    val_docs: int = 256
    val_every_steps: int = 0
    device: str = "auto"
    dtype: str = "auto"
    threads: int | None = None
    kernels: str = "auto"
    compile: str = "auto"
    out_dir: str | None = None
    checkpoint_every_steps: int = 0
    progress: bool = True
    data_dir: str | None = None
    resume: bool = False
    h_docs: int = 1000
    separator: str = "reserve"
    log_every_steps: int = 1

    def __post_init__(self):
        if isinstance(self.compile, bool):  # the flag's older boolean form
            object.__setattr__(self, "compile", "on" if self.compile else "off")

    # -- derived ---------------------------------------------------------------
    @property
    def global_batch_docs(self) -> int:
        """B: documents per optimizer step (all ranks, all micro-batches)."""
        return self.batch_docs * self.grad_accum

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch_docs * self.seq_len

    @property
    def n_steps(self) -> int:
        """Optimizer steps: n_tokens // (batch_docs * grad_accum * seq_len)."""
        return self.n_tokens // self.tokens_per_step

    @property
    def model_name(self) -> str:
        return self.model if isinstance(self.model, str) else "custom"

    # -- checks ----------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        """Check every field; returns self.

        Raises:
            ValueError: naming the field, its value and the constraint.
        """
        def need_int(name, lo):
            v = getattr(self, name)
            if not _is_int(v) or v < lo:
                raise ValueError(f"{name}={v!r} must be an int >= {lo}")

        if isinstance(self.model, str):
            if not self.model.strip():
                raise ValueError("model='' is empty; give a preset such as gpt-4m or w32")
        elif not all(hasattr(self.model, a) for a in ("vocab_size", "d_model", "n_layers")):
            raise ValueError(f"model={self.model!r} must be a preset name or a ModelConfig")
        if not isinstance(self.grammar, str) or not self.grammar.strip():
            raise ValueError(f"grammar={self.grammar!r} must be a preset name or a grammar file path")
        for name, lo in (("n_tokens", 1), ("batch_docs", 1), ("seq_len", 2), ("grad_accum", 1),
                         ("warmup_steps", 0), ("val_docs", 1), ("val_every_steps", 0),
                         ("checkpoint_every_steps", 0), ("h_docs", 0), ("log_every_steps", 1),
                         ("grammar_seed", 0), ("data_seed", 0), ("seed", 0)):
            need_int(name, lo)
        if self.n_steps < 1:
            raise ValueError(
                f"n_tokens={self.n_tokens} is fewer than one step (batch_docs {self.batch_docs} x "
                f"grad_accum {self.grad_accum} x seq_len {self.seq_len} = {self.tokens_per_step} "
                "tokens); raise n_tokens or lower batch_docs")
        for name in ("lr", "min_lr_ratio", "weight_decay", "grad_clip"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name}={v!r} must be a finite number")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr} must be > 0")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio={self.min_lr_ratio} must be in [0, 1]")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay={self.weight_decay} must be >= 0")
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip={self.grad_clip} must be >= 0 (0 = no clipping)")
        b = tuple(self.betas) if isinstance(self.betas, (tuple, list)) else None
        if b is None or len(b) != 2 or not all(isinstance(x, (int, float)) and 0 <= x < 1 for x in b):
            raise ValueError(f"betas={self.betas!r} must be two numbers in [0, 1)")
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device={self.device!r}; choose one of {DEVICES} or cuda:N")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r}; choose one of {DTYPES}")
        if self.kernels not in KERNELS:
            raise ValueError(f"kernels={self.kernels!r}; choose one of {KERNELS}")
        if self.compile not in COMPILES:
            raise ValueError(f"compile={self.compile!r}; choose one of {COMPILES}")
        if self.threads is not None and (not _is_int(self.threads) or self.threads < 1):
            raise ValueError(f"threads={self.threads!r} must be an int >= 1 or None")
        if self.separator not in ("reserve", "research"):
            raise ValueError(f"separator={self.separator!r}; choose 'reserve' or 'research'")
        if self.checkpoint_every_steps and self.out_dir is None:
            raise ValueError("checkpoint_every_steps needs out_dir (where checkpoints go)")
        if self.resume and self.out_dir is None:
            raise ValueError("resume=True needs out_dir (where the checkpoints are)")
        return self

    # -- (de)serialisation -------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict; a ModelConfig model becomes its field dict."""
        d = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "model" and not isinstance(v, str):
                v = dataclasses.asdict(v) if dataclasses.is_dataclass(v) else dict(vars(v))
            elif isinstance(v, tuple):
                v = list(v)
            d[f.name] = v
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Inverse of to_dict; unknown keys raise ValueError naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; known: {sorted(names)}")
        d = dict(d)
        if isinstance(d.get("model"), dict):
            from pygzlaw.model import ModelConfig

            d["model"] = ModelConfig(**d["model"])
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


@dataclass
class RunRecord:
    """The outcome of one training run (written as ``record.json`` in out_dir).

    Attributes:
        n_params: N, all parameters (both embedding matrices included, as in the paper).
        n_params_non_embedding: N without the input and output embeddings.
        n_tokens: D, tokens trained on (steps x batch docs x seq_len).
        flops: C = 6·N·D, the paper's compute axis (Pandey 2024 and Chinchilla: N all
            parameters; pygzlaw.model.chinchilla_flops_per_token), so ``pygzlaw fit``'s
            C-vs-6ND check holds.
        train_loss: mean training loss (nats/token) of the last step.
        val_loss: final validation loss (nats/token) on val_docs held-out documents.
        wall_s: wall time of the run, seconds (setup included).
        tokens_per_s: training tokens per second over the training steps.
        mfu: model FLOPs utilisation (GPU only), else None.
        data_wait_fraction: time the step waited for data / training time.
        config: TrainConfig.to_dict().
        grammar: grammar preset or file; grammar_seed: its seed.
        H: median gzip ratio of h_docs documents (the paper's gzip-compressibility), or None.
        version: pygzlaw version.
        n_steps: optimizer steps run; vocab_size: model vocabulary; world_size: ranks.
        peak_memory_bytes: peak accelerator memory (None on CPU).
        model_flops: FLOPs the model actually did, train_flops_per_token x D (PaLM's 6·N_matmul
            + 12·L·d·T; the numerator of MFU).
        resumed_from_step: optimizer steps restored from a checkpoint (0 = fresh run).
        model_config: the resolved ModelConfig as a dict.
        compiled: whether training steps ran under torch.compile (see TrainConfig.compile).
        tokens_per_s_steady: tokens/s over the steps after this process's first (which holds
            the compile and first-call costs); None for a one-step run.
        compile_s: seconds the first step took beyond a steady step, when compiled (the
            one-off compile); else None.
    """

    n_params: int
    n_params_non_embedding: int
    n_tokens: int
    flops: float
    train_loss: float
    val_loss: float
    wall_s: float
    tokens_per_s: float
    mfu: float | None
    data_wait_fraction: float
    config: dict
    grammar: str
    grammar_seed: int
    H: float | None
    version: str
    n_steps: int = 0
    vocab_size: int = 0
    world_size: int = 1
    peak_memory_bytes: int | None = None
    model_flops: float = 0.0
    resumed_from_step: int = 0
    model_config: dict = field(default_factory=dict)
    compiled: bool = False
    tokens_per_s_steady: float | None = None
    compile_s: float | None = None

    @property
    def model_name(self) -> str:
        """The run's model preset name, or "custom" for a ModelConfig (as TrainConfig.model_name)."""
        model = self.config.get("model")
        return model if isinstance(model, str) else "custom"

    def to_row(self) -> dict:
        """One flat row for a runs CSV/JSONL that ``pygzlaw fit`` reads.

        Columns: N (all parameters), D (tokens), C (6·N·D), loss (final validation loss,
        nats/token), H (when known), dataset (grammar label), then descriptive columns whose
        names are not aliases in pygzlaw.laws.io (so no column is read twice): train_loss,
        N_non_embedding, model_flops, model, wall_s, tokens_per_s, mfu,
        data_wait_fraction, steps, seed.
        """
        row = {"N": self.n_params, "D": self.n_tokens, "C": self.flops, "loss": self.val_loss}
        if self.H is not None:
            row["H"] = self.H
        row["dataset"] = (self.grammar if self.grammar_seed is None
                          else f"{self.grammar}-g{self.grammar_seed}")
        row.update({
            "train_loss": self.train_loss,
            "N_non_embedding": self.n_params_non_embedding,
            "model_flops": self.model_flops,
            "model": self.model_name,
            "wall_s": self.wall_s, "tokens_per_s": self.tokens_per_s, "mfu": self.mfu,
            "data_wait_fraction": self.data_wait_fraction,
            "steps": self.n_steps, "seed": self.config.get("seed"),
        })
        return row

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunRecord":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
