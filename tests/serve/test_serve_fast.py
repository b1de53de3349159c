"""serve.fast.FastRoutes answers exactly as the FastAPI routes do, and with the law objects' own numbers."""
import json

import numpy as np
import pytest
from starlette.testclient import TestClient

from pygzlaw.laws.data_dependent import DataDependentLaw, regress_params
from pygzlaw.laws.forms import ChinchillaParams
from pygzlaw.laws.io import load_law, save_law
from pygzlaw.laws.law import ChinchillaLaw
from pygzlaw.serve import fast
from pygzlaw.serve.app import create_app

TRUE = ChinchillaParams(E=1.8, A=480.0, B=2000.0, alpha=0.35, beta=0.37)


@pytest.fixture(scope="module")
def law_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("laws-fast")
    rng = np.random.default_rng(3)
    boot = np.array(list(TRUE.to_dict().values())) * np.exp(rng.normal(0, 0.01, size=(400, 5)))
    save_law(ChinchillaLaw(params=TRUE, bootstrap=boot), d / "chin.json")
    save_law(ChinchillaLaw(params=TRUE), d / "plain.json")
    hs = [0.2, 0.35, 0.5]
    ps = [ChinchillaParams(E=0.5 + 2 * h, A=300 - 200 * h, B=500 - 300 * h, alpha=0.45 - 0.3 * h, beta=0.25 + 0.1 * h)
          for h in hs]
    regs = regress_params(hs, ps)
    coef = np.array([[regs[k].slope, regs[k].intercept] for k in ("E", "A", "B", "alpha", "beta")])
    save_law(DataDependentLaw(regressions=regs, h_range=(0.2, 0.5),
                              bootstrap=coef[None] * np.exp(rng.normal(0, 0.01, size=(150, 5, 2)))), d / "dd.json")
    return d


@pytest.fixture(scope="module")
def clients(law_dir):
    """(fast, plain): the same directory served with and without the FastRoutes front."""
    return (TestClient(create_app(law_dir, max_body_bytes=64 * 1024)),
            TestClient(create_app(law_dir, max_body_bytes=64 * 1024, fast_routes=False)))


def _same(clients, path, body=None, content=None, headers=None):
    """Post to both apps; the status, content type and body bytes must agree. Returns the fast response."""
    kw = {"json": body} if content is None else {"content": content, "headers": headers or {}}
    a, b = (c.post(path, **kw) for c in clients)
    assert (a.status_code, a.content, a.headers.get("content-type"), a.headers.get("content-length")) == \
        (b.status_code, b.content, b.headers.get("content-type"), b.headers.get("content-length")), (path, body)
    assert a.status_code < 500
    return a


def _valid_requests(rng, n):
    out = []
    for i in range(n):
        k = int(rng.integers(1, 5))
        nn = (10 ** rng.uniform(6, 12, k)).tolist()
        dd = (10 ** rng.uniform(7, 13, k)).tolist()
        if i % 4 == 0:
            nn, dd = nn[0], dd[0]                 # scalars
        elif i % 4 == 1:
            dd = dd[:1]                           # one value broadcast
        if i % 5 == 0:
            nn = int(nn) if not isinstance(nn, list) else [int(x) for x in nn]   # ints are floats too
        extra = {}
        if i % 3 == 0:
            extra["level"] = float(rng.uniform(0.05, 0.99))
        out.append(("/laws/chin/predict", {"n_params": nn, "n_tokens": dd, **extra}))
        out.append(("/laws/plain/predict", {"n_params": nn, "n_tokens": dd, "h": None}))
        h = round(float(rng.uniform(0.2, 0.5)), 3)
        out.append(("/laws/dd/predict", {"n_params": nn, "n_tokens": dd, "h": h, **extra,
                                         **({"epsilon": float(rng.uniform(0, 1))} if i % 2 else {})}))
        c = (10 ** rng.uniform(17, 25, k)).tolist()
        c = c[0] if i % 2 else c
        out.append(("/laws/chin/allocate", {"budget_flops": c, **extra}))
        out.append(("/laws/dd/allocate", {"budget_flops": c, "h": h, "epsilon": None}))
        out.append(("/allocate", {"budget_flops": c, "h": h}))
        out.append(("/allocate", {"budget_flops": c, "law": "chin", **extra}))
    return out


