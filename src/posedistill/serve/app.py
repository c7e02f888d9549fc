"""The FastAPI application behind ``posedistill serve``.

* ``POST /predict``: the image as the request body (``Content-Type: image/jpeg``, ``image/png``, ``image/webp``
  or ``image/bmp``) or as the multipart field ``image``; optional box ``bbox=x,y,w,h``, flip test ``flip=1`` /
  ``flip=0`` (default: the server's ``--flip``) and the box's re-crop on the person's joints ``refine=auto`` /
  ``1`` / ``0`` (default: the server's ``--refine``) as query parameters (or multipart fields). Answers the same
  JSON records as ``posedistill predict`` (``image`` is the upload's file name, or ``"upload"``), with headers
  ``X-Model-Time-Ms`` (the time of :meth:`Predictor.estimate <posedistill.inference.predictor.Predictor.estimate>`
  for the batch the request rode in: the network, and the person search of requests without a box),
  ``X-Batch-Size``, ``X-Flip``, ``X-Refine`` (auto, on or off) and ``X-Recropped`` (people re-cropped on their
  joints), and ``Server-Timing`` (milliseconds of the request's stages: ``upload`` (reading the
  body), ``decode`` (the photo), ``queue`` (waiting for its batch), the batch's ``find`` (the person search),
  ``crop``, ``network`` (the pose network on the crops) and ``heatmaps`` (decoding them), and ``total``: from the
  request's arrival to its answer).
* ``GET /health``: ``{"status": "ok", ...}`` with the model, the queue and counters.
* ``GET /skeleton``: joint names, limbs and sides (for drawing).
* ``GET /``: the web page (drop a photo or use the webcam; the skeleton is drawn on it).

Bad input is a 4xx answer ``{"error": one line}`` and never stops the server: empty body (400), wrong content
type (415), upload over ``max_upload_bytes`` (413, refused from Content-Length before reading, or while
reading), a body not received within ``upload_timeout_s`` (408), not an image / truncated / undecodable / a
header declaring more than ``max_pixels`` (400), a bad, outside or absurdly large box or a bad flip or refine value
(400). A full queue, or
decoded images in flight at ``max_decoded_megapixels``, answers 503 with ``Retry-After: 1``. Any other failure is
a 500 ``{"error": one line}``, for that request only. Every refusal, and a client that disconnects mid-upload,
logs one line (logger ``posedistill.serve``), never a traceback.

Memory follows decoded pixels, not bytes on the wire: a photo is decoded at most ``max_side`` pixels on its long
side (reduced while decoding, :func:`~posedistill.data.images.decode_image_reduced`; the answer is in the
original photo's pixels), and the pixels being decoded, queued or run are counted against
``max_decoded_megapixels``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import anyio
import cv2
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from ..data.images import decode_image_reduced, reduced_decode_plan
from ..errors import PosedistillError
from ..inference.predictor import Predictor
from ..inference.refine import REFINE_CHOICES
from ..inference.result import PoseResult
from ..inference.sources import check_box, parse_bbox
from .batcher import Batcher, ServerBusy

__all__ = ["ServeConfig", "create_app", "IMAGE_TYPES"]

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp")


_log = logging.getLogger("posedistill.serve")


@dataclass
class ServeConfig:
    """Limits and batching of the server (the connection settings are used by :mod:`posedistill.serve.server`)."""

    max_batch: int = 8
    max_wait_ms: float = 5.0
    queue_size: int = 32
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_side: int = 2048  # photos are decoded at most this many pixels on their long side
    max_decoded_megapixels: float = 100.0  # decoded pixels in flight (decoding, queued, in a batch)
    upload_timeout_s: float = 30.0  # the whole body must arrive within this
    header_timeout_s: float = 10.0  # the request line and headers must arrive within this
    keep_alive_s: float = 5.0  # an idle keep-alive connection is closed after this
    max_connections: int = 64  # connections and requests at once; more are answered 503 by uvicorn


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message.splitlines()[0] if message else "bad request"}, status_code=status,
                        headers=headers or None)


def _refuse(request: Request, status: int, message: str, **headers: str) -> JSONResponse:
    """The one-line JSON error, and one line in the log."""
    client = request.client.host if request.client else "?"
    _log.warning("%s %s %s -> %d %s", client, request.method, request.url.path, status,
                 message.splitlines()[0] if message else "")
    return _error(status, message, **headers)


class _PixelBudget:
    """Decoded pixels in flight, counted against a limit (used from the event loop only)."""

    def __init__(self, megapixels: float) -> None:
        self.limit, self.used = int(megapixels * 1e6), 0

    def take(self, pixels: int) -> int:
        if pixels > self.limit:
            raise _Reject(413, f"decoding this image needs {pixels / 1e6:.1f} megapixels, more than the server's "
                               f"{self.limit / 1e6:g} megapixels for decoded images")
        if self.used + pixels > self.limit:
            raise _Reject(503, f"server busy: decoded images in flight hold {self.used / 1e6:.1f} of "
                               f"{self.limit / 1e6:g} megapixels; retry shortly")
        self.used += pixels
        return pixels

    def give(self, pixels: int) -> None:
        self.used -= pixels


async def _read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _Reject(413, f"upload of {int(declared)} bytes is larger than the limit of {limit} bytes")
        except ValueError:
            raise _Reject(400, "malformed Content-Length header") from None
    chunks, size = [], 0
    try:
        with anyio.fail_after(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _Reject(413, f"upload is larger than the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise _Reject(408, f"upload not received within {timeout_s:g} s ({size} bytes arrived)") from None
    return b"".join(chunks)


def _to_decoded(box: list[float], scale: tuple[float, float]) -> list[float]:
    """A box in the original photo's pixels -> in the pixels of the photo as decoded (``scale`` per axis)."""
    (x, y, w, h), (sx, sy) = box, scale
    return [(x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5, w * sx, h * sy]


def _to_original(people: PoseResult, scale: tuple[float, float], box: list[float] | None) -> PoseResult:
    """The people of the decoded photo, in the original photo's pixels (the given ``box`` as it was given)."""
    sx, sy = scale
    if (sx, sy) == (1.0, 1.0):
        return people
    factor = np.array([sx, sy])
    if box is not None:
        boxes = np.tile(np.asarray(box, np.float64), (len(people), 1))
    else:
        boxes = np.concatenate([(people.boxes[:, :2] + 0.5) / factor - 0.5, people.boxes[:, 2:] / factor], axis=1)
    return PoseResult(boxes, (people.keypoints + 0.5) / factor - 0.5, people.scores, people.joints,
                      people.person_scores, people.recropped)


def _server_timing(stages: dict[str, float]) -> str:
    """The ``Server-Timing`` header of ``{name: milliseconds}``."""
    return ", ".join(f"{name};dur={ms:.2f}" for name, ms in stages.items())


_FLIP_VALUES = {"1": True, "true": True, "on": True, "0": False, "false": False, "off": False}
_REFINE_WORDS = {value: word for word, value in REFINE_CHOICES.items()}


def _parse_flip(text: str | None) -> bool | None:
    """The ``flip`` parameter of a request (None: not given)."""
    if text is None or not text.strip():
        return None
    value = _FLIP_VALUES.get(text.strip().lower())
    if value is None:
        raise _Reject(400, f"flip must be 1 or 0, got {text[:20]!r}")
    return value


def _parse_refine(text: str | None) -> bool | str | None:
    """The ``refine`` parameter of a request: ``"auto"``, True or False (None: not given)."""
    if text is None or not text.strip():
        return None
    word = text.strip().lower()
    if word == "auto":
        return "auto"
    value = _FLIP_VALUES.get(word)
    if value is None:
        raise _Reject(400, f"refine must be auto, 1 or 0, got {text[:20]!r}")
    return value


#: the request parameters besides the image (query parameters, or multipart fields)
_PARAMS = ("bbox", "flip", "refine")


async def _image_from_multipart(request: Request, body: bytes) -> tuple[bytes, str, dict[str, str | None]]:
    async def stream() -> AsyncIterator[bytes]:
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=1, max_fields=1 + len(_PARAMS),
                                     max_part_size=len(body) + 1).parse()
    except MultiPartException as exc:
        raise _Reject(400, f"malformed multipart body ({exc.message})") from None
    field = form.get("image")
    if not isinstance(field, UploadFile):
        raise _Reject(400, "multipart body has no file field 'image'")
    data = await field.read()
    params = {key: form.get(key) for key in _PARAMS}
    return data, field.filename or "upload", {
        key: value if isinstance(value, str) and value.strip() else None for key, value in params.items()}


