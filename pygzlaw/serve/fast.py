"""Hot-path front for POST /laws/{name}/predict, /laws/{name}/allocate and /allocate.

FastAPI's per-request machinery (routing, dependency solving, pydantic, exception middleware)
cost ~100 us per request here, as much as the law arithmetic. ``FastRoutes`` is pure ASGI
middleware that answers *well-formed* requests to those three endpoints itself: it validates the
JSON body by hand (accepting only what the pydantic models accept), calls the same handler
functions as the FastAPI routes (``handlers.predict_body``, ``handlers.allocate_body``) and encodes the answer as
their response class (``app.NumbersJSON``) does, so the status, headers and bytes are the same
(tested). orjson parses the body: ~1 us instead of ~7 us, the same values as json.loads where
both succeed (integers beyond 64 bits become the float pydantic would make of them); where
orjson fails (NaN, 1e999, invalid UTF-8) FastAPI answers.

Anything it is not sure about goes to the FastAPI app with the body replayed: a validation
failure, an unknown or invalid law, a law error (ValueError), another content type, any other
path or method. So every error answer (422 with its message, 404, 409, 413) still comes from one
place, and a failed request costs at most one extra parse.
"""
from __future__ import annotations

import math

import orjson

from pygzlaw.serve.handlers import MAX_QUERY, allocate_body, law_for_allocate, predict_body

__all__ = ["FastRoutes", "parse_predict", "parse_allocate", "NotFast"]

_PREDICT_KEYS = frozenset({"n_params", "n_tokens", "h", "epsilon", "level"})
_ALLOCATE_KEYS = frozenset({"budget_flops", "h", "epsilon", "level"})
_ALLOCATE_BY_H_KEYS = _ALLOCATE_KEYS | {"law"}


class NotFast(Exception):
    """The fast path declines this request; the FastAPI route answers it."""


class _Req:
    """Plain copy of a validated request: the attributes the handlers read from the pydantic models."""

    __slots__ = ("n_params", "n_tokens", "budget_flops", "h", "epsilon", "level", "law")

    def __init__(self, **kw):
        self.n_params = self.n_tokens = self.budget_flops = self.h = self.epsilon = self.law = None
        self.level = 0.95
        for k, v in kw.items():
            setattr(self, k, v)


def _num(v) -> float:
    """A finite JSON number as pydantic's lax float makes it (int -> float); bool, str, ... decline."""
    t = type(v)
    if t is float:
        x = v
    elif t is int:
        try:
            x = float(v)
        except OverflowError:
            raise NotFast from None
    else:
        raise NotFast
    if not math.isfinite(x):      # json.loads reads NaN, Infinity and 1e999
        raise NotFast
    return x


def _positive(v) -> float:
    x = _num(v)
    if not x > 0:
        raise NotFast
    return x


def _positive_or_list(v):
    """PosFloat | list[PosFloat] with 1..MAX_QUERY values (the models' length rules)."""
    if type(v) is list:
        if not 1 <= len(v) <= MAX_QUERY:
            raise NotFast
        return [_positive(x) for x in v]
    return _positive(v)


def _options(body: dict, req: _Req) -> None:
    """h (> 0), epsilon (in [0, 1]) and level (in (0, 1)), each optional; null means absent for h, epsilon."""
    h = body.get("h")
    if h is not None:
        req.h = _positive(h)
    eps = body.get("epsilon")
    if eps is not None:
        eps = _num(eps)
        if not 0 <= eps <= 1:
            raise NotFast
        req.epsilon = eps
    if "level" in body:
        level = _num(body["level"])
        if not 0 < level < 1:
            raise NotFast
        req.level = level


def parse_predict(body) -> _Req:
    """PredictRequest's rules by hand; raises NotFast wherever pydantic might answer differently."""
    if type(body) is not dict or not body.keys() <= _PREDICT_KEYS or "n_params" not in body \
            or "n_tokens" not in body:
        raise NotFast
    req = _Req(n_params=_positive_or_list(body["n_params"]), n_tokens=_positive_or_list(body["n_tokens"]))
    ln = len(req.n_params) if type(req.n_params) is list else 1
    ld = len(req.n_tokens) if type(req.n_tokens) is list else 1
    if ln != ld and 1 not in (ln, ld):
        raise NotFast
    _options(body, req)
    return req


def parse_allocate(body, *, by_h: bool = False) -> _Req:
    """AllocateRequest's (by_h: AllocateByHRequest's) rules by hand; raises NotFast as parse_predict."""
    if type(body) is not dict or not body.keys() <= (_ALLOCATE_BY_H_KEYS if by_h else _ALLOCATE_KEYS) \
            or "budget_flops" not in body:
        raise NotFast
    req = _Req(budget_flops=_positive_or_list(body["budget_flops"]))
    _options(body, req)
    if by_h:
        law = body.get("law")
        if law is not None and type(law) is not str:
            raise NotFast
        req.law = law
    return req


def _is_json(headers) -> bool:
    """Content-Type application/json (parameters allowed), the case FastAPI parses with json.loads."""
    for k, v in headers:
        if k == b"content-type":
            v = v.lower()
            return v == b"application/json" or v.startswith(b"application/json;")
    return False                  # absent: FastAPI parses it too, but it is rare; let FastAPI do it


class FastRoutes:
    """Pure ASGI front: answers well-formed predict/allocate POSTs, passes the rest to ``app``.

    It runs ahead of FastAPI's whole middleware stack (ServerErrorMiddleware, BodyLimit, ...: ~20
    us a request), so it keeps the body limit itself: a body over max_body_bytes goes to ``app``,
    whose BodyLimit answers 413.

    Args:
        app: the full ASGI app (FastAPI with its middleware).
        store: the LawStore the routes read.
        max_body_bytes: bodies larger than this are left to ``app``.
    """

    def __init__(self, app, store, max_body_bytes: int):
        self.app = app
        self.store = store
        self.max_body_bytes = int(max_body_bytes)

    def _answer(self, path: str, body: bytes) -> bytes:
        """Encoded 200 response body, or NotFast / any exception to let FastAPI answer."""
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "laws" and parts[2] and parts[3] in ("predict", "allocate"):
            data = orjson.loads(body)
            if parts[3] == "predict":
                req = parse_predict(data)
                out = predict_body(self.store.get(parts[2]), req)
            else:
                req = parse_allocate(data)
                out = allocate_body(self.store.get(parts[2]), req)
        elif path == "/allocate":
            req = parse_allocate(orjson.loads(body), by_h=True)
            out = allocate_body(law_for_allocate(self.store, req), req)
        else:
            raise NotFast
        return orjson.dumps(out)                # as app.NumbersJSON, the routes' response class

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path") \
                or not (scope["path"].startswith("/laws/") or scope["path"] == "/allocate") \
                or not _is_json(scope["headers"]):
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] != "http.request":
                return            # the client has gone
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            more = msg.get("more_body", False)
            if size > self.max_body_bytes:
                break             # app's BodyLimit answers 413 (Content-Length over it: at once)
        body = b"".join(chunks)
        try:
            if more:
                raise NotFast
            payload = self._answer(scope["path"], body)
        except Exception:          # noqa: BLE001 - NotFast, HTTPException, ValueError, ...: FastAPI answers
            replayed = False

            async def replay():   # what was read, then the rest of the stream
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": more}
                return await receive()

            return await self.app(scope, replay, send)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(payload)).encode("latin-1")),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})
