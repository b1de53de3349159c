"""Study configuration: which grammars, which model sizes and data amounts, how to train, how to fit.

A study is read from TOML (``tomllib``) on top of a named scale's defaults::

    [study]
    scale = "tiny"            # start from this scale (tiny, small, paper); every key below overrides it
    name = "my-study"
    out = "study-my"          # report, laws, runs.csv, runs.sqlite
    db = ""                   # run store path ("" = <out>/runs.sqlite)
    workers = 2               # K runs at once (local executor)
    threads_per_worker = 1    # torch threads in each worker
    gpus = 0                  # > 0: one worker per GPU (worker i sees GPU i); overrides workers

    [[grammars]]              # a preset, a grammar file, or the four spec knobs
    preset = "main-1"
    seed = 0                  # grammar seed
    # name = "easy"           # label (default: preset or file stem)

    [grid]
    models = ["w16", "w24", "w32", "w48"]     # size names resolved with each grammar's vocabulary
    tokens = [16384, 32768, "64K", "128K"]   # D per run: integers or counts as the CLI takes them (16K, 2M, 1e6)

    [train]                   # any pygzlaw.train.TrainConfig field but model/grammar/n_tokens/grammar_seed/threads
    lr = 3e-3
    batch_docs = 8
    seq_len = 64

    [analysis]
    n_boot = 200              # bootstrap replicates per law
    seed = 0
    level = 0.95              # interval level
    h_docs = 1000             # documents for H (the paper's 1000)
    grid = "hoffmann"         # fit starting grid: hoffmann or muennighoff
    regress = "linear"        # parameters on H: "linear" (the paper's) or "log" (log A, log B; A(H), B(H) > 0)

Errors name the key (``grid.tokens[2]``, ``grammars[1].preset``) and the fix.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import tomllib
from dataclasses import dataclass, field

__all__ = ["StudyConfig", "GrammarEntry", "AnalysisSettings", "SCALES", "load_config", "scale_config",
           "SCALE_NAMES"]

SCALE_NAMES = ("tiny", "small", "paper")
# Fields of TrainConfig that the study sets per run; a [train] table may not set them.
STUDY_OWNED = ("model", "grammar", "n_tokens", "grammar_seed", "out_dir", "progress", "resume", "data_dir")
SPEC_KNOBS = ("nonterminals", "terminals", "rhs_max_options", "rhs_max_len")


@dataclass(frozen=True)
class GrammarEntry:
    """One grammar of the study: exactly one of preset, file, spec (the four knobs)."""

    name: str
    preset: str | None = None
    file: str | None = None
    spec: dict | None = None
    seed: int = 0

    def spec_dict(self) -> dict:
        """JSON-able description stored with every run."""
        d = {"seed": self.seed}
        if self.preset:
            d["preset"] = self.preset
        elif self.file:
            d["file"] = self.file
        else:
            d["spec"] = dict(self.spec)
        return d


@dataclass(frozen=True)
class AnalysisSettings:
    n_boot: int = 200
    seed: int = 0
    level: float = 0.95
    h_docs: int = 1000
    grid: str = "hoffmann"
    regress: str = "linear"


@dataclass
class StudyConfig:
    """A whole study (see module docstring). ``validate()`` raises ValueError naming the key."""

    name: str
    grammars: list
    models: list
    tokens: list
    train: dict = field(default_factory=dict)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    out: str = "study"
    db: str = ""
    workers: int = 2
    threads_per_worker: int = 1
    scale: str | None = None
    notes: str = ""
    gpus: int = 0

    @property
    def db_path(self) -> str:
        return self.db or os.path.join(self.out, "runs.sqlite")

    @property
    def n_runs(self) -> int:
        return len(self.grammars) * len(self.models) * len(self.tokens)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["grammars"] = [dataclasses.asdict(g) for g in self.grammars]
        return d

    def validate(self) -> "StudyConfig":
        _check_str("study.name", self.name)
        _check_str("study.out", self.out)
        _check_int("study.workers", self.workers, 1)
        _check_int("study.threads_per_worker", self.threads_per_worker, 1)
        _check_int("study.gpus", self.gpus, 0)
        if self.gpus:
            self.workers = self.gpus
        if not self.grammars:
            raise ValueError("grammars: the study has no grammars; add [[grammars]] tables with preset = \"main-1\" ...")
        names = [g.name for g in self.grammars]
        for i, g in enumerate(self.grammars):
            if names.index(g.name) != i:
                raise ValueError(f"grammars[{i}].name={g.name!r} repeats grammars[{names.index(g.name)}]; give each "
                                 "grammar a distinct name")
        _check_list("grid.models", self.models, str)
        from pygzlaw.model import PAPER_PRESETS, model_config

        for i, m in enumerate(self.models):
            if not m.strip():
                raise ValueError(f"grid.models[{i}] is empty; give a size name such as w32 or gpt-4m")
            try:   # the name alone: vocabulary and context come from each grammar and [train] at run time
                model_config(m, vocab_size=2, seq_len=2)
            except ValueError as exc:
                valid = "" if "valid:" in str(exc) else (
                    f"; valid forms: {', '.join(PAPER_PRESETS)}, or w<width> with width a multiple of 8, >= 8 "
                    "(w8, w16, w32, ...)")
                raise ValueError(f"grid.models[{i}]={m!r} is not a model size: {exc}{valid}") from None
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"grid.models={self.models} has duplicates")
        self.tokens = _counts("grid.tokens", self.tokens)
        _check_list("grid.tokens", self.tokens, int)
        for i, t in enumerate(self.tokens):
            if t < 1:
                raise ValueError(f"grid.tokens[{i}]={t} must be >= 1 (training tokens D)")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError(f"grid.tokens={self.tokens} has duplicates")
        self._validate_grammars()
        a = self.analysis
        _check_int("analysis.n_boot", a.n_boot, 0)
        _check_int("analysis.seed", a.seed, 0)
        _check_int("analysis.h_docs", a.h_docs, 2)
        if not (isinstance(a.level, float) and 0 < a.level < 1):
            raise ValueError(f"analysis.level={a.level!r} must be a number in (0, 1), e.g. 0.95")
        if a.grid not in ("hoffmann", "muennighoff"):
            raise ValueError(f"analysis.grid={a.grid!r} must be \"hoffmann\" or \"muennighoff\"")
        if a.regress not in ("linear", "log"):
            raise ValueError(f"analysis.regress={a.regress!r} must be \"linear\" (Pandey 2024's x(H) = m H + n) or "
                             "\"log\" (log A and log B regressed on H, so A(H), B(H) > 0)")
        self._validate_train()
        return self

    def _validate_grammars(self) -> None:
        """Load every grammar file and build every spec now, so a bad one fails at config load, not in its runs."""
        from pygzlaw.grammar import PRESETS, GrammarSpec, load

        for i, g in enumerate(self.grammars):
            if g.preset is not None and g.preset not in PRESETS:
                raise ValueError(f"grammars[{i}].preset={g.preset!r} is not a preset; known: {sorted(PRESETS)}")
            if g.file is not None:
                if not os.path.isfile(g.file):
                    from pygzlaw.textio import not_a_file

                    raise ValueError(f"grammars[{i}].file={g.file!r}: {not_a_file(g.file, 'grammar')}")
                try:
                    load(g.file)
                except (ValueError, TypeError, KeyError, OSError, UnicodeDecodeError) as exc:
                    raise ValueError(f"grammars[{i}].file={g.file!r} is not a readable grammar: {exc}") from None
            if g.spec is not None:
                try:
                    GrammarSpec(*(g.spec[k] for k in SPEC_KNOBS))
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"grammars[{i}] spec knobs {dict(g.spec)}: {exc}") from None

    def _validate_train(self) -> None:
        from pygzlaw.train.config import TrainConfig

        known = {f.name for f in dataclasses.fields(TrainConfig)}
        for k in self.train:
            if k == "threads":   # the worker sets it from threads_per_worker; a [train] value would be ignored
                raise ValueError("train.threads is set per worker by the study; use study.threads_per_worker "
                                 f"(now {self.threads_per_worker}) instead")
            if k in STUDY_OWNED:
                raise ValueError(f"train.{k} is set by the study for each run; remove it (grid.models, grid.tokens "
                                 "and [[grammars]] choose model, n_tokens and grammar)")
            if k not in known:
                raise ValueError(f"train.{k} is not a training setting; known: {sorted(known - set(STUDY_OWNED))}")
        # One full TrainConfig per grammar checks types and ranges with the trainer's own rules.
        for g in self.grammars:
            for t in (min(self.tokens), max(self.tokens)):
                try:
                    cfg = self.train_config(g, self.models[0], t)
                    if isinstance(cfg.tokens_per_step, int) and 0 < cfg.tokens_per_step and cfg.n_steps < 1:
                        raise _NoSteps(f"grid.tokens: D={t} gives 0 optimizer steps with batch_docs * grad_accum * "
                                       f"seq_len = {cfg.tokens_per_step} tokens per step; raise D or lower "
                                       "train.batch_docs / train.seq_len")
                    cfg.validate()
                except _NoSteps:
                    raise
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"train: {exc} (in the [train] table or grid; grammar {g.name!r})") from None

    def train_config(self, grammar: GrammarEntry, model: str, n_tokens: int):
        """The TrainConfig of one run (not validated)."""
        from pygzlaw.train.config import TrainConfig

        t = dict(self.train)
        if "betas" in t:
            t["betas"] = tuple(t["betas"])
        return TrainConfig(model=model, grammar=grammar_source(grammar, self.out), n_tokens=int(n_tokens),
                           grammar_seed=int(grammar.seed), progress=False, **t)


class _NoSteps(ValueError):
    pass


def grammar_source(g: GrammarEntry, out: str) -> str:
    """What TrainConfig.grammar gets: the preset name, the file path, or the study's exported spec file."""
    if g.preset:
        return g.preset
    if g.file:
        return os.path.abspath(g.file)
    return os.path.abspath(os.path.join(out, "grammars", f"{g.name}.json"))


