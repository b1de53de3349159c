"""One BLAS thread around scipy's small solvers.

scipy's L-BFGS-B and least-squares call BLAS/LAPACK on vectors of 2-20 numbers. With OpenBLAS's
worker threads on (its default), each call wakes and then spins the workers: on this 2-core
machine under load, 10 L-BFGS-B solves of the 2-D Rosenbrock function took 2.5 s of CPU against
0.03 s with one thread (measured with scipy 1.17.1, OpenBLAS 0.3.31), and the data-constrained fit
on Muennighoff's 182 runs spent 40 of its 45 s inside L-BFGS-B's own iterations.
"""
from __future__ import annotations

from contextlib import contextmanager

__all__ = ["one_blas_thread"]


@contextmanager
def one_blas_thread():
    """Limit BLAS libraries loaded in this process to one thread inside the block (threadpoolctl)."""
    import scipy.linalg  # noqa: F401  (load scipy's BLAS first: limits apply to libraries loaded now)
    import scipy.optimize  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield
