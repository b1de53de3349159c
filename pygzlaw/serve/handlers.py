"""Request handlers shared by the FastAPI routes (serve/app.py) and the hot-path front (serve/fast.py).

Both answer with these functions, so the numbers are the same whichever path serves a request;
``req`` is a pydantic request model (app.py) or fast.py's plain copy of one. A module of its own
so that neither of the two imports the other's private names.
"""
from __future__ import annotations

import math

import numpy as np

from pygzlaw.laws.report import allocation_report, prediction_report

__all__ = ["MAX_QUERY", "as_array", "result_value", "predict_body", "allocate_body",
           "law_for_allocate"]

MAX_QUERY = 10000             # values per predict/allocate request


def as_array(v):
    return np.asarray(v if isinstance(v, list) else [v], dtype=np.float64), isinstance(v, list)


def result_value(arr, as_list):
    """Result array -> JSON value (list, or float when the request gave scalars); ValueError if not finite."""
    arr = np.asarray(arr, dtype=np.float64)
    vals = arr.ravel().tolist()
    # math.isfinite over a few Python floats: a numpy isfinite().all() costs ~3 us a call, 13 calls an allocate
    if not all(map(math.isfinite, vals)):
        raise ValueError("the result is not finite (overflow) at these inputs; they are far outside the law's range")
    if not as_list:
        return vals[0]
    return vals if arr.ndim == 1 else arr.tolist()


def evaluate_body(law, inputs: dict, level: float) -> dict:
    """Response body of POST /laws/{name}/evaluate (a family law's outputs and intervals), with
    the CLI's warnings: (N, D) points more than 10x outside the fitted runs (kinds that take
    n_params and n_tokens)."""
    import numpy as np

    from pygzlaw.laws.report import prediction_warnings

    out = law.evaluate(inputs, level=level)
    if "n_params" in inputs and "n_tokens" in inputs:
        n, d = np.broadcast_arrays(np.asarray(inputs["n_params"], dtype=np.float64),
                                   np.asarray(inputs["n_tokens"], dtype=np.float64))
        out["warnings"] = prediction_warnings(law, n, d)
    return out


def predict_body(law, req) -> dict:
    """Response body of POST /laws/{name}/predict (loss in nats/token, intervals when the law has replicates)."""
    n, n_list = as_array(req.n_params)
    d, d_list = as_array(req.n_tokens)
    as_list = n_list or d_list
    if law.kind not in ("chinchilla", "data_dependent"):
        if law.kind != "overtrain" or req.h is not None or req.epsilon is not None:
            raise ValueError(f"law {law.name!r} is a {law.kind} law; POST /laws/{law.name}/evaluate with its "
                             "inputs (see GET /laws/{name})" if law.kind != "overtrain" else
                             f"law {law.name!r} is an overtrain law; h and epsilon do not apply")
        return evaluate_body(law, {"n_params": req.n_params, "n_tokens": req.n_tokens}, req.level)
    if law.kind == "data_dependent" and req.h is None:
        raise ValueError(f"law {law.name!r} is data-dependent; give h (gzip compressibility)")
    if law.kind == "chinchilla" and req.h is not None:
        raise ValueError(f"law {law.name!r} is a plain Chinchilla law; h is not accepted")
    # The CLI's predict: loss, intervals when the law has replicates, warnings (N or D > 10x outside
    # the runs; H outside the fitted range). A plain law ignores epsilon here, as it always has.
    out = prediction_report(law, n, d, h=req.h, epsilon=req.epsilon if law.kind == "data_dependent" else None,
                            level=req.level)
    for k in ("loss", "lo", "hi"):
        if k in out:
            out[k] = result_value(out[k], as_list)
    return out


def allocate_body(law, req) -> dict:
    """Response body of POST /laws/{name}/allocate and /allocate (N, D in counts, C in FLOPs)."""
    c, as_list = as_array(req.budget_flops)
    out = allocation_report(law, c, h=req.h, epsilon=req.epsilon, level=req.level)
    a = out.pop("allocation")
    if "intervals" in out:
        out["intervals"] = {k: {"lo": result_value(lo, as_list), "hi": result_value(hi, as_list)}
                            for k, (lo, hi) in out["intervals"].items()}
    for k in ("budget_flops", "n_params", "n_tokens", "tokens_per_param", "loss"):
        out[k] = result_value(getattr(a, k), as_list)
    return out


def law_for_allocate(store, req):
    """The law POST /allocate uses: req.law, else the directory's only data-dependent law."""
    if req.law is not None:
        return store.get(req.law)
    if req.h is None:
        raise ValueError("give h (gzip compressibility) or law")
    laws, _ = store.all()
    dd = [v for v in laws.values() if v.kind == "data_dependent"]
    if len(dd) != 1:
        raise ValueError(f"{len(dd)} data-dependent laws in the directory; name one with law=")
    return dd[0]
