"""Reading runs (CSV / JSONL), law JSON files, and the released evaluation sets used in tests."""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pygzlaw.atomic import write_json
from pygzlaw.textio import not_a_file, read_text

__all__ = ["Points", "read_points", "read_records", "parse_points", "save_law", "load_law", "law_from_dict",
           "read_epoch_chinchilla", "read_gadre"]

# Accepted column names (lower-cased) for each field.
_ALIASES = {
    "N": ("n", "n_params", "params", "parameters", "model size"),
    "D": ("d", "n_tokens", "tokens", "training tokens"),
    "C": ("c", "budget_flops", "flops", "compute", "training flop"),
    "loss": ("loss", "l", "val_loss"),
    "H": ("h", "gzip", "gzip_ratio", "compressibility"),
    "dataset": ("dataset", "data", "dataset_name"),
}


@dataclass
class Points:
    """Runs read from a file. Arrays are float64 of shape (n,); h and dataset may be None.

    Attributes:
        n_params, n_tokens, loss: parameters, tokens and loss (nats/token) per run.
        h: gzip compressibility per run, or None.
        dataset: dataset label per run (list of str), or None.
        source: file the points came from; lines: the file line of each run (for messages).
    """

    n_params: np.ndarray
    n_tokens: np.ndarray
    loss: np.ndarray
    h: np.ndarray | None
    dataset: list | None
    source: str
    lines: list

    def __len__(self):
        return int(self.loss.size)

    def drop_highest_loss(self, k: int, *, flag: str = "k") -> "Points":
        """These points without the k highest-loss ones, in file order (Besiroglu et al. drop 5 of
        Epoch's 245 as outliers). ``flag`` names k in the error (the CLI's --drop-highest-loss).

        Raises:
            ValueError: k not in 1..n-1.
        """
        if not 0 < k < len(self):
            raise ValueError(f"{flag}={k} must be in 1..{len(self) - 1} for {len(self)} points")
        keep = keep_lowest_loss(self.loss, k)
        return Points(self.n_params[keep], self.n_tokens[keep], self.loss[keep],
                      None if self.h is None else self.h[keep],
                      None if self.dataset is None else [self.dataset[i] for i in keep], self.source,
                      [self.lines[i] for i in keep])

    def groups(self) -> list[dict]:
        """Per-dataset groups {"name", "h", "n_params", "n_tokens", "loss"} (needs H; dataset optional)."""
        if self.h is None:
            raise ValueError(f"{self.source}: grouping by dataset needs an H (gzip) column")
        keys = self.dataset if self.dataset is not None else [f"H={v:.6g}" for v in self.h]
        out = []
        for name in dict.fromkeys(keys):
            m = np.array([k == name for k in keys])
            hs = np.unique(self.h[m])
            if hs.size != 1:
                raise ValueError(f"{self.source}: dataset {name!r} has {hs.size} different H values "
                                 f"({hs[:3].tolist()}...); one dataset must have one H")
            out.append({"name": str(name), "h": float(hs[0]), "n_params": self.n_params[m],
                        "n_tokens": self.n_tokens[m], "loss": self.loss[m]})
        return out


def keep_lowest_loss(loss, k: int) -> np.ndarray:
    """Indices, in order, of all points but the k with the highest loss (ties: later points dropped first)."""
    return np.sort(np.argsort(loss, kind="stable")[:-k])


def _resolve_columns(header, where):
    low = {h.strip().lower(): h for h in header}
    col = {}
    for key, names in _ALIASES.items():
        for nm in names:
            if nm in low:
                col[key] = low[nm]
                break
    if "N" not in col or "loss" not in col or ("D" not in col and "C" not in col):
        raise ValueError(f"{where}: needs columns N (or n_params), loss, and D (or n_tokens) or C (or "
                         f"budget_flops); found {list(header)}")
    return col


