"""Study configuration: scales validate, TOML overrides, bad keys are named."""
from __future__ import annotations

import pytest

from pygzlaw.study.config import SCALES, load_config, scale_config


@pytest.mark.parametrize("scale", list(SCALES))
def test_scales_validate_and_have_the_required_shape(scale):
    cfg = scale_config(scale)
    assert len(cfg.grammars) >= 3
    assert len(cfg.models) >= 4 and len(cfg.tokens) >= 4
    assert cfg.n_runs == len(cfg.grammars) * len(cfg.models) * len(cfg.tokens)
    if scale == "paper":
        assert (len(cfg.grammars), len(cfg.models), len(cfg.tokens)) == (6, 6, 6)
        assert cfg.tokens[0] == 100_000 and cfg.tokens[-1] == 100_000_000
        assert cfg.train["lr"] == 5e-5


def test_tiny_grammars_span_h_from_low_to_high():
    from pygzlaw.grammar import random_pcfg
    from pygzlaw.study.run import measure_h

    hs = [measure_h(random_pcfg(g.preset, g.seed), n_docs=200)[0] for g in scale_config("tiny").grammars]
    assert hs == sorted(hs) and hs[-1] - hs[0] > 0.2


def test_toml_overrides_scale(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[study]\nscale = "tiny"\nname = "mine"\nout = "o"\nworkers = 3\n'
                 '[[grammars]]\npreset = "main-1"\nseed = 2\n[[grammars]]\nname = "x"\nnonterminals = 10\n'
                 'terminals = 20\nrhs_max_options = 3\nrhs_max_len = 4\n'
                 '[grid]\ntokens = [1024, 2048]\n[train]\nlr = 0.01\n[analysis]\nn_boot = 0\nlevel = 0.9\n')
    cfg = load_config(p, workers=None, out="o2")
    assert cfg.name == "mine" and cfg.workers == 3 and cfg.out == "o2"
    assert [g.name for g in cfg.grammars] == ["main-1", "x"] and cfg.grammars[0].seed == 2
    assert cfg.grammars[1].spec == {"nonterminals": 10, "terminals": 20, "rhs_max_options": 3, "rhs_max_len": 4}
    assert cfg.tokens == [1024, 2048] and cfg.models == SCALES["tiny"]["models"]
    assert cfg.train["lr"] == 0.01 and cfg.train["batch_docs"] == SCALES["tiny"]["train"]["batch_docs"]
    assert cfg.analysis.n_boot == 0 and cfg.analysis.level == 0.9


