import os
import subprocess
import sys
from pathlib import Path

import pytest

from pygzlaw.kernels import HAS_TRITON


@pytest.mark.skipif(not HAS_TRITON, reason="triton not installed")
def test_every_kernel_compiles_for_h100():
    """The interpreter runs the kernels' Python; this compiles them for sm_90 to a cubin."""
    pytest.importorskip("triton.backends.nvidia")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    script = Path(__file__).with_name("kernels_sm90.py")
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
