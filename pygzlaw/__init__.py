"""pygzlaw: gzip-predicted, data-dependent scaling laws.

Stages (see ARCHITECTURE.md): ``grammar`` and ``sampler`` generate PCFG data,
``score`` and ``scan`` measure gzip compressibility, ``laws`` fits and allocates,
``serve`` exposes the laws over HTTP. Import the stage you need; this module
stays light so ``import pygzlaw`` does not load scipy, pyarrow or FastAPI.
"""
__version__ = "0.1.0"