def test_fast_path_equals_fastapi_routes_on_valid_requests(clients):
    calls = []
    app = clients[0].app
    inner = app.fast_routes.app

    async def spy(scope, receive, send):          # counts what the front hands to FastAPI
        calls.append(scope["path"])
        await inner(scope, receive, send)

    app.fast_routes.app = spy
    try:
        reqs = _valid_requests(np.random.default_rng(0), 40)
        for path, body in reqs:
            r = _same(clients, path, body)
            assert r.status_code == 200, (path, body, r.text)
    finally:
        app.fast_routes.app = inner
    assert calls == []                            # every one answered by the front itself


def test_fast_path_numbers_are_the_law_objects(clients, law_dir):
    chin, dd = load_law(law_dir / "chin.json"), load_law(law_dir / "dd.json")
    rng = np.random.default_rng(1)
    n, d = 10 ** rng.uniform(6, 12, 7), 10 ** rng.uniform(7, 13, 7)
    out = clients[0].post("/laws/chin/predict", json={"n_params": n.tolist(), "n_tokens": d.tolist(),
                                                      "level": 0.9}).json()
    lo, hi = chin.predict_interval(n, d, level=0.9)
    assert out["loss"] == chin.predict(n, d).tolist() and out["lo"] == lo.tolist() and out["hi"] == hi.tolist()
    out = clients[0].post("/laws/dd/predict", json={"n_params": n.tolist(), "n_tokens": d.tolist(), "h": 0.3,
                                                    "epsilon": 0.7}).json()
    lo, hi = dd.predict_interval(n, d, 0.3, epsilon=0.7)
    assert out["loss"] == dd.predict(n, d, 0.3, epsilon=0.7).tolist() and out["lo"] == lo.tolist() \
        and out["hi"] == hi.tolist()
    c = 10 ** rng.uniform(18, 24, 5)
    out = clients[0].post("/laws/chin/allocate", json={"budget_flops": c.tolist()}).json()
    a, iv = chin.allocate(c), chin.allocate_interval(c)
    assert out["n_params"] == a.n_params.tolist() and out["loss"] == a.loss.tolist()
    for k, (lo, hi) in iv.items():
        assert out["intervals"][k] == {"lo": lo.tolist(), "hi": hi.tolist()}
    out = clients[0].post("/allocate", json={"budget_flops": 1e21, "h": 0.4}).json()
    assert out["law"] == "dd" and out["tokens_per_param"] == dd.allocate(np.array([1e21]), 0.4).tokens_per_param[0]


@pytest.mark.parametrize("path, body", [
    ("/laws/chin/predict", {"n_params": -1, "n_tokens": 1e10}),
    ("/laws/chin/predict", {"n_params": True, "n_tokens": 1e10}),        # pydantic's lax float takes bools
    ("/laws/chin/predict", {"n_params": "1e9", "n_tokens": 1e10}),       # and numeric strings
    ("/laws/chin/predict", {"n_params": 1e9}),
    ("/laws/chin/predict", {"n_params": [1e9, 2e9], "n_tokens": [1, 2, 3]}),
    ("/laws/chin/predict", {"n_params": [], "n_tokens": 1e10}),
    ("/laws/chin/predict", {"n_params": 1e9, "n_tokens": 1e10, "level": None}),
    ("/laws/chin/predict", {"n_params": 1e9, "n_tokens": 1e10, "level": 1}),
    ("/laws/chin/predict", {"n_params": 1e9, "n_tokens": 1e10, "extra": 1}),
    ("/laws/chin/predict", {"n_params": 1e9, "n_tokens": 1e10, "h": 0.3}),
    ("/laws/chin/predict", {"n_params": 1e-300, "n_tokens": 1e-300}),     # overflow: not finite
    ("/laws/dd/predict", {"n_params": 1e9, "n_tokens": 1e10}),
    ("/laws/nope/predict", {"n_params": 1e9, "n_tokens": 1e10}),
    ("/laws/chin/allocate", {"budget_flops": 0}),
    ("/laws/chin/allocate", {"budget_flops": [1e21] * 10001}),
    ("/laws/dd/allocate", {"budget_flops": 1e21, "h": 5.0}),
    ("/laws/dd/allocate", {"budget_flops": 1e21, "h": 0.3, "epsilon": 2}),
    ("/allocate", {"budget_flops": 1e21}),
    ("/allocate", {"budget_flops": 1e21, "law": 3}),
    ("/allocate", {"budget_flops": 1e21, "law": "nope"}),
    ("/laws/chin/fit", {"n_params": 1e9}),
    ("/laws/chin/predict/", {"n_params": 1e9, "n_tokens": 1e10}),
    ("/laws//predict", {"n_params": 1e9, "n_tokens": 1e10}),
])
def test_fast_path_hands_the_rest_to_fastapi(clients, path, body):
    _same(clients, path, body)


