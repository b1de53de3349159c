"""HTTP service over a directory of fitted scaling laws (FastAPI + uvicorn).

``create_app(law_dir)`` builds the app; ``pygzlaw serve LAW_DIR`` runs it on 127.0.0.1.
FastAPI is imported on first use of ``create_app`` or ``LawStore``, not with this package: the
``pygzlaw`` command line imports ``pygzlaw.serve.cli`` for every verb, and training or fitting
must not need the service's dependencies loaded (or installed, on a GPU image without them).
"""
__all__ = ["create_app", "LawStore"]


def __getattr__(name):
    if name in __all__:
        from pygzlaw.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'pygzlaw.serve' has no attribute {name!r}")
