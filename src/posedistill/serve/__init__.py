"""``posedistill serve``: an HTTP API (``POST /predict``, ``GET /health``) and a web page, on FastAPI + uvicorn."""

from .app import ServeConfig, create_app
from .batcher import Batcher, ServerBusy

__all__ = ["ServeConfig", "create_app", "Batcher", "ServerBusy"]