async def _parse_request(request: Request, config: ServeConfig) -> tuple[bytes, str, dict[str, str | None]]:
    """(encoded image, name, {parameter: text or None} of :data:`_PARAMS`) of a /predict request; _Reject on
    anything unusable."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in IMAGE_TYPES and kind != "multipart/form-data":
        raise _Reject(415, f"unsupported Content-Type {kind or '(none)'!r}; send {', '.join(IMAGE_TYPES)} "
                           "or multipart/form-data with a file field 'image'")
    body = await _read_body(request, config.max_upload_bytes, config.upload_timeout_s)
    if not body:
        raise _Reject(400, "empty request body; send an image")
    query = {key: request.query_params.get(key) for key in _PARAMS}
    if kind == "multipart/form-data":
        data, name, form = await _image_from_multipart(request, body)
        return data, name, {key: query[key] or form[key] for key in _PARAMS}
    return body, "upload", query


async def _warm_request_path(config: ServeConfig) -> None:
    """What the first request would otherwise set up: anyio's asyncio backend (imported on first use; the first
    upload's deadline in :func:`_read_body` took 0.1-0.2 s for it) and the worker thread and decoder of the photo."""
    with anyio.fail_after(config.upload_timeout_s):
        await anyio.sleep(0)
    ok, jpeg = cv2.imencode(".jpg", np.full((32, 32, 3), 127, np.uint8))
    if ok:
        await run_in_threadpool(decode_image_reduced, jpeg.tobytes(), "warm-up", max_side=config.max_side,
                                max_pixels=config.max_pixels)


