"""HTTP service over a directory of fitted scaling laws (FastAPI + uvicorn).

``create_app(law_dir)`` builds the app; ``pygzlaw serve LAW_DIR`` runs it on 127.0.0.1.
FastAPI is imported only when this package is.
"""
from pygzlaw.serve.app import LawStore, create_app

__all__ = ["create_app", "LawStore"]
