"""A directory given where a file is expected is named as such ("is a directory, not a law
file"), not as a missing file, by every reader that takes a file path."""
import pytest


def _cases(d):
    from pygzlaw.laws.family import read_qqt_csv
    from pygzlaw.laws.io import load_law, read_points
    from pygzlaw.scan import ScanConfig
    from pygzlaw.study.config import load_config
    from pygzlaw.train.data import load_grammar

    return {
        "law": (lambda: load_law(d), FileNotFoundError),
        "points": (lambda: read_points(d), FileNotFoundError),
        "QQT curves": (lambda: read_qqt_csv(d), FileNotFoundError),
        "study config": (lambda: load_config(str(d)), FileNotFoundError),
        "grammar": (lambda: load_grammar(str(d)), ValueError),
        "tokenizer": (lambda: ScanConfig(tokenizer=str(d)), FileNotFoundError),
    }


@pytest.mark.parametrize("what", ["law", "points", "QQT curves", "study config", "grammar", "tokenizer"])
def test_a_directory_is_not_a_missing_file(tmp_path, what):
    call, exc = _cases(tmp_path)[what]
    with pytest.raises(exc, match=f"is a directory, not a {what} file"):
        call()
    call, exc = _cases(tmp_path / "absent.json")[what]
    with pytest.raises(exc, match=f"no such {what} file"):
        call()


def test_study_grammar_file_and_train_cli_name_the_directory(tmp_path, capsys):
    from pygzlaw.cli import main
    from pygzlaw.study.config import load_config

    cfg = tmp_path / "s.toml"
    cfg.write_text(f"[[grammars]]\nfile = '{tmp_path}'\n")
    with pytest.raises(ValueError, match=r"grammars\[0\]\.file=.*is a directory, not a grammar file"):
        load_config(str(cfg))
    assert main(["train", "--model", "w16", "--grammar", str(tmp_path), "--tokens", "1M",
                 "--device", "cpu"]) == 2
    assert "is a directory, not a grammar file" in capsys.readouterr().err