# ------------------------------------------------------------------ scales
# tiny: chosen by measurement on this 2-core machine (ARCHITECTURE.md, "Study"): CPU, fp32,
# 8 documents of 64 tokens per step, lr 2e-2 with 20 warmup steps (at 5e-3 a wider model's lead is
# mostly speed per step, which the additive law cannot follow; a higher peak evens the widths out,
# 4e-2 made w48 worse than w40), the one-layer widths w8-w40, and 7 data amounts 64K-512K a factor
# sqrt(2) apart (past the first rapid phase; the density, not the range, is what tightened the
# bootstrap intervals). main-4's law passes the identifiability checks; main-2 sits at its entropy
# floor for every width >= 16 (no N term) and main-5 is still before its inflection (E -> 0), both
# flagged, as are all three under every other setting measured (lr to 4e-2, 2-8 docs a step, D to 2M).
_TINY = {
    "name": "tiny",
    "grammars": [{"preset": "main-2"}, {"preset": "main-4"}, {"preset": "main-5"}],
    "models": ["w8", "w16", "w24", "w32", "w40"],
    "tokens": [65536, 98304, 131072, 196608, 262144, 393216, 524288],
    "train": {"lr": 2e-2, "warmup_steps": 20, "batch_docs": 8, "seq_len": 64, "val_docs": 64, "device": "cpu",
              "dtype": "float32", "kernels": "torch", "h_docs": 0, "log_every_steps": 1000000},
    "analysis": {"n_boot": 200, "seed": 0, "level": 0.95, "h_docs": 1000, "grid": "hoffmann"},
    "out": "study-tiny", "workers": 2, "threads_per_worker": 1,
}
# small: the tiny recipe on all six main grammars with wider models and 4x the tokens (61M tokens in
# all; estimated 1-2 h on 2 cores from the tiny scale's ~36K tokens/s, minutes on one GPU; not timed).
_SMALL = {
    "name": "small",
    "grammars": [{"preset": f"main-{i}"} for i in range(1, 7)],
    "models": ["w32", "w48", "w64", "w96", "w128"],
    "tokens": [65536, 131072, 262144, 524288, 1048576],
    "train": {"lr": 1e-3, "batch_docs": 16, "seq_len": 128, "val_docs": 128, "h_docs": 0,
              "log_every_steps": 1000000},
    "analysis": {"n_boot": 500, "seed": 0, "level": 0.95, "h_docs": 1000, "grid": "hoffmann"},
    "out": "study-small", "workers": 2, "threads_per_worker": 1,
}
# paper: Pandey 2024 Sec. 4: six grammars x six LLaMA-style presets x six data sizes, batch 32 x 256,
# AdamW lr 5e-5, cosine to 0, no warmup. Meant for GPUs (see README, "Paper scale").
_PAPER = {
    "name": "paper",
    "grammars": [{"preset": f"main-{i}"} for i in range(1, 7)],
    "models": ["gpt-4m", "gpt-9m", "gpt-20m", "gpt-59m", "gpt-275m", "gpt-1.4b"],
    "tokens": [100_000, 1_000_000, 5_000_000, 20_000_000, 50_000_000, 100_000_000],
    "train": {"lr": 5e-5, "batch_docs": 32, "seq_len": 256, "val_docs": 256, "h_docs": 0,
              "log_every_steps": 100},
    "analysis": {"n_boot": 1000, "seed": 0, "level": 0.95, "h_docs": 1000, "grid": "hoffmann"},
    "out": "study-paper", "workers": 1, "threads_per_worker": 1,
}
SCALES = {"tiny": _TINY, "small": _SMALL, "paper": _PAPER}


