"""Scaling-law forms: pure vectorised functions on frozen, typed parameters.

Symbols follow the papers (N parameters, D training tokens, C FLOPs, L loss in
nats/token) so readers can check them against the formulas in
``shared/reference/laws.md``. Every function evaluates in log space where an
exponent could overflow, takes float64 arrays (or scalars) and broadcasts.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

__all__ = [
    "fitted_range",
    "ChinchillaParams", "HOFFMANN_PARAMS", "EPOCH_PARAMS", "chinchilla_loss", "chinchilla_log_loss",
    "OvertrainParams", "overtrain_loss", "ErrorParams", "downstream_error",
    "DataConstrainedParams", "MUENNIGHOFF_PARAMS", "effective_tokens", "effective_params",
    "data_constrained_loss", "as_float64", "LOG_BOUNDS", "E_FLOOR", "clip_log_coords",
]

# Bounds on the fit's log coordinates (log A, log B, log E). The fit runs unconstrained in log space,
# so when the runs want E <= 0 (loss still falling linearly at the largest N and D) log E runs off
# towards -inf and exp(log E) underflows to 0.0 (bootstrap ends reached E = 1e-80). E_FLOOR =
# 1e-8 nats/token is far below any loss a language model reaches (~1), so an E held there changes
# every prediction by < 1e-8 relative: the law is E = 0 in all but name, and the fit says so (a
# FitWarning "E driven to its bound"). log A and log B are kept where exp() is a finite, normal
# float64 (|x| <= 700 < log(DBL_MAX) = 709.78; DBL_MIN = exp(-708.4)).
E_FLOOR = 1e-8
LOG_BOUNDS = {"A": (-700.0, 700.0), "B": (-700.0, 700.0), "E": (math.log(E_FLOOR), 700.0)}
_LOG_COL = {"A": 0, "B": 1, "E": 2}     # columns of (log A, log B, log E, alpha, beta)


def clip_log_coords(x):
    """Clip (..., 5) coordinates (log A, log B, log E, alpha, beta) to LOG_BOUNDS.

    Returns:
        (clipped float64 copy, {name: bool (...)} True where that coordinate was clipped).
    """
    x = np.array(x, dtype=np.float64, copy=True)
    hit = {}
    for name, j in _LOG_COL.items():
        lo, hi = LOG_BOUNDS[name]
        col = x[..., j]
        hit[name] = (col < lo) | (col > hi)
        x[..., j] = np.clip(col, lo, hi)
    return x, hit



def fitted_range(n_params, n_tokens) -> dict:
    """{"n_params": [min, max], "n_tokens": [min, max]} of the runs a law is fitted on: what the
    extrapolation warnings of predict and allocate compare queries with (fit_info["range"])."""
    n = as_float64("n_params", n_params).ravel()
    d = as_float64("n_tokens", n_tokens).ravel()
    return {"n_params": [float(n.min()), float(n.max())], "n_tokens": [float(d.min()), float(d.max())]}


def as_float64(name: str, value, *, positive: bool = True) -> np.ndarray:
    """Return ``value`` as a float64 array after checking dtype, finiteness and sign.

    float32 input raises instead of being upcast silently: a float32 N or D
    (e.g. 7e10 parameters) has lost digits the fit would then chase.

    Raises:
        ValueError: float32/float16 input, non-finite values, or (``positive``) values <= 0.
    """
    arr = np.asarray(value)
    if arr.dtype.kind == "f" and arr.dtype != np.float64:
        raise ValueError(f"{name} has dtype {arr.dtype}; pass float64 (float32 loses digits of "
                         f"N, D and C; convert with np.asarray({name}, dtype=np.float64))")
    if arr.dtype.kind not in "fiu":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}") from None
    arr = arr.astype(np.float64, copy=False)
    if arr.size:
        # Quick accept (the service calls this several times per request): NaN propagates into
        # min and max, so these two comparisons reject NaN, inf and (positive) values <= 0.
        lo, hi = arr.min(), arr.max()
        if (lo > 0 if positive else lo > -np.inf) and hi < np.inf:
            return arr
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise ValueError(f"{name}[{i}] = {float(arr.ravel()[i])!r} is not finite; all values must be finite")
    if positive:
        bad = arr <= 0
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            raise ValueError(f"{name}[{i}] = {float(arr.ravel()[i])!r} is not positive; "
                             f"{name} must be > 0 (laws take logarithms)")
    return arr


class _Params:
    """Mixin: dict round trip and field validation for the frozen parameter dataclasses."""

    def to_dict(self) -> dict:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict):
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in d]
        if missing:
            raise ValueError(f"{cls.__name__}: missing field(s) {missing}; expected {names}")
        extra = sorted(set(d) - set(names))
        if extra:
            raise ValueError(f"{cls.__name__}: unknown field(s) {extra}; expected {names}")
        return cls(**{n: float(d[n]) for n in names})

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{type(self).__name__}.{f.name} = {v!r} must be a finite number")
            object.__setattr__(self, f.name, float(v))


# ---------------------------------------------------------------- Chinchilla
@dataclass(frozen=True)
class ChinchillaParams(_Params):
    """L(N, D) = E + A / N**alpha + B / D**beta.  N in parameters, D in tokens, L in nats/token."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def __post_init__(self):
        super().__post_init__()
        for name in ("E", "A", "B"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ChinchillaParams.{name} = {getattr(self, name)!r} must be > 0")

    def to_log(self) -> np.ndarray:
        """The fit's coordinates (a, b, e, alpha, beta) = (log A, log B, log E, alpha, beta)."""
        return np.array([math.log(self.A), math.log(self.B), math.log(self.E), self.alpha, self.beta])

    @classmethod
    def from_log(cls, x) -> "ChinchillaParams":
        """From the fit's coordinates (log A, log B, log E, alpha, beta), clipped to LOG_BOUNDS first so
        exp() neither underflows to 0 (E = exp(-800)) nor overflows; the fit reports a clipped value."""
        a, b, e, alpha, beta = (float(v) for v in clip_log_coords(np.asarray(x, dtype=np.float64).ravel())[0])
        return cls(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=alpha, beta=beta)


# Hoffmann et al. 2022, Approach 3, unrounded values (laws.md).
HOFFMANN_PARAMS = ChinchillaParams(E=1.6934, A=406.40, B=410.72, alpha=0.33917, beta=0.28491)
# Besiroglu et al. 2024 refit of the 245 extracted points (rounded as published).
EPOCH_PARAMS = ChinchillaParams(E=1.82, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)


def chinchilla_log_loss(n_params, n_tokens, p: ChinchillaParams) -> np.ndarray:
    """log L = LSE(log A - alpha log N, log B - beta log D, log E) (Hoffmann et al. 2022, App. D.2).

    Args:
        n_params: parameters N, float64 array broadcastable with n_tokens.
        n_tokens: training tokens D.
        p: the law's parameters.

    Returns:
        float64 array of log loss (log nats/token), broadcast shape of the inputs.
    """
    log_n = np.log(as_float64("n_params", n_params))
    log_d = np.log(as_float64("n_tokens", n_tokens))
    u1 = math.log(p.A) - p.alpha * log_n
    u2 = math.log(p.B) - p.beta * log_d
    return np.logaddexp(np.logaddexp(u1, u2), math.log(p.E))   # broadcasts u1 with u2


def chinchilla_loss(n_params, n_tokens, p: ChinchillaParams) -> np.ndarray:
    """L(N, D) = E + A/N^alpha + B/D^beta, evaluated as exp(LSE(...)) so no power overflows.

    Args:
        n_params: parameters N (count), float64, broadcastable with n_tokens.
        n_tokens: training tokens D.
        p: the law's parameters.

    Returns:
        float64 array of loss (nats/token).
    """
    return np.exp(chinchilla_log_loss(n_params, n_tokens, p))


# ------------------------------------------------------ Gadre et al. 2024
@dataclass(frozen=True)
class OvertrainParams(_Params):
    """L(C, M) = E + (a M^eta + b M^-eta) C^-eta (Gadre et al. 2024, Eq. 4); C in FLOPs, M = D/N."""

    E: float
    a: float
    b: float
    eta: float

    def to_chinchilla(self) -> ChinchillaParams:
        """The same law as Chinchilla in (N, D), using C = 6ND and M = D/N.

        With N = sqrt(C / 6M) and D = sqrt(C M / 6): M^eta C^-eta = 6^-eta N^-2eta and
        M^-eta C^-eta = 6^-eta D^-2eta, so A = a 6^-eta, B = b 6^-eta, alpha = beta = 2 eta.
        """
        s = 6.0 ** (-self.eta)
        return ChinchillaParams(E=self.E, A=self.a * s, B=self.b * s, alpha=2 * self.eta, beta=2 * self.eta)


def overtrain_loss(budget_flops, token_multiplier, p: OvertrainParams) -> np.ndarray:
    """L(C, M) = E + (a M^eta + b M^-eta) C^-eta (Gadre et al. 2024, Sec. 2).

    Args:
        budget_flops: training compute C = 6 N D (FLOPs), float64 array.
        token_multiplier: M = D / N (tokens per parameter), broadcastable with budget_flops.
        p: the law's parameters.

    Returns:
        float64 array of loss (nats/token).
    """
    c = as_float64("budget_flops", budget_flops)
    m = as_float64("token_multiplier", token_multiplier)
    return p.E + (p.a * m ** p.eta + p.b * m ** (-p.eta)) * c ** (-p.eta)


@dataclass(frozen=True)
class ErrorParams(_Params):
    """Err(L) = epsilon - k exp(-gamma L) (Gadre et al. 2024, Eq. 5); Err in [0, 1]."""

    epsilon: float
    k: float
    gamma: float


def downstream_error(loss, p: ErrorParams) -> np.ndarray:
    """Average top-1 downstream error from loss: Err(L) = epsilon - k exp(-gamma L).

    Args:
        loss: loss in nats/token, float64 array.
        p: the law's parameters.

    Returns:
        float64 array of average error (fraction in [0, 1] when the law is sane).
    """
    return p.epsilon - p.k * np.exp(-p.gamma * as_float64("loss", loss))


# -------------------------------------------------- Muennighoff et al. 2023
@dataclass(frozen=True)
class DataConstrainedParams(_Params):
    """Chinchilla's five constants plus the repetition decay constants R_D*, R_N* (Muennighoff et al. 2023).

    L = E + A / N'^alpha + B / D'^beta with effective params N' and effective tokens D'.
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    rd_star: float
    rn_star: float

    @property
    def base(self) -> ChinchillaParams:
        return ChinchillaParams(E=self.E, A=self.A, B=self.B, alpha=self.alpha, beta=self.beta)


MUENNIGHOFF_PARAMS = DataConstrainedParams(E=1.869, A=520.8, B=1487.7, alpha=0.353, beta=0.353,
                                           rd_star=15.388, rn_star=5.310)


def effective_tokens(n_tokens, unique_tokens, rd_star: float) -> np.ndarray:
    """D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)), R_D = D / U_D - 1 (Muennighoff et al. 2023, Eq. 5).

    D <= U_D (no repetition) gives D' = D. D' saturates at U_D (1 + R_D*).

    Args:
        n_tokens: tokens seen D, float64 array.
        unique_tokens: unique tokens U_D available, broadcastable.
        rd_star: decay constant R_D* (repetitions).

    Returns:
        float64 array of effective tokens D'.
    """
    d = as_float64("n_tokens", n_tokens)
    u = as_float64("unique_tokens", unique_tokens)
    rep = np.maximum(d / u - 1.0, 0.0)
    return np.where(d <= u, d, u + u * rd_star * -np.expm1(-rep / rd_star))


def effective_params(n_params, unique_tokens, p: DataConstrainedParams) -> np.ndarray:
    """N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)), U_N = min(N, N_opt(U_D)), R_N = N / U_N - 1.

    N_opt(U_D) is the parameter count for which U_D is the compute-optimal token count under the
    base Chinchilla law: D_opt(C) = G^-1 (C/6)^b solved for C, then N_opt = G (C/6)^a.

    Args:
        n_params: parameters N, float64 array.
        unique_tokens: unique tokens U_D, broadcastable.
        p: the law's parameters.

    Returns:
        float64 array of effective parameters N'.
    """
    n = as_float64("n_params", n_params)
    u = as_float64("unique_tokens", unique_tokens)
    alpha, beta = p.alpha, p.beta
    g = (alpha * p.A / (beta * p.B)) ** (1.0 / (alpha + beta))
    a_exp, b_exp = beta / (alpha + beta), alpha / (alpha + beta)
    c_over_6 = (g * u) ** (1.0 / b_exp)
    n_opt = g * c_over_6 ** a_exp
    u_n = np.minimum(n, n_opt)
    rep = n / u_n - 1.0
    return u_n + u_n * p.rn_star * -np.expm1(-rep / p.rn_star)


def data_constrained_loss(n_params, n_tokens, unique_tokens, p: DataConstrainedParams) -> np.ndarray:
    """L = E + A / N'^alpha + B / D'^beta with N', D' from effective_params / effective_tokens.

    Args:
        n_params: parameters N, float64 array.
        n_tokens: tokens seen D (including repeats).
        unique_tokens: unique tokens U_D in the data.
        p: the law's parameters.

    Returns:
        float64 array of loss (nats/token).
    """
    n_eff = effective_params(n_params, unique_tokens, p)
    d_eff = effective_tokens(n_tokens, unique_tokens, p.rd_star)
    return chinchilla_loss(n_eff, d_eff, p.base)
