"""Study records say how H was computed (gzip provenance), and so do the laws fitted and
served from them; H measured under another zlib is measured again (issue 11, item 3)."""
from __future__ import annotations

import json
import os


from pygzlaw.provenance import gzip_provenance

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = """
[study]
scale = "tiny"
name = "prov"
out = "{out}"
workers = 1
[[grammars]]
preset = "main-2"
[grid]
models = ["w8", "w16", "w32"]
tokens = [4096, 16384, 65536]
[analysis]
n_boot = 0
h_docs = 100
"""


def test_study_records_provenance_and_remeasures_h_under_another_zlib(tmp_path, monkeypatch):
    from pygzlaw.study import RunStore, load_config, reproduce

    monkeypatch.setenv("PYTHONPATH", HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.syspath_prepend(HERE)
    p = tmp_path / "s.toml"
    p.write_text(CONFIG.format(out=tmp_path / "out"))
    out = tmp_path / "out"
    reproduce(load_config(p), run_fn="study_fns:law_run", progress=False)
    prov = gzip_provenance()
    assert json.loads((out / "analysis.json").read_text())["gzip_provenance"] == prov
    laws = list((out / "laws").glob("*.json")) + list((out / "laws-flagged").glob("*.json"))
    assert laws and all(json.loads(f.read_text())["meta"]["gzip_provenance"] == prov
                        for f in laws)

    lines: list[str] = []
    reproduce(load_config(p), run_fn="study_fns:law_run", log=lines.append, report=False)
    assert not [s for s in lines if s.startswith("grammar main-2: H =")]  # same zlib: kept
    store = RunStore(str(out / "runs.sqlite"))
    try:
        store.set_meta("gzip_provenance", {**prov, "zlib_version": "1.3.1.zlib-ng"})
    finally:
        store.close()
    reproduce(load_config(p), run_fn="study_fns:law_run", log=lines.append, report=False)
    assert [s for s in lines if s.startswith("grammar main-2: H =")]  # another zlib: measured
    store = RunStore(str(out / "runs.sqlite"))
    try:
        assert store.get_meta("gzip_provenance") == prov
    finally:
        store.close()
