"""FastAPI service over a directory of fitted law JSON files.

Endpoints (OpenAPI docs at /docs and /redoc, served without a CDN; schema at /openapi.json):
    GET  /health                       liveness
    GET  /laws                         list laws (name, kind, parameters)
    POST /laws/{name}/evaluate         any family kind: {"inputs": {...}} -> outputs (+ intervals)
    GET  /laws/{name}                  one law (bootstrap samples summarised, not listed)
    POST /laws/{name}/predict          loss at (N, D[, H]) with bootstrap intervals when available
    POST /laws/{name}/allocate         compute-optimal N, D for budgets (H for data-dependent laws)
    POST /allocate                     allocate for an H with the directory's data-dependent law (or a named law)
    POST /fit                          fit a Chinchilla law from posted points; optionally save it

Well-formed predict/allocate requests are answered by serve.fast.FastRoutes (the same handlers
without FastAPI's per-request routing and validation); everything else by the FastAPI routes.
Every malformed request gets 422 with a readable "message" (pydantic errors flattened, law errors
passed through); requests larger than max_body_bytes get 413.
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
import threading
import time
from pathlib import Path
from typing import Annotated, Optional, Union

import numpy as np
import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pygzlaw.atomic import write_json
from pygzlaw.laws.io import load_law
from pygzlaw.serve.handlers import MAX_QUERY, allocate_body, evaluate_body, law_for_allocate, predict_body

__all__ = ["create_app", "LawStore", "MAX_BODY_BYTES"]

MAX_BODY_BYTES = 1 << 20      # 1 MiB; larger bodies get 413
DOCS_ASSETS_URL = "/docs-assets"  # Swagger UI / ReDoc JavaScript and CSS, from fastapi-offline
MAX_POINTS = 1000            # per POST /fit: 4500 starts x 1000 points is ~5 s of CPU
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Unit = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Level = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(_Strict):
    n_params: Union[PosFloat, list[PosFloat]] = Field(description="parameters N (one value or a list)")
    n_tokens: Union[PosFloat, list[PosFloat]] = Field(description="training tokens D (one value or a list)")
    h: Optional[PosFloat] = Field(None, description="gzip compressibility H (data-dependent laws)")
    epsilon: Optional[Unit] = Field(None, description="override the adjusted-Chinchilla weight")
    level: Level = Field(0.95, description="interval level")

    @model_validator(mode="after")
    def _lengths(self):
        n = self.n_params if isinstance(self.n_params, list) else [self.n_params]
        d = self.n_tokens if isinstance(self.n_tokens, list) else [self.n_tokens]
        if len(n) == 0 or len(d) == 0:
            raise ValueError("n_params and n_tokens must not be empty")
        if max(len(n), len(d)) > MAX_QUERY:
            raise ValueError(f"at most {MAX_QUERY} values per request")
        if len(n) != len(d) and 1 not in (len(n), len(d)):
            raise ValueError(f"n_params has {len(n)} values and n_tokens {len(d)}; give equal lengths or one value")
        return self


class AllocateRequest(_Strict):
    budget_flops: Union[PosFloat, list[PosFloat]] = Field(description="training compute C in FLOPs")
    h: Optional[PosFloat] = Field(None, description="gzip compressibility H (data-dependent laws)")
    epsilon: Optional[Unit] = None
    level: Level = 0.95

    @model_validator(mode="after")
    def _len(self):
        c = self.budget_flops if isinstance(self.budget_flops, list) else [self.budget_flops]
        if not 1 <= len(c) <= MAX_QUERY:
            raise ValueError(f"budget_flops needs 1..{MAX_QUERY} values")
        return self


class AllocateByHRequest(AllocateRequest):
    law: Optional[str] = Field(None, description="law name; default: the only data-dependent law in the directory")


class EvaluateRequest(_Strict):
    inputs: dict[str, Union[PosFloat, list[PosFloat], str, list[str]]] = Field(
        description="the law kind's inputs, e.g. {\"n_params\": [1e9], \"n_tokens\": [2e10], \"unique_tokens\": [1e9]}")
    level: Level = Field(0.95, description="interval level")

    @model_validator(mode="after")
    def _len(self):
        for k, v in self.inputs.items():
            if isinstance(v, list) and not 1 <= len(v) <= MAX_QUERY:
                raise ValueError(f"inputs.{k} needs 1..{MAX_QUERY} values")
        return self


class Point(_Strict):
    N: PosFloat
    D: Optional[PosFloat] = None
    C: Optional[PosFloat] = None
    loss: PosFloat

    @model_validator(mode="after")
    def _d_or_c(self):
        if self.D is None and self.C is None:
            raise ValueError("each point needs D (tokens) or C (FLOPs)")
        return self


class FitRequest(_Strict):
    points: list[Point] = Field(min_length=1, max_length=MAX_POINTS)
    grid: str = Field("hoffmann", pattern="^(hoffmann|muennighoff)$")
    huber_delta: PosFloat = 1e-3
    n_boot: int = Field(0, ge=0, le=1000)
    seed: int = Field(0, ge=0, le=2**63 - 1)
    name: Optional[str] = Field(None, description="save the law under this name (letters, digits, _ . -)")
    overwrite: bool = False


class NumbersJSON(JSONResponse):
    """JSONResponse encoded by orjson: ~2 us instead of ~24 us for an allocate answer (Python's float
    repr is most of json.dumps). Same numbers (shortest round-trip repr), shorter exponents (1e21,
    not 1e+21). Only for bodies of finite floats and strings: orjson writes NaN as null (result_value refuses
    non-finite results first)."""

    def render(self, content) -> bytes:
        return orjson.dumps(content)


class BodyLimit:
    """Pure ASGI middleware: 413 when Content-Length, or the streamed body, exceeds max_body_bytes.

    Pure ASGI rather than @app.middleware("http"): Starlette's BaseHTTPMiddleware wraps every
    request in extra tasks and streams; with it /health served 666 req/s here, without it 1286.
    """

    def __init__(self, app, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = int(max_body_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_body_bytes
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    n = int(v)
                except ValueError:
                    return await _send_json(send, 400, {"message": "invalid Content-Length"})
                if n > limit:
                    return await _send_json(send, 413, {"message": f"request body {n} bytes exceeds the limit of "
                                                                   f"{limit}"})
        seen = 0
        answered = False

        # A streamed (chunked) body is counted as it arrives. Raising from receive() would reach
        # FastAPI's body parser, which turns any error into 400; so answer 413 here, tell the app
        # the client left, and drop whatever the app tries to send afterwards.
        async def limited_receive():
            nonlocal seen, answered
            if answered:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    answered = True
                    await _send_json(send, 413, {"message": f"request body exceeds the limit of {limit} bytes"})
                    return {"type": "http.disconnect"}
            return msg

        async def guarded_send(msg):
            if not answered:
                await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not answered:
                raise


async def _send_json(send, status, obj):
    body = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class LawStore:
    """Laws in a directory, reloaded when a file's mtime or size changes (checked at most every refresh_s)."""

    def __init__(self, law_dir, *, refresh_s: float = 1.0):
        self.dir = Path(law_dir)
        if not self.dir.is_dir():
            raise FileNotFoundError(f"{self.dir}: law directory does not exist")
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._laws: dict = {}
        self._stamp: dict = {}
        self._errors: dict = {}
        self._checked = 0.0
        self.refresh(force=True)

    def refresh(self, force=False):
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_s:
            return
        with self._lock:
            seen = {}
            for entry in os.scandir(self.dir):
                if entry.name.endswith(".json") and not entry.name.startswith(".") and entry.is_file():
                    st = entry.stat()
                    seen[entry.name[:-5]] = (st.st_mtime_ns, st.st_size, entry.path)
            for name in list(self._laws):
                if name not in seen:
                    self._laws.pop(name)
                    self._stamp.pop(name, None)
            self._errors = {k: v for k, v in self._errors.items() if k in seen}
            for name, (mt, size, path) in seen.items():
                if self._stamp.get(name) == (mt, size):
                    continue
                try:
                    law = load_law(path)
                    law.name = name
                    self._laws[name] = law
                    self._errors.pop(name, None)
                except (ValueError, OSError) as exc:
                    self._laws.pop(name, None)
                    self._errors[name] = str(exc)
                self._stamp[name] = (mt, size)
            self._checked = now

    def get(self, name):
        self.refresh()
        law = self._laws.get(name)
        if law is None:
            if name in self._errors:
                raise HTTPException(status_code=409, detail=f"law {name!r} exists but is invalid: {self._errors[name]}")
            raise HTTPException(status_code=404, detail=f"no law named {name!r}; GET /laws lists the available laws")
        return law

    def all(self):
        self.refresh()
        return dict(self._laws), dict(self._errors)

    def save(self, name, law, *, overwrite=False):
        if not _NAME_RE.match(name):
            raise ValueError(f"name={name!r} must match {_NAME_RE.pattern}")
        path = self.dir / f"{name}.json"
        if path.exists() and not overwrite:
            raise HTTPException(status_code=409, detail=f"law {name!r} exists; pass overwrite=true to replace it")
        write_json(path, law.to_json_dict())
        self.refresh(force=True)
        return str(path)