def test_non_json_bodies_and_content_types(clients):
    for raw in (b"{not json", b'{"n_params": NaN, "n_tokens": 1e10}', b"[]", b"null", b"",
                b'{"n_params": 1e999, "n_tokens": 1}', b'{"n_params": 1e9, "n_tokens": 1e10, "n_tokens": 2e10}',
                b'{"n_params": 100000000000000000000000000000, "n_tokens": 1e10}',
                b'{"n_params": 1' + b"0" * 400 + b', "n_tokens": 1e10}'):
        _same(clients, "/laws/chin/predict", content=raw, headers={"content-type": "application/json"})
    body = json.dumps({"n_params": 1e9, "n_tokens": 1e10}).encode()
    for ct in ("text/plain", "application/json; charset=utf-8", "application/vnd.api+json", "APPLICATION/JSON"):
        _same(clients, "/laws/chin/predict", content=body, headers={"content-type": ct})


def test_body_limit_applies_in_front(clients):
    big = json.dumps({"n_params": [1e9] * 20000, "n_tokens": 1e10}).encode()
    r = _same(clients, "/laws/chin/predict", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413

    def chunks():
        yield b'{"n_params": ['
        for _ in range(20000):
            yield b"1e9, "
        yield b'1e9], "n_tokens": 1e10}'

    r = clients[0].post("/laws/chin/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "exceeds the limit" in r.json()["message"]


def test_fuzzed_bodies_agree(clients):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    pos = st.floats(min_value=1e-3, max_value=1e15)
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.text(max_size=5),
                        st.floats(allow_nan=False, allow_infinity=False), pos, pos, st.floats(0.01, 0.99))
    values = st.one_of(scalars, st.lists(st.one_of(pos, scalars), max_size=4), st.lists(pos, min_size=1, max_size=4))
    keys = st.sampled_from(["n_params", "n_tokens", "h", "epsilon", "level", "budget_flops", "law"])
    bodies = st.dictionaries(keys, values, max_size=5)
    paths = st.sampled_from(["/laws/chin/predict", "/laws/dd/predict", "/laws/plain/predict", "/laws/chin/allocate",
                             "/laws/dd/allocate", "/allocate"])

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(path=paths, body=bodies)
    def check(path, body):
        _same(clients, path, body)

    check()


def test_parsers_accept_only_what_pydantic_accepts():
    assert fast.parse_predict({"n_params": 5, "n_tokens": [1.5, 2]}).n_params == 5.0
    for bad in ({"n_params": True, "n_tokens": 1.0}, {"n_params": 1.0}, {"n_params": 1.0, "n_tokens": 1.0, "x": 1},
                {"n_params": 1.0, "n_tokens": float("inf")}, {"n_params": 10**400, "n_tokens": 1.0}, [1.0]):
        with pytest.raises(fast.NotFast):
            fast.parse_predict(bad)
    req = fast.parse_allocate({"budget_flops": [1e21], "h": 1, "law": "x"}, by_h=True)
    assert (req.budget_flops, req.h, req.law, req.level, req.epsilon) == ([1e21], 1.0, "x", 0.95, None)
    with pytest.raises(fast.NotFast):
        fast.parse_allocate({"budget_flops": 1e21, "law": "x"})
