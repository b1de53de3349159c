"""The top-level command line: every stage registers its subcommands."""
import subprocess
import sys

import pytest

from pygzlaw import __version__
from pygzlaw.cli import build_parser, main

COMMANDS = ["generate", "grammar", "score", "scan", "scan-merge", "fit", "predict", "allocate",
            "plot", "serve"]


def test_every_command_is_registered():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(COMMANDS) <= set(sub.choices)


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert f"usage: pygzlaw {command}" in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "generate" in capsys.readouterr().out


def test_module_entry_point_reports_version():
    out = subprocess.run([sys.executable, "-m", "pygzlaw", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"pygzlaw {__version__}"


def test_the_command_line_loads_no_service_or_torch_dependency():
    """Every verb registers at start-up; training and fitting must not need the service's
    FastAPI/pydantic/orjson (absent from some GPU images) nor torch loaded."""
    import subprocess
    import sys

    code = ("import sys; from pygzlaw.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('fastapi', 'pydantic', 'orjson', 'uvicorn', 'torch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