def scale_config(scale: str = "tiny", **overrides) -> StudyConfig:
    """The named scale's StudyConfig (validated), with top-level fields overridden."""
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r} is unknown; choose one of {list(SCALE_NAMES)}")
    raw = copy.deepcopy(SCALES[scale])
    cfg = _from_raw(raw, scale=scale, where="scale " + scale)
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    return cfg.validate()


def load_config(path=None, *, scale: str | None = None, **overrides) -> StudyConfig:
    """Read a study TOML file over a scale's defaults (``[study] scale``, else ``scale``, else tiny).

    Args:
        path: TOML file, or None for the scale alone.
        scale: default scale when the file names none.
        overrides: top-level fields (out, db, workers, threads_per_worker) that win over the file.

    Returns:
        A validated StudyConfig.

    Raises:
        FileNotFoundError: no such file.
        ValueError: TOML syntax (with line) or a bad key/value (naming the key).
    """
    if path is None:
        return scale_config(scale or "tiny", **overrides)
    if not os.path.isfile(path):
        from pygzlaw.textio import not_a_file

        raise FileNotFoundError(f"{path}: {not_a_file(path, 'study config')}")
    from pygzlaw.textio import read_text

    # read_text drops a UTF-8 BOM (Windows editors write one; tomllib calls it an invalid statement)
    # and names the line and byte of text that is not UTF-8.
    try:
        doc = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML ({exc})") from None
    known_tables = {"study", "grammars", "grid", "train", "analysis"}
    for k in doc:
        if k not in known_tables:
            raise ValueError(f"{path}: unknown key {k!r}; the tables are [study], [[grammars]], [grid], [train], "
                             "[analysis]")
    study = _table(doc, "study", path)
    base_scale = study.get("scale", scale or "tiny")
    if base_scale not in SCALES:
        raise ValueError(f"{path}: study.scale={base_scale!r} is unknown; choose one of {list(SCALE_NAMES)}")
    raw = copy.deepcopy(SCALES[base_scale])
    study_keys = {"scale", "name", "out", "db", "workers", "threads_per_worker", "notes", "gpus"}
    for k, v in study.items():
        if k not in study_keys:
            raise ValueError(f"{path}: study.{k} is not a study setting; known: {sorted(study_keys)}")
        if k != "scale":
            raw[k] = v
    if "grammars" in doc:
        if not isinstance(doc["grammars"], list):
            raise ValueError(f"{path}: grammars must be an array of tables ([[grammars]]), got "
                             f"{type(doc['grammars']).__name__}")
        raw["grammars"] = doc["grammars"]
    grid = _table(doc, "grid", path)
    for k, v in grid.items():
        if k not in ("models", "tokens"):
            raise ValueError(f"{path}: grid.{k} is not a grid setting; known: ['models', 'tokens']")
        raw[k] = v
    raw["train"].update(_table(doc, "train", path))
    ana = _table(doc, "analysis", path)
    for k in ana:
        if k not in {f.name for f in dataclasses.fields(AnalysisSettings)}:
            raise ValueError(f"{path}: analysis.{k} is not an analysis setting; known: "
                             f"{[f.name for f in dataclasses.fields(AnalysisSettings)]}")
    raw["analysis"].update(ana)
    try:
        cfg = _from_raw(raw, scale=base_scale, where=str(path))
        for k, v in overrides.items():
            if v is not None:
                setattr(cfg, k, v)
        return cfg.validate()
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


