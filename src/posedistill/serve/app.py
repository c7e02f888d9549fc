"""The FastAPI application behind ``posedistill serve``.

* ``POST /predict``: the image as the request body (``Content-Type: image/jpeg``, ``image/png``, ``image/webp``
  or ``image/bmp``) or as the multipart field ``image``; optional box ``bbox=x,y,w,h`` as a query parameter (or
  multipart field). Answers the same JSON records as ``posedistill predict`` (``image`` is the upload's file
  name, or ``"upload"``), with headers ``X-Model-Time-Ms`` (the network's time for the batch the request rode
  in) and ``X-Batch-Size``.
* ``GET /health``: ``{"status": "ok", ...}`` with the model, the queue and counters.
* ``GET /skeleton``: joint names, limbs and sides (for drawing).
* ``GET /``: the web page (drop a photo or use the webcam; the skeleton is drawn on it).

Bad input is a 4xx answer ``{"error": one line}`` and never stops the server: empty body (400), wrong content
type (415), upload over ``max_upload_bytes`` (413, refused from Content-Length before reading, or while
reading), not an image / truncated / undecodable / a header declaring more than ``max_pixels`` (400), a bad or
outside box (400). A full queue answers 503 with ``Retry-After: 1``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ..data.images import decode_image_bytes
from ..errors import PosedistillError
from ..inference.predictor import Predictor
from ..inference.sources import parse_bbox
from ..inference.localize import Localizer
from .batcher import Batcher, ServerBusy

__all__ = ["ServeConfig", "create_app", "IMAGE_TYPES"]

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp")


@dataclass
class ServeConfig:
    """Limits and batching of the server."""

    max_batch: int = 8
    max_wait_ms: float = 5.0
    queue_size: int = 32
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message.splitlines()[0] if message else "bad request"}, status_code=status,
                        headers=headers or None)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _Reject(413, f"upload of {int(declared)} bytes is larger than the limit of {limit} bytes")
        except ValueError:
            raise _Reject(400, "malformed Content-Length header") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Reject(413, f"upload is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _image_from_multipart(request: Request, body: bytes) -> tuple[bytes, str, str | None]:
    async def stream() -> AsyncIterator[bytes]:
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=1, max_fields=4,
                                     max_part_size=len(body) + 1).parse()
    except MultiPartException as exc:
        raise _Reject(400, f"malformed multipart body ({exc.message})") from None
    field = form.get("image")
    if not isinstance(field, UploadFile):
        raise _Reject(400, "multipart body has no file field 'image'")
    data = await field.read()
    bbox = form.get("bbox")
    return data, field.filename or "upload", bbox if isinstance(bbox, str) and bbox.strip() else None


async def _parse_request(request: Request, config: ServeConfig) -> tuple[bytes, str, str | None]:
    """(encoded image, name, bbox text) of a /predict request; _Reject on anything unusable."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in IMAGE_TYPES and kind != "multipart/form-data":
        raise _Reject(415, f"unsupported Content-Type {kind or '(none)'!r}; send {', '.join(IMAGE_TYPES)} "
                           "or multipart/form-data with a file field 'image'")
    body = await _read_body(request, config.max_upload_bytes)
    if not body:
        raise _Reject(400, "empty request body; send an image")
    bbox = request.query_params.get("bbox")
    if kind == "multipart/form-data":
        data, name, form_bbox = await _image_from_multipart(request, body)
        return data, name, bbox or form_bbox
    return body, "upload", bbox


def create_app(predictor: Predictor, *, localizer: Localizer | None = None,
               config: ServeConfig | None = None) -> FastAPI:
    """The app; its batcher thread starts with the app's lifespan and stops with it."""
    config = config or ServeConfig()
    localizer = localizer if localizer is not None else Localizer(predictor)
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["batcher"] = Batcher(predictor, localizer, max_batch=config.max_batch,
                                   max_wait_ms=config.max_wait_ms, queue_size=config.queue_size)
        try:
            yield
        finally:
            state.pop("batcher").close()

    app = FastAPI(title="posedistill", summary="Single-person 2D pose estimation", lifespan=lifespan)
    page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page

    @app.get("/health")
    async def health() -> dict[str, Any]:
        batcher: Batcher = state["batcher"]
        return {"status": "ok", "weights": predictor.weights.name, "backend": predictor.backend,
                "input_size": predictor.input_size, "joint_set": predictor.joints.name,
                "localisation": localizer.method,
                "person_scorer": localizer.scorer is not None, "queued": batcher.queued(), "queue_size": config.queue_size,
                "max_batch": config.max_batch, "served": batcher.served, "batches": batcher.batches}

    @app.get("/skeleton")
    async def skeleton() -> dict[str, Any]:
        js = predictor.joints
        return {"joint_set": js.name, "names": list(js.names), "limbs": [list(limb) for limb in js.limbs],
                "sides": [js.side(j) for j in range(js.num_joints)],
                "limb_sides": [js.limb_side(limb) for limb in js.limbs]}

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        batcher: Batcher = state["batcher"]
        try:
            data, name, bbox_text = await _parse_request(request, config)
            box = parse_bbox(bbox_text) if bbox_text is not None else None
            image = await run_in_threadpool(decode_image_bytes, data, name, max_pixels=config.max_pixels)
            future = batcher.submit(image, box, name)
        except _Reject as exc:
            return _error(exc.status, str(exc))
        except ServerBusy as exc:
            return _error(503, str(exc), **{"Retry-After": "1"})
        except PosedistillError as exc:
            return _error(400, str(exc))
        try:
            result = await asyncio.wrap_future(future)
        except PosedistillError as exc:
            return _error(400, str(exc))
        return JSONResponse(result.records, headers={"X-Model-Time-Ms": f"{result.model_ms:.2f}",
                                                     "X-Batch-Size": str(result.batch)})

    return app