def _num(value, name, where, *, positive=True):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {name}={value!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{where}: {name}={value!r} is not finite")
    if positive and v <= 0:
        raise ValueError(f"{where}: {name}={value!r} must be > 0")
    return v


def positive_cell(value, name, where) -> float:
    """A table cell as a positive finite float (the family readers' check; ``where`` is "file:line").

    Raises:
        ValueError: "<where>: <name>=<value> is not a number" or "... must be a positive finite number".
    """
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {name}={value!r} is not a number") from None
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{where}: {name}={value!r} must be a positive finite number")
    return x


def parse_points(records, *, source="<input>", flops_per_token_param=6.0) -> Points:
    """Build Points from (line_number, dict) records; D = C / (6 N) when only C is given.

    Raises:
        ValueError: naming source:line and the column for missing, non-numeric, non-finite or
            non-positive values, or a line whose C and D disagree.
    """
    records = list(records)
    if not records:
        raise ValueError(f"{source}: no data rows")
    col = _resolve_columns(list(records[0][1].keys()), source)
    n, d, l_, h, ds, lines = [], [], [], [], [], []
    for lineno, rec in records:
        where = f"{source}:{lineno}"
        nv = _num(rec.get(col["N"]), col["N"], where)
        lv = _num(rec.get(col["loss"]), col["loss"], where)
        if "D" in col and rec.get(col["D"]) not in (None, ""):
            dv = _num(rec.get(col["D"]), col["D"], where)
            if "C" in col and rec.get(col["C"]) not in (None, ""):
                cv = _num(rec.get(col["C"]), col["C"], where)
                if abs(cv / (flops_per_token_param * nv * dv) - 1) > 0.05:
                    raise ValueError(f"{where}: {col['C']}={cv:g} disagrees with 6*N*D={6 * nv * dv:g} by more than "
                                     "5%; give D or C, not both")
        elif "C" in col:
            dv = _num(rec.get(col["C"]), col["C"], where) / (flops_per_token_param * nv)
        else:
            raise ValueError(f"{where}: missing {col['D']}")
        n.append(nv)
        d.append(dv)
        l_.append(lv)
        if "H" in col:
            h.append(_num(rec.get(col["H"]), col["H"], where))
        if "dataset" in col:
            v = rec.get(col["dataset"])
            if v in (None, ""):
                raise ValueError(f"{where}: empty {col['dataset']}")
            ds.append(str(v))
        lines.append(lineno)
    return Points(np.array(n), np.array(d), np.array(l_), np.array(h) if "H" in col else None,
                  ds if "dataset" in col else None, source, lines)


def read_points(path) -> Points:
    """Read runs from a .csv (header row) or .jsonl (one JSON object per line) file.

    Columns: N (n_params), D (n_tokens) or C (budget_flops), loss; optional H (gzip) and dataset.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unknown extension, or a bad row (message names file:line and the column).
    """
    return parse_points(read_records(path), source=str(Path(path)))


def read_records(path, *, what="points", example="N,D,loss") -> list:
    """(line number, {column: value}) per data row of a .csv (header row) or .jsonl file.

    Args:
        path: the file. what: what it holds, for messages. example: a header to suggest.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unknown extension, an empty CSV, or a JSONL line that is not a JSON object.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: {not_a_file(p, what)}")
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise ValueError(f"{p}: unknown extension {p.suffix!r}; use .csv or .jsonl")
    # UTF-8 with or without the byte-order mark spreadsheets write, CRLF or LF line ends;
    # other encodings are refused naming the line and byte (pygzlaw.textio).
    text = read_text(p)
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        recs = [(i + 2, row) for i, row in enumerate(reader)]
        if reader.fieldnames is None:
            raise ValueError(f"{p}: empty file; expected a header row such as {example}")
        return recs
    recs = []
    for i, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}:{i}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{p}:{i}: expected a JSON object per line, got {type(obj).__name__}")
        recs.append((i, obj))
    keys = set()
    for _, r in recs:
        keys |= set(r)
    return [(i, {k: r.get(k) for k in sorted(keys)}) for i, r in recs]


def law_from_dict(d: dict, *, where="law"):
    """ChinchillaLaw, DataDependentLaw or FamilyLaw (the other kinds) from its JSON dict (dispatch on "kind")."""
    from pygzlaw.laws.data_dependent import DataDependentLaw
    from pygzlaw.laws.law import LAW_FORMAT_VERSION, ChinchillaLaw

    if not isinstance(d, dict) or d.get("format") != "pygzlaw.law":
        raise ValueError(f"{where}: not a pygzlaw law file (missing \"format\": \"pygzlaw.law\")")
    if d.get("version") != LAW_FORMAT_VERSION:
        raise ValueError(f"{where}: law format version {d.get('version')!r} unsupported (expected {LAW_FORMAT_VERSION})")
    from pygzlaw.laws.family_law import FAMILY_KINDS, FamilyLaw

    kinds = {ChinchillaLaw.kind: ChinchillaLaw, DataDependentLaw.kind: DataDependentLaw,
             **{k: FamilyLaw for k in FAMILY_KINDS}}
    cls = kinds.get(d.get("kind"))
    if cls is None:
        raise ValueError(f"{where}: unknown law kind {d.get('kind')!r}; expected one of {sorted(kinds)}")
    return cls.from_json_dict(d, where=where)


def save_law(law, path) -> None:
    """Write a law's JSON atomically."""
    write_json(path, law.to_json_dict())


def load_law(path):
    """Read a law JSON file (any kind: ChinchillaLaw, DataDependentLaw, FamilyLaw); the name defaults to the file stem."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: {not_a_file(p, 'law')}")
    try:
        d = json.loads(read_text(p))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    law = law_from_dict(d, where=str(p))
    if not law.name:
        law.name = p.stem
    return law


# ----------------------------------------------------------- released data
def read_epoch_chinchilla(path, *, drop_highest_loss=5):
    """Besiroglu et al.'s 245 points extracted from Hoffmann et al.'s Figure 4.

    Columns used: "Model Size" (N), "Training FLOP" (C), "loss"; D = C / (6 N). Like Besiroglu et al.,
    drops the ``drop_highest_loss`` points with the highest loss (outliers).

    Returns:
        (n_params, n_tokens, loss): float64 arrays.
    """
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    n = np.array([float(r["Model Size"]) for r in rows])
    c = np.array([float(r["Training FLOP"]) for r in rows])
    l_ = np.array([float(r["loss"]) for r in rows])
    if drop_highest_loss:
        keep = keep_lowest_loss(l_, drop_highest_loss)
        n, c, l_ = n[keep], c[keep], l_[keep]
    return n, c / (6.0 * n), l_


def read_gadre(exp_dir, *, tasks=None) -> list[dict]:
    """The 104 released models of Gadre et al. 2024 with C4-eval loss and average downstream error.

    Args:
        exp_dir: the ``exp_data`` folder (models/*.json, evals/*.json, eval_metadata.csv).
        tasks: task names to average top-1 error over; default every task of eval_metadata.csv
            present in all eval files (46).

    Returns:
        list of {"name", "dataset", "n_params" (all params incl. embeddings), "n_tokens",
        "multiplier" (chinchilla_multiplier; M = 20 * multiplier), "loss" (C4 eval), "error" (or None)}.
    """
    exp = Path(exp_dir)
    if tasks is None:
        # eval_metadata.csv lists 51 tasks; 46 of them (the 46 of the paper) are in every eval file.
        with open(exp / "eval_metadata.csv", newline="") as f:
            tasks = [r["Eval Task"] for r in csv.DictReader(f)]
        for ep in sorted((exp / "evals").glob("*.json")):
            have = set(json.loads(ep.read_text())["eval_metrics"]["icl"])
            tasks = [t for t in tasks if t in have]
    out = []
    for mp in sorted((exp / "models").glob("*.json")):
        m = json.loads(mp.read_text())
        hp = m["hyperparameters"]
        loss = None
        for r in m.get("results", []):
            vd = r.get("val_data") or []
            if any("c4_val" in str(v) for v in vd):
                loss = float(r["loss"])
                break
        if loss is None:
            raise ValueError(f"{mp}: no C4 validation result (val_data containing 'c4_val')")
        err = None
        ep = exp / "evals" / f"evaluation_{m['name']}_heavy.json"
        if ep.is_file():
            icl = json.loads(ep.read_text())["eval_metrics"]["icl"]
            missing = [t for t in tasks if t not in icl]
            if missing:
                raise ValueError(f"{ep}: missing tasks {missing[:5]}")
            err = float(np.mean([1.0 - float(icl[t]) for t in tasks]))
        out.append({"name": m["name"], "dataset": m["dataset_name"], "n_params": float(hp["params"]),
                    "n_tokens": float(hp["tokens"]), "multiplier": float(hp["chinchilla_multiplier"]),
                    "loss": loss, "error": err})
    return out