def _table(doc, key, path) -> dict:
    v = doc.get(key, {})
    if not isinstance(v, dict):
        raise ValueError(f"{path}: {key} must be a table ([{key}]), got {type(v).__name__}")
    return v


def _from_raw(raw: dict, *, scale, where) -> StudyConfig:
    grammars = []
    for i, g in enumerate(raw.get("grammars") or []):
        if not isinstance(g, dict):
            raise ValueError(f"grammars[{i}] must be a table with preset, file or the spec knobs")
        allowed = {"name", "preset", "file", "seed", *SPEC_KNOBS}
        for k in g:
            if k not in allowed:
                raise ValueError(f"grammars[{i}].{k} is not a grammar setting; known: {sorted(allowed)}")
        knobs = {k: g[k] for k in SPEC_KNOBS if k in g}
        sources = [k for k in ("preset", "file") if k in g] + (["spec knobs"] if knobs else [])
        if len(sources) != 1:
            raise ValueError(f"grammars[{i}] needs exactly one of preset, file, or the four spec knobs "
                             f"{list(SPEC_KNOBS)}; got {sources or 'none'}")
        if knobs and len(knobs) != 4:
            raise ValueError(f"grammars[{i}]: the spec knobs go together; missing "
                             f"{[k for k in SPEC_KNOBS if k not in knobs]}")
        for k, v in knobs.items():
            _check_int(f"grammars[{i}].{k}", v, 1)
        seed = g.get("seed", 0)
        _check_int(f"grammars[{i}].seed", seed, 0)
        preset = g.get("preset")
        if preset is not None:
            _check_str(f"grammars[{i}].preset", preset)
            from pygzlaw.grammar import PRESETS

            if preset not in PRESETS:
                raise ValueError(f"grammars[{i}].preset={preset!r} is not a preset; known: {sorted(PRESETS)}")
        file = g.get("file")
        if file is not None:
            _check_str(f"grammars[{i}].file", file)
            if not os.path.isfile(file):
                from pygzlaw.textio import not_a_file

                raise ValueError(f"grammars[{i}].file={file!r}: {not_a_file(file, 'grammar')}")
        name = g.get("name") or preset or (os.path.splitext(os.path.basename(file))[0] if file else
                                           "spec-" + "-".join(str(knobs[k]) for k in SPEC_KNOBS))
        _check_str(f"grammars[{i}].name", name)
        if "/" in name or name.startswith("."):
            raise ValueError(f"grammars[{i}].name={name!r} must not contain '/' or start with '.' (it names files)")
        grammars.append(GrammarEntry(name=name, preset=preset, file=file, spec=knobs or None, seed=seed))
    ana = raw.get("analysis") or {}
    if "level" in ana and isinstance(ana["level"], int) and not isinstance(ana["level"], bool):
        ana["level"] = float(ana["level"])
    cfg = StudyConfig(
        name=raw.get("name", scale), grammars=grammars, models=raw.get("models"), tokens=raw.get("tokens"),
        train=dict(raw.get("train") or {}), analysis=AnalysisSettings(**ana), out=raw.get("out", "study"),
        db=raw.get("db", ""), workers=raw.get("workers", 2), threads_per_worker=raw.get("threads_per_worker", 1),
        scale=scale, notes=raw.get("notes", ""), gpus=raw.get("gpus", 0))
    return cfg


def _counts(key, v):
    """A list of token counts with count strings ("16K", "2M", "1e6") parsed as the CLI parses --tokens."""
    if not isinstance(v, list):
        return v
    from pygzlaw._argtypes import parse_count

    out = []
    for i, x in enumerate(v):
        if isinstance(x, str):
            try:
                x = parse_count(x)
            except Exception as exc:   # argparse.ArgumentTypeError
                raise ValueError(f"{key}[{i}]={x!r}: {exc}") from None
        out.append(x)
    return out


def _check_int(key, v, lo):
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise ValueError(f"{key}={v!r} must be an integer >= {lo}")


def _check_str(key, v):
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"{key}={v!r} must be a non-empty string")


def _check_list(key, v, typ):
    if not isinstance(v, list) or not v:
        raise ValueError(f"{key}={v!r} must be a non-empty array")
    for i, x in enumerate(v):
        if not isinstance(x, typ) or isinstance(x, bool):
            raise ValueError(f"{key}[{i}]={x!r} must be "
                             + ("an integer or a count string such as '16K' or '2M'" if typ is int else "a string"))
