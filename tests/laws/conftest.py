"""Shared fixtures for the laws tests: synthetic runs from known laws, and the real data in ../shared."""
import numpy as np
import pytest
from lawsdata import EPOCH_CSV, GADRE_DIR, MUENNIGHOFF_CSV, synthetic_runs


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(1234)


@pytest.fixture(scope="session")
def runs():
    return synthetic_runs()


@pytest.fixture(scope="session")
def fitted(runs):
    from pygzlaw.laws.law import ChinchillaLaw

    return ChinchillaLaw.fit(*runs, grid="muennighoff", n_boot=200, seed=7, name="synthetic")


@pytest.fixture(scope="session")
def epoch_data():
    if not EPOCH_CSV.is_file():
        pytest.skip(f"real data absent: {EPOCH_CSV} (the shared folder ../shared/data next to the repo)")
    from pygzlaw.laws.io import read_epoch_chinchilla

    return read_epoch_chinchilla(EPOCH_CSV)


@pytest.fixture(scope="session")
def gadre_rows():
    if not GADRE_DIR.is_dir():
        pytest.skip(f"real data absent: {GADRE_DIR} (the shared folder ../shared/data next to the repo)")
    from pygzlaw.laws.io import read_gadre

    return read_gadre(GADRE_DIR)


@pytest.fixture(scope="session")
def muennighoff_runs():
    """(n_params, n_tokens, unique_tokens, loss) of Muennighoff et al.'s 182 released runs."""
    if not MUENNIGHOFF_CSV.is_file():
        pytest.skip(f"real data absent: {MUENNIGHOFF_CSV} (the shared folder ../shared/data next to the repo)")
    import csv

    with open(MUENNIGHOFF_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    return tuple(np.array([float(r[k]) for r in rows]) for k in ("n_params", "n_tokens", "unique_tokens", "loss"))