def _summary(law) -> dict:
    if law.kind not in ("chinchilla", "data_dependent"):
        return law.summary()                  # the rest of the family (laws.family_law.FamilyLaw)
    d = {"name": law.name, "kind": law.kind}
    if law.kind == "chinchilla":
        d["params"] = law.params.to_dict()
        d["n_boot"] = 0 if law.bootstrap is None else int(len(law.bootstrap))
    else:
        d["regressions"] = {k: r.to_dict() for k, r in law.regressions.items()}
        d["epsilon"] = law.epsilon
        d["h_range"] = list(law.h_range)
    return d


# Tags pydantic puts in an error's loc for the branch of a Union (PosFloat | list[PosFloat]).
_UNION_TAGS = {"constrained-float", "list[constrained-float]", "float", "list[float]"}


def _field_path(loc) -> str:
    """('body', 'points', 0, 'loss') -> 'points[0].loss' (union branch tags dropped)."""
    out = ""
    for x in loc:
        if x == "body" or x in _UNION_TAGS:
            continue
        out += f"[{x}]" if isinstance(x, int) else (f".{x}" if out else str(x))
    return out or "body"


def _relevant(errors) -> list:
    """Drop the other branch's noise when a value fails ``float | list[float]``: a scalar
    is not "a valid list", and a list is not "a valid number"."""
    by_field: dict = {}
    for e in errors:
        by_field.setdefault(_field_path(e.get("loc", ())[:3]), []).append(e)
    keep = []
    for errs in by_field.values():
        main = [e for e in errs if not (e.get("type") == "list_type" or (
            e.get("type") == "float_type" and isinstance(e.get("input"), list)))]
        keep.extend(main or errs)
    return keep


