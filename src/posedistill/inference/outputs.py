"""Where ``predict`` writes: one JSON record per image (or video frame) and person, and the drawings.

Drawing and encoding run in a writer thread, in order (:class:`DrawingWriter`), into a hidden staging folder
inside ``draw_dir``; :meth:`Outputs.finish` writes the JSON atomically and moves the drawings into place only
when the whole run has succeeded, and :meth:`Outputs.discard` removes the staging folder whatever happened, so a
failed run leaves no partial output. The staging folder is ``flock``-ed while its run lives, so the next run into
``draw_dir`` removes the folders of runs that were killed.
"""

from __future__ import annotations

import fcntl
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import DataError
from ..io import atomic_write_json
from .result import PoseResult
from .sources import Source
from .timing import Clock

__all__ = ["Outputs", "DrawingWriter", "VideoDrawing", "draw_name", "write_image"]


def draw_name(src: Source, used: set[str]) -> str:
    """A file name for the drawing of ``src`` that no earlier drawing of this run used."""
    name = src.path.name if src.kind == "image" else src.path.stem + ".mp4"
    stem, suffix = os.path.splitext(name)
    candidate, i = name, 1
    while candidate in used:
        candidate, i = f"{stem}_{i}{suffix}", i + 1
    used.add(candidate)
    return candidate


def write_image(path: Path, image: np.ndarray) -> None:
    """Encode ``image`` by the suffix of ``path`` (PNG without one) and write it (into the staging folder)."""
    ok, buf = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise DataError(f"{path}: cannot encode drawn image")
    path.write_bytes(buf.tobytes())


class VideoDrawing:
    """The drawn frames of one video, written to an mp4 opened at the first frame (with its size)."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self._writer: cv2.VideoWriter | None = None

    def __call__(self, image: np.ndarray) -> None:
        if self._writer is None:
            h, w = image.shape[:2]
            writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not writer.isOpened():
                raise DataError(f"{self.path}: cannot write annotated video")
            self._writer = writer
        self._writer.write(image)

    def release(self) -> None:
        if self._writer is not None:
            self._writer.release()


class DrawingWriter:
    """A thread that runs drawing/encoding jobs in order; the first failure is raised by :meth:`close`."""

    def __init__(self, clock: Clock, maxsize: int) -> None:
        self.clock = clock
        self.jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="posedistill-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            if self.error is None:
                try:
                    with self.clock("write"):
                        job()
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread by close()
                    self.error = exc

    def put(self, job: Callable[[], None]) -> None:
        if self.error is not None:
            raise self.error
        self.jobs.put(job)

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


class Outputs:
    """The records of one ``predict_paths`` call and, with ``draw_dir``, its drawings (see the module docstring)."""

    def __init__(self, *, output: str | os.PathLike | None, draw_dir: str | os.PathLike | None, clock: Clock,
                 maxsize: int) -> None:
        self.output = output
        self.draw_dir = Path(draw_dir) if draw_dir is not None else None
        self.records: list[dict[str, Any]] = []
        self.staging: Path | None = None
        self._staging_lock = -1
        if self.draw_dir is not None:
            self.staging, self._staging_lock = _staging_folder(self.draw_dir)
        self.writer = DrawingWriter(clock, maxsize)
        self._used: set[str] = set()

    def image_drawing(self, src: Source) -> Callable[[np.ndarray], None] | None:
        """Where the drawing of an image goes (None without ``draw_dir``)."""
        if self.staging is None:
            return None
        path = self.staging / draw_name(src, self._used)
        return lambda image: write_image(path, image)

    def video_drawing(self, src: Source, fps: float) -> VideoDrawing | None:
        """The drawing of a video (None without ``draw_dir``); hand it to :meth:`end_video` after the last frame."""
        return VideoDrawing(self.staging / draw_name(src, self._used), fps) if self.staging is not None else None

    def end_video(self, drawing: VideoDrawing) -> None:
        """Close a video's drawing once its queued frames are written."""
        self.writer.put(drawing.release)

    def add(self, src: Source, index: int, frame: np.ndarray, people: PoseResult,
            draw: Callable[[np.ndarray], None] | None) -> None:
        """The records of one image or video frame (``index``) of ``src``, and its drawing queued for the writer
        thread."""
        video = src.kind == "video"
        self.records += people.to_records(image=str(src.path), **({"frame": index} if video else {}))
        if draw is not None:
            self.writer.put(lambda: draw(people.draw(frame)))

    def close_writer(self) -> None:
        """Wait for the queued drawings; raises the first drawing error."""
        self.writer.close()

    def finish(self) -> None:
        """The run succeeded: write the JSON (atomically) and move the drawings into ``draw_dir``."""
        if self.output is not None:
            atomic_write_json(self.output, self.records)
        if self.staging is not None:
            for f in sorted(self.staging.iterdir()):
                os.replace(f, self.draw_dir / f.name)

    def discard(self) -> None:
        """Remove the staging folder (empty after :meth:`finish`; what a failed run drew otherwise) and release
        its lock."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            os.close(self._staging_lock)
            self.staging = None


_STAGING = ".posedistill-draw-"


def _staging_folder(draw_dir: Path) -> tuple[Path, int]:
    """A new hidden folder in ``draw_dir`` for this run's drawings, and the descriptor that holds its lock
    (``flock``, released by the kernel however the run ends). Staging folders of earlier runs whose lock nobody
    holds (killed runs) are removed first. The folder is locked under another name, then renamed, so a folder of
    the staging name is never seen unlocked while its run lives."""
    draw_dir.mkdir(parents=True, exist_ok=True)
    for old in draw_dir.glob(_STAGING + "*"):
        _remove_if_stale(old)
    fresh = Path(tempfile.mkdtemp(prefix=".posedistill-new-", dir=draw_dir))
    fd = os.open(fresh, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    staging = draw_dir / (_STAGING + fresh.name.rsplit("-", 1)[-1])
    os.rename(fresh, staging)
    return staging, fd


def _remove_if_stale(folder: Path) -> None:
    """Remove a staging folder whose run is gone (its lock is free); leave a live run's (and symlinks) alone."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # a live run holds it
    else:
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        os.close(fd)

