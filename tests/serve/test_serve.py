"""The law service, tested over real HTTP: uvicorn in a thread on a free loopback port, httpx client."""
import json
import socket
import threading
import time

import httpx
import numpy as np
import pytest

from pygzlaw.laws.data_dependent import regress_params, DataDependentLaw
from pygzlaw.laws.forms import ChinchillaParams, chinchilla_loss
from pygzlaw.laws.io import save_law
from pygzlaw.laws.law import ChinchillaLaw

TRUE = ChinchillaParams(E=1.8, A=480.0, B=2000.0, alpha=0.35, beta=0.37)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def law_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("laws")
    rng = np.random.default_rng(0)
    boot = np.array(list(TRUE.to_dict().values())) * np.exp(rng.normal(0, 0.01, size=(300, 5)))
    save_law(ChinchillaLaw(params=TRUE, bootstrap=boot, fit_info={"objective": 0.0}), d / "chin.json")
    save_law(ChinchillaLaw(params=TRUE), d / "plain.json")
    hs = [0.2, 0.35, 0.5]
    ps = [ChinchillaParams(E=0.5 + 2 * h, A=300 - 200 * h, B=500 - 300 * h, alpha=0.45 - 0.3 * h, beta=0.25 + 0.1 * h)
          for h in hs]
    regs = regress_params(hs, ps)
    coef = np.array([[regs[k].slope, regs[k].intercept] for k in ("E", "A", "B", "alpha", "beta")])
    boot = coef[None] * np.exp(rng.normal(0, 0.01, size=(200, 5, 2)))
    save_law(DataDependentLaw(regressions=regs, h_range=(0.2, 0.5), bootstrap=boot), d / "dd.json")
    (d / "broken.json").write_text("{not json")
    return d


@pytest.fixture(scope="module")
def base_url(law_dir):
    import uvicorn

    from pygzlaw.serve.app import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(law_dir, max_body_bytes=64 * 1024, allow_fit_save=True), host="127.0.0.1",
                                           port=port, log_level="error"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not th.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    th.join(10)


@pytest.fixture(scope="module")
def client(base_url):
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