BAD = [
    ("[grid]\ntokens = [1024, -5]\n", r"grid\.tokens\[1\]=-5 must be >= 1"),
    ("[grid]\ntokens = [1024, 1024]\n", r"grid\.tokens=.*duplicates"),
    ("[grid]\nmodels = []\n", r"grid\.models=\[\] must be a non-empty array"),
    ("[grid]\nmodels = ['w8', 3]\n", r"grid\.models\[1\]=3 must be a string"),
    ("[grid]\nsizes = [1]\n", r"grid\.sizes is not a grid setting"),
    ("[train]\nlr = 'fast'\n", r"train: .*lr"),
    ("[train]\nmodel = 'w8'\n", r"train\.model is set by the study"),
    ("[train]\nlearning_rate = 0.1\n", r"train\.learning_rate is not a training setting"),
    ("[train]\nbatch_docs = 64\nseq_len = 512\n[grid]\ntokens = [1000, 2000, 4000000]\n",
     r"grid\.tokens: D=1000 gives 0 optimizer steps"),
    ("[[grammars]]\npreset = 'main-1'\nfile = 'g.json'\n", r"grammars\[0\] needs exactly one of preset, file"),
    ("[[grammars]]\npreset = 'main-9'\n", r"grammars\[0\]\.preset='main-9' is not a preset"),
    ("[[grammars]]\nnonterminals = 3\n", r"grammars\[0\]: the spec knobs go together; missing"),
    ("[[grammars]]\npreset = 'main-1'\nseed = -1\n", r"grammars\[0\]\.seed=-1 must be an integer >= 0"),
    ("[[grammars]]\npreset = 'main-1'\n[[grammars]]\npreset = 'main-1'\n", r"grammars\[1\]\.name='main-1' repeats"),
    ("[[grammars]]\nfile = 'nope.json'\n", r"grammars\[0\]\.file='nope.json': no such grammar file"),
    ("[[grammars]]\npreset = 'main-1'\ncolour = 1\n", r"grammars\[0\]\.colour is not a grammar setting"),
    ("[analysis]\nlevel = 1.5\n", r"analysis\.level=1\.5 must be a number in \(0, 1\)"),
    ("[analysis]\ngrid = 'fine'\n", r"analysis\.grid='fine'"),
    ("[analysis]\nboot = 3\n", r"analysis\.boot is not an analysis setting"),
    ("[study]\nworkers = 0\n", r"study\.workers=0 must be an integer >= 1"),
    ("[study]\nscale = 'huge'\n", r"study\.scale='huge' is unknown"),
    ("[study]\nspeed = 1\n", r"study\.speed is not a study setting"),
    ("[extras]\nx = 1\n", r"unknown key 'extras'"),
    ("grammars = 3\n", r"grammars must be an array of tables"),
    ("[grid\n", r"invalid TOML"),
]


@pytest.mark.parametrize("text,pattern", BAD)
def test_bad_config_names_the_key(tmp_path, text, pattern):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ValueError, match=pattern) as info:
        load_config(p)
    assert str(p) in str(info.value)            # the file is named too


def test_bom_and_windows_line_ends_are_read(tmp_path):
    # Windows editors save "UTF-8" with a byte-order mark; tomllib alone fails on it at line 1.
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf[study]\r\nname = \"bom\"\r\n[grid]\r\ntokens = [1024, 2048]\r\n")
    cfg = load_config(p)
    assert cfg.name == "bom" and cfg.tokens == [1024, 2048]


def test_non_utf8_config_names_the_file_line_and_byte(tmp_path):
    p = tmp_path / "latin1.toml"
    p.write_bytes(b'[study]\nname = "caf\xe9"\n')
    with pytest.raises(ValueError, match=r"latin1\.toml line 2 column 12: byte 0xe9 is not valid UTF-8"):
        load_config(p)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no-such.toml"):
        load_config("no-such.toml")


def test_unknown_scale():
    with pytest.raises(ValueError, match="scale='big' is unknown"):
        scale_config("big")


def test_grammar_file_content_joins_the_run_identity(tmp_path):
    from pygzlaw.grammar import random_pcfg, save
    from pygzlaw.study.run import plan_runs

    f = tmp_path / "g.json"
    save(random_pcfg("main-1", 0), str(f))
    p = tmp_path / "s.toml"
    p.write_text(f'[[grammars]]\nfile = "{f}"\n[[grammars]]\nname = "sp"\nnonterminals = 5\nterminals = 9\n'
                 'rhs_max_options = 2\nrhs_max_len = 3\n')
    a = [r["run_id"] for r in plan_runs(load_config(p))]
    k = len(SCALES["tiny"]["models"]) * len(SCALES["tiny"]["tokens"])   # runs per grammar
    assert len(set(a)) == len(a) == 2 * k
    save(random_pcfg("main-1", 1), str(f))                 # same path, other grammar
    b = [r["run_id"] for r in plan_runs(load_config(p))]
    assert a[:k] != b[:k] and all(x not in a[:k] for x in b[:k]) and a[k:] == b[k:]


def test_importing_the_study_and_loading_a_config_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; from pygzlaw.study import load_config, plan_runs; plan_runs(load_config()); "
            "import pygzlaw.study.cli, pygzlaw.study.report, pygzlaw.study.analysis; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
