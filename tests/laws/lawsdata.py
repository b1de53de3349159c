"""Test helpers for tests/laws (unique module name: no clash with other folders' conftest.py)."""
from pathlib import Path

import numpy as np

from pygzlaw.laws.forms import ChinchillaParams, chinchilla_loss

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
EPOCH_CSV = SHARED_DATA / "chinchilla-epoch2024" / "svg_extracted_data.csv"
GADRE_DIR = SHARED_DATA / "gadre2024" / "exp_data"
MUENNIGHOFF_CSV = SHARED_DATA / "muennighoff2023" / "runs.csv"

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