def _finite_json(x):
    """A JSON-safe copy: NaN and infinities (which JSON cannot hold) as strings, and the lone
    surrogates a JSON escape can put in a str (which UTF-8 cannot hold) as ``\\udXXX`` text."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, str):
        return x if x.isascii() else x.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(x, dict):
        return {_finite_json(str(k)): _finite_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_json(v) for v in x]
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


def _flatten_errors(errors) -> str:
    parts = []
    for e in _relevant(errors):
        where = _field_path(e.get("loc", ()))
        got = e.get("input")
        if e.get("type") == "finite_number":
            parts.append(f"{where} must be a finite number, got {got!r} (NaN, Infinity and "
                         "numbers beyond ±1.8e308 are not accepted)")
        elif e.get("type") in ("missing", "extra_forbidden") or isinstance(got, (dict, list)):
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        else:
            parts.append(f"{where}: {e.get('msg', 'invalid')}, got {got!r}")
    return "; ".join(parts) or "invalid request"


def create_app(law_dir, *, max_body_bytes: int = MAX_BODY_BYTES, allow_fit_save: bool = False,
               fast_routes: bool = True) -> FastAPI:
    """Build the FastAPI app over ``law_dir`` (a directory of ``*.json`` law files).

    Args:
        law_dir: directory of law JSON files; the file stem is the law's name.
        max_body_bytes: requests with larger bodies get 413.
        allow_fit_save: let POST /fit write new law files into law_dir (off by default: an HTTP
            request writes nothing unless the server was started with ``--allow-save``).
        fast_routes: answer well-formed predict/allocate requests in serve.fast.FastRoutes, ahead of
            FastAPI's routing (same handlers, same bytes; ~2x the requests/s). False: FastAPI only.

    Returns:
        FastAPI application.
    """
    from fastapi_offline import FastAPIOffline

    store = LawStore(law_dir)
    # /docs and /redoc load Swagger UI and ReDoc from the fastapi-offline package (under
    # DOCS_ASSETS_URL), not from a CDN, so they work on an offline cluster node. FastAPIOffline
    # is a factory of plain FastAPI apps; the class is then set to ours for the fast front.
    app = FastAPIOffline(title="pygzlaw law service", version="1", static_url=DOCS_ASSETS_URL,
                         description="Fitted scaling laws: list, predict with intervals, "
                                     "allocate compute, fit.")
    app.__class__ = _ServiceApp
    app.state.store = store

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return JSONResponse(_finite_json({"message": _flatten_errors(exc.errors()),
                                          "detail": list(exc.errors())}), status_code=422)

    @app.exception_handler(ValueError)
    async def _value_error(request: Request, exc: ValueError):
        return JSONResponse({"message": str(exc)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return JSONResponse({"message": exc.detail}, status_code=exc.status_code)

    @app.get("/health")
    async def health():
        return JSONResponse({"status": "ok"})

    @app.get("/laws")
    async def list_laws():
        laws, errors = store.all()
        return {"laws": [_summary(v) for _, v in sorted(laws.items())],
                "invalid": [{"name": k, "error": v} for k, v in sorted(errors.items())]}

    @app.get("/laws/{name}")
    async def get_law(name: str):
        law = store.get(name)
        d = law.to_json_dict()
        if d.get("bootstrap"):
            d["bootstrap"] = {"columns": d["bootstrap"]["columns"], "n_boot": len(d["bootstrap"]["samples"])}
            d["intervals"] = law.param_intervals()
        return d

    # Handlers return JSONResponse directly: FastAPI's jsonable_encoder walk of a returned dict
    # costs more than the law arithmetic itself.
    @app.post("/laws/{name}/predict")
    async def predict(name: str, req: PredictRequest):
        return NumbersJSON(predict_body(store.get(name), req))

    @app.post("/laws/{name}/evaluate")
    async def evaluate(name: str, req: EvaluateRequest):
        """Any kind: its inputs in, its outputs (and intervals) out (laws.family_law for the rest of the family)."""
        law = store.get(name)
        if not hasattr(law, "evaluate"):
            raise ValueError(f"law {name!r} is a {law.kind} law; use POST /laws/{name}/predict")
        return NumbersJSON(evaluate_body(law, req.inputs, req.level))

    @app.post("/laws/{name}/allocate")
    async def allocate_law(name: str, req: AllocateRequest):
        return NumbersJSON(allocate_body(store.get(name), req))

    @app.post("/allocate")
    async def allocate_by_h(req: AllocateByHRequest):
        return NumbersJSON(allocate_body(law_for_allocate(store, req), req))

    @app.post("/fit")
    def fit(req: FitRequest):  # sync: runs in the threadpool, a 4500-start fit takes ~1-2 s of CPU
        from pygzlaw.laws.law import ChinchillaLaw

        n = np.array([p.N for p in req.points])
        d = np.array([p.D if p.D is not None else p.C / (6.0 * p.N) for p in req.points])
        loss = np.array([p.loss for p in req.points])
        law = ChinchillaLaw.fit(n, d, loss, grid=req.grid, huber_delta=req.huber_delta, n_boot=req.n_boot,
                                seed=req.seed, name=req.name or "", meta={"source": "POST /fit"})
        out = _summary(law)
        out["fit"] = law.fit_info
        if law.bootstrap is not None:
            out["intervals"] = law.param_intervals()
        if req.name:
            if not allow_fit_save:
                raise HTTPException(status_code=403, detail="this server does not save fitted laws (start "
                                    "it with `pygzlaw serve --allow-save` to let POST /fit write law files); "
                                    "omit name to fit without saving")
            out["saved"] = store.save(req.name, law, overwrite=req.overwrite)
        return out

    app.add_middleware(BodyLimit, max_body_bytes=max_body_bytes)
    if fast_routes:
        from pygzlaw.serve.fast import FastRoutes   # imports this module's handlers

        app.fast_routes = FastRoutes(functools.partial(FastAPI.__call__, app), store, max_body_bytes)
    return app


class _ServiceApp(FastAPI):
    """FastAPI with an optional pure-ASGI front (serve.fast.FastRoutes) ahead of its middleware stack."""

    fast_routes = None

    async def __call__(self, scope, receive, send):
        if self.fast_routes is not None:
            return await self.fast_routes(scope, receive, send)
        return await super().__call__(scope, receive, send)


def app_from_env() -> FastAPI:
    """App factory for multi-worker uvicorn (``pygzlaw serve --workers N``): settings from the environment."""
    return create_app(os.environ["PYGZLAW_SERVE_LAW_DIR"],
                      max_body_bytes=int(os.environ.get("PYGZLAW_SERVE_MAX_BODY", MAX_BODY_BYTES)),
                      allow_fit_save=os.environ.get("PYGZLAW_SERVE_SAVE", "0") == "1")
