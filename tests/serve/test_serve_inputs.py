"""Service inputs real users bring (issue 13): non-finite numbers in bodies, offline API docs."""
import json
import re

import pytest
from fastapi.testclient import TestClient

from pygzlaw.laws.forms import ChinchillaParams
from pygzlaw.laws.io import save_law
from pygzlaw.laws.law import ChinchillaLaw
from pygzlaw.serve.app import DOCS_ASSETS_URL, create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    d = tmp_path_factory.mktemp("laws")
    save_law(ChinchillaLaw(params=ChinchillaParams(E=1.69, A=406.4, B=410.7, alpha=0.34,
                                                   beta=0.28)), d / "chin.json")
    with TestClient(create_app(d)) as c:
        yield c


def _post(client, path, raw: str):
    return client.post(path, content=raw.encode(), headers={"content-type": "application/json"})


# Bodies as a client writes them: Python's json.dumps writes NaN and Infinity, and a
# number beyond float64 (1e400) parses as infinity.
@pytest.mark.parametrize("path, raw, field, got", [
    ("/laws/chin/predict", '{"n_params": NaN, "n_tokens": 2e10}', "n_params", "nan"),      # case 09
    ("/laws/chin/predict", '{"n_params": 1e400, "n_tokens": 2e10}', "n_params", "inf"),    # case 09b
    ("/laws/chin/predict", '{"n_params": 1e9, "n_tokens": -Infinity}', "n_tokens", "-inf"),
    ("/laws/chin/predict", '{"n_params": [1e9, NaN], "n_tokens": 2e10}', "n_params[1]", "nan"),
    ("/laws/chin/predict", '{"n_params": 1e9, "n_tokens": 2e10, "h": Infinity}', "h", "inf"),
    ("/laws/chin/predict", '{"n_params": 1e9, "n_tokens": 2e10, "level": NaN}', "level", "nan"),
    ("/laws/chin/allocate", '{"budget_flops": [1e21, Infinity]}', "budget_flops[1]", "inf"),
    ("/allocate", '{"budget_flops": 1e21, "h": NaN}', "h", "nan"),
    ("/fit", '{"points": [{"N": 1e8, "D": 2e9, "loss": NaN}]}', "points[0].loss", "nan"),  # 09c
    ("/fit", '{"points": [{"N": 1e8, "D": 2e9, "loss": 3.0}], "huber_delta": 1e999}',
     "huber_delta", "inf"),
])
def test_non_finite_numbers_get_422_naming_the_field(client, path, raw, field, got):
    r = _post(client, path, raw)
    assert r.status_code == 422, r.text
    body = r.json()  # the answer itself is valid JSON (NaN would not be)
    assert body["message"].startswith(f"{field} must be a finite number, got {got}"), body
    assert "Out of range float" not in r.text
    json.loads(r.text, parse_constant=lambda c: pytest.fail(f"{c} in the answer"))


def test_other_validation_messages_name_field_and_value(client):
    r = _post(client, "/laws/chin/predict", '{"n_params": -1, "n_tokens": 2e10}')
    assert r.status_code == 422
    assert r.json()["message"] == "n_params: Input should be greater than 0, got -1"
    r = _post(client, "/laws/chin/predict", '{"n_params": [1e9, "x"], "n_tokens": 2e10}')
    assert r.json()["message"].startswith("n_params[1]: Input should be a valid number")
    assert "constrained-float" not in r.text.split('"detail"')[0]


@pytest.mark.parametrize("page, assets", [
    ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css"}),
    ("/redoc", {"redoc.standalone.js"}),
])
def test_api_docs_load_their_assets_from_the_server(client, page, assets):
    r = client.get(page)
    assert r.status_code == 200
    html = r.text
    assert not re.search(r"https?://", html), "docs page refers to an outside host"
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html)
    local = {u.rsplit("/", 1)[-1] for u in urls if u.startswith(DOCS_ASSETS_URL + "/")}
    assert assets <= local, urls
    for u in urls:
        a = client.get(u)
        assert a.status_code == 200 and len(a.content) > 1000, u
    assert client.get("/openapi.json").status_code == 200


def test_fit_with_a_name_writes_nothing_unless_the_server_allows_it(tmp_path):
    pts = [{"N": n, "D": d, "loss": 1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28}
           for n in (1e7, 1e8, 1e9) for d in (1e9, 1e10, 1e11)]
    body = {"points": pts, "grid": "muennighoff", "name": "mine"}
    with TestClient(create_app(tmp_path)) as c:
        r = c.post("/fit", json=body)
        assert r.status_code == 403 and "pygzlaw serve --allow-save" in r.json()["message"]
        assert list(tmp_path.iterdir()) == []
        assert c.post("/fit", json={**body, "name": None}).status_code == 200  # fit, not saved
    with TestClient(create_app(tmp_path, allow_fit_save=True)) as c:
        assert c.post("/fit", json=body).status_code == 200
    assert (tmp_path / "mine.json").is_file()


@pytest.mark.parametrize("raw", [r'{"n_params": "\ud83d", "n_tokens": 2e10}',
                                 r'{"n_params": 1e9, "n_tokens": 2e10, "\udc00": 1}',
                                 r'{"n_params": [1e9, "x\ud83d"], "n_tokens": 2e10}'])
def test_lone_surrogates_in_a_body_get_a_readable_422(client, raw):
    r = _post(client, "/laws/chin/predict", raw)
    assert r.status_code == 422
    msg = r.json()["message"]
    assert "codec" not in msg and "\\ud" in msg, msg