def test_health_and_docs(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/laws/{name}/predict" in spec["paths"] and "/fit" in spec["paths"]


def test_list_and_get(client):
    body = client.get("/laws").json()
    assert [x["name"] for x in body["laws"]] == ["chin", "dd", "plain"]
    assert body["invalid"][0]["name"] == "broken" and "invalid JSON" in body["invalid"][0]["error"]
    law = client.get("/laws/chin").json()
    assert law["params"]["alpha"] == 0.35 and law["bootstrap"]["n_boot"] == 300
    assert set(law["intervals"]) == {"E", "A", "B", "alpha", "beta"}
    r = client.get("/laws/nope")
    assert r.status_code == 404 and "no law named 'nope'" in r.json()["message"]
    r = client.get("/laws/broken")
    assert r.status_code == 409 and "invalid" in r.json()["message"]


def test_predict_with_intervals(client):
    r = client.post("/laws/chin/predict", json={"n_params": [1e8, 1e9], "n_tokens": 1e10})
    assert r.status_code == 200
    out = r.json()
    np.testing.assert_allclose(out["loss"], chinchilla_loss(np.array([1e8, 1e9]), 1e10, TRUE), rtol=1e-12)
    assert all(lo <= v <= hi for lo, v, hi in zip(out["lo"], out["loss"], out["hi"]))
    scalar = client.post("/laws/plain/predict", json={"n_params": 1e9, "n_tokens": 1e10}).json()
    assert isinstance(scalar["loss"], float) and "lo" not in scalar


def test_predict_data_dependent(client):
    r = client.post("/laws/dd/predict", json={"n_params": 1e9, "n_tokens": 1e10, "h": 0.3})
    assert r.status_code == 200 and r.json()["h"] == 0.3
    out = r.json()
    assert out["lo"] <= out["loss"] <= out["hi"] and out["level"] == 0.95
    r = client.post("/laws/dd/predict", json={"n_params": 1e9, "n_tokens": 1e10})
    assert r.status_code == 422 and "give h" in r.json()["message"]


def test_allocate_law_and_by_h(client):
    out = client.post("/laws/chin/allocate", json={"budget_flops": 1e21}).json()
    assert out["n_params"] * out["n_tokens"] * 6 == pytest.approx(1e21)
    assert out["intervals"]["n_params"]["lo"] <= out["n_params"] <= out["intervals"]["n_params"]["hi"]
    by_h = client.post("/allocate", json={"budget_flops": [1e19, 1e21], "h": 0.3}).json()
    assert by_h["law"] == "dd" and len(by_h["n_params"]) == 2
    named = client.post("/allocate", json={"budget_flops": 1e21, "law": "plain"}).json()
    assert named["n_params"] == pytest.approx(out["n_params"])


@pytest.mark.parametrize("path, body, fragment", [
    ("/laws/chin/predict", {"n_params": -1, "n_tokens": 1e10}, "n_params"),
    ("/laws/chin/predict", {"n_params": 1e9}, "n_tokens: Field required"),
    ("/laws/chin/predict", {"n_params": "abc", "n_tokens": 1e10}, "n_params"),
    ("/laws/chin/predict", {"n_params": [1e9, 2e9], "n_tokens": [1, 2, 3]}, "equal lengths"),
    ("/laws/chin/predict", {"n_params": [], "n_tokens": 1e10}, "must not be empty"),
    ("/laws/chin/predict", {"n_params": 1e9, "n_tokens": 1e10, "level": 1.0}, "level"),
    ("/laws/chin/predict", {"n_params": 1e9, "n_tokens": 1e10, "extra": 1}, "extra: Extra inputs"),
    ("/laws/chin/predict", {"n_params": 1e9, "n_tokens": 1e10, "h": 0.3}, "plain Chinchilla law"),
    ("/laws/chin/allocate", {"budget_flops": 0}, "budget_flops"),
    ("/laws/dd/allocate", {"budget_flops": 1e21, "h": 5.0}, "leaves its domain"),
    ("/laws/dd/allocate", {"budget_flops": 1e21, "h": 0.3, "epsilon": 2}, "epsilon"),
    ("/allocate", {"budget_flops": 1e21}, "give h"),
    ("/fit", {"points": []}, "points"),
    ("/fit", {"points": [{"N": 1e8, "loss": 3.0}]}, "needs D (tokens) or C"),
    ("/fit", {"points": [{"N": 1e8, "D": 1e9, "loss": 3.0}] * 3}, "too few points"),
    ("/fit", {"points": [{"N": 1e8, "D": 1e9, "loss": 3.0}], "grid": "x"}, "grid"),
    ("/fit", {"points": [{"N": 1e8, "D": 1e9, "loss": 3.0}] * 1001}, "at most 1000 items"),
    ("/fit", {"points": [{"N": 1e8, "D": 1e9, "loss": 3.0}] * 6, "n_boot": 5000}, "n_boot"),
])
def test_malformed_requests_get_422_with_message(client, path, body, fragment):
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert fragment in r.json()["message"]


def test_non_json_and_nan_bodies(client):
    for raw in (b"{not json", b'{"n_params": NaN, "n_tokens": 1e10}', b"[]", b"null", b'{"n_params": 1e999, "n_tokens": 1}'):
        r = client.post("/laws/chin/predict", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422, (raw, r.status_code, r.text)
        assert r.json()["message"]


def test_body_size_limit(client):
    big = {"n_params": [1e9] * 20000, "n_tokens": 1e10}
    r = client.post("/laws/chin/predict", content=json.dumps(big), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "exceeds the limit" in r.json()["message"]


def test_fit_and_save(client, law_dir):
    rng = np.random.default_rng(1)
    n = np.repeat(np.logspace(7, 10, 6), 6)
    d = np.tile(np.logspace(8, 12, 6), 6)
    loss = chinchilla_loss(n, d, TRUE) * np.exp(rng.normal(0, 0.002, n.size))
    pts = [{"N": float(a), "C": float(6 * a * b), "loss": float(c)} for a, b, c in zip(n, d, loss)]
    r = client.post("/fit", json={"points": pts, "grid": "muennighoff", "name": "posted", "n_boot": 20})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["params"]["alpha"] == pytest.approx(0.35, rel=0.05) and (law_dir / "posted.json").is_file()
    assert "intervals" in out
    assert client.post("/laws/posted/predict", json={"n_params": 1e9, "n_tokens": 1e10}).status_code == 200
    r = client.post("/fit", json={"points": pts, "grid": "muennighoff", "name": "posted"})
    assert r.status_code == 409 and "overwrite" in r.json()["message"]
    r = client.post("/fit", json={"points": pts, "grid": "muennighoff", "name": "../evil"})
    assert r.status_code == 422


def test_law_files_reload(client, law_dir):
    save_law(ChinchillaLaw(params=ChinchillaParams(E=2.0, A=400.0, B=400.0, alpha=0.3, beta=0.3)), law_dir / "new.json")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if client.get("/laws/new").status_code == 200:
            break
        time.sleep(0.2)
    assert client.get("/laws/new").json()["params"]["E"] == 2.0


def test_serve_cli_registers_loopback_default():
    from pygzlaw.cli import build_parser

    args = build_parser().parse_args(["serve", "/tmp"])
    assert args.host == "127.0.0.1"


def test_fuzzed_bodies_never_500(client):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.text(max_size=5),
                        st.floats(allow_nan=False, allow_infinity=False))
    values = st.one_of(scalars, st.lists(scalars, max_size=4))
    keys = st.sampled_from(["n_params", "n_tokens", "h", "epsilon", "level", "budget_flops", "law", "points", "x"])
    bodies = st.dictionaries(keys, values, max_size=5)
    paths = st.sampled_from(["/laws/chin/predict", "/laws/dd/predict", "/laws/chin/allocate", "/laws/dd/allocate",
                             "/allocate", "/fit"])

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(path=paths, body=bodies)
    def check(path, body):
        r = client.post(path, json=body)
        assert r.status_code < 500, (path, body, r.text)
        if r.status_code != 200:
            assert r.json()["message"]

    check()


def test_chunked_body_over_limit_gets_413(client):
    def gen():
        yield b'{"n_params": ['
        for _ in range(20000):
            yield b"1e9, "
        yield b'1e9], "n_tokens": 1e10}'

    r = client.post("/laws/chin/predict", content=gen(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "exceeds the limit" in r.json()["message"]
