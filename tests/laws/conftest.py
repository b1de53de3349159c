"""Shared fixtures for the laws tests: synthetic runs from known laws, and the real data in ../shared."""
from pathlib import Path

import numpy as np
import pytest

from pygzlaw.laws.forms import ChinchillaParams, chinchilla_loss

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
EPOCH_CSV = SHARED_DATA / "chinchilla-epoch2024" / "svg_extracted_data.csv"
GADRE_DIR = SHARED_DATA / "gadre2024" / "exp_data"

# A law in the range of Hoffmann's and Epoch's fits.
TRUE_PARAMS = ChinchillaParams(E=1.8, A=480.0, B=2000.0, alpha=0.35, beta=0.37)
NOISE_SIGMA = 0.003  # multiplicative log-normal noise on loss (0.3%)


def synthetic_runs(params=TRUE_PARAMS, *, sigma=NOISE_SIGMA, seed=0, n_sizes=8, n_tokens_per_size=8):
    """Runs on a grid of N in [1e7, 1e10] and D in [1e8, 1e12], loss * exp(N(0, sigma))."""
    rng = np.random.default_rng(seed)
    n = np.logspace(7, 10, n_sizes)
    d = np.logspace(8, 12, n_tokens_per_size)
    nn, dd = (a.ravel() for a in np.meshgrid(n, d, indexing="ij"))
    loss = chinchilla_loss(nn, dd, params) * np.exp(rng.normal(0.0, sigma, nn.size))
    return nn, dd, loss


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