def create_app(predictor: Predictor, *, config: ServeConfig | None = None) -> FastAPI:
    """The app around ``predictor`` (its localiser finds the person of a request without a box; its ``flip`` is
    the requests' default); its batcher thread starts with the app's lifespan and stops with it. The predictor is
    warmed up (:meth:`Predictor.warm_up`) before the first request is taken, so that no user waits for the
    runtimes' first-call set-up."""
    config = config or ServeConfig()
    localizer = predictor.localizer
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        predictor.warm_up()
        await _warm_request_path(config)
        state["batcher"] = Batcher(predictor, max_batch=config.max_batch, max_wait_ms=config.max_wait_ms,
                                   queue_size=config.queue_size)
        try:
            yield
        finally:
            state.pop("batcher").close()

    app = FastAPI(title="posedistill", summary="Single-person 2D pose estimation", lifespan=lifespan)
    page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")
    budget = _PixelBudget(config.max_decoded_megapixels)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:  # 404, 405...: JSON too
        return _refuse(request, exc.status_code, str(exc.detail), **(exc.headers or {}))

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page

    @app.get("/health")
    async def health() -> dict[str, Any]:
        batcher: Batcher = state["batcher"]
        network = predictor.network
        return {"status": "ok", "weights": network.weights.name if network.weights else None,
                "backend": network.backend, "input_size": network.input_size, "joint_set": predictor.joints.name,
                "localisation": localizer.method if localizer is not None else "none", "flip": predictor.flip,
                "refine": _REFINE_WORDS[predictor.refine],
                "person_scorer": localizer is not None and localizer.scorer is not None,
                "person_finder": localizer.finder.weights.name if localizer is not None and localizer.finder else None,
                "queued": batcher.queued(), "queue_size": config.queue_size,
                "max_batch": config.max_batch, "served": batcher.served, "batches": batcher.batches,
                "decoded_megapixels": budget.used / 1e6, "max_decoded_megapixels": config.max_decoded_megapixels}

    @app.get("/skeleton")
    async def skeleton() -> dict[str, Any]:
        js = predictor.joints
        return {"joint_set": js.name, "names": list(js.names), "limbs": [list(limb) for limb in js.limbs],
                "sides": [js.side(j) for j in range(js.num_joints)],
                "limb_sides": [js.limb_side(limb) for limb in js.limbs]}

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        batcher: Batcher = state["batcher"]
        held = 0
        arrived = time.perf_counter()
        try:
            data, name, params = await _parse_request(request, config)
            read = time.perf_counter()
            box = parse_bbox(params["bbox"]) if params["bbox"] is not None else None
            flip, refine = _parse_flip(params["flip"]), _parse_refine(params["refine"])
            held = budget.take(reduced_decode_plan(data, name, max_side=config.max_side,
                                                   max_pixels=config.max_pixels)[1])
            image, scale = await run_in_threadpool(decode_image_reduced, data, name, max_side=config.max_side,
                                                   max_pixels=config.max_pixels)
            decoded = time.perf_counter()
            budget.give(held - image.shape[0] * image.shape[1])  # decoded: only its own pixels stay counted
            held = image.shape[0] * image.shape[1]
            if box is not None:  # checked in the photo's own pixels, run in the decoded photo's
                h, w = image.shape[:2]
                box = check_box(box, round(w / scale[0]), round(h / scale[1]), name)
            future = batcher.submit(image, _to_decoded(box, scale) if box is not None else None, name, flip=flip,
                                    refine=refine)
            result = await asyncio.wrap_future(future)
            records = _to_original(result.people, scale, box).to_records(image=name)
            stages = result.stages_ms
            timing = {"upload": 1e3 * (read - arrived), "decode": 1e3 * (decoded - read), "queue": result.wait_ms,
                      "find": stages["locate"], "crop": stages["crop"], "network": stages["infer"],
                      "heatmaps": stages["decode_heatmaps"], "total": 1e3 * (time.perf_counter() - arrived)}
            return JSONResponse(records, headers={
                "X-Model-Time-Ms": f"{result.model_ms:.2f}", "X-Batch-Size": str(result.batch),
                "X-Flip": str(int(predictor.flip if flip is None else flip)),
                "X-Refine": _REFINE_WORDS[predictor.refine if refine is None else refine],
                "X-Recropped": str(0 if result.people.recropped is None else int(result.people.recropped.sum())),
                "Server-Timing": _server_timing(timing)})
        except _Reject as exc:  # the body may be unread: close the connection after answering
            return _refuse(request, exc.status, str(exc), Connection="close",
                           **({"Retry-After": "1"} if exc.status == 503 else {}))
        except ServerBusy as exc:
            return _refuse(request, 503, str(exc), **{"Retry-After": "1"})
        except PosedistillError as exc:
            return _refuse(request, 400, str(exc))
        except ClientDisconnect:
            return _refuse(request, 400, "client disconnected during the upload")
        except Exception as exc:  # noqa: BLE001 - this request fails alone, with one line
            _log.debug("unexpected failure of a request", exc_info=True)
            text = str(exc).strip()
            return _refuse(request, 500, f"internal error: {type(exc).__name__}: "
                                         f"{text.splitlines()[0] if text else 'no message'}")
        finally:
            budget.give(held)

    return app
