"""Writing generated frames (numbered PNGs, and optionally an mp4) in a background thread, so PNG
and video encoding (OpenCV releases the GIL) overlap the generation of the next frames. The
queue is short, so memory stays flat however long the clip."""
from __future__ import annotations

import queue
import threading
from pathlib import Path

import numpy as np

from ..atomic import atomic_file
from ..errors import OUTPUT_UNWRITABLE, EdnError

_DONE = object()


def write_png(path: Path, rgb: np.ndarray) -> None:
    """An RGB (or RGBA, straight alpha) frame as PNG, atomically (fast compression: these are intermediate files)."""
    from ..media import write_image

    problem = f"Could not write {path}: check that the output folder is writable, the disk not full and no folder has that name"
    try:
        with atomic_file(path, suffix=".png") as tmp:
            write_image(tmp, rgb, png_compression=1)
    except OSError as exc:
        raise EdnError(OUTPUT_UNWRITABLE, f"{problem} ({exc.strerror or exc}).") from exc


class FrameWriter:
    """`put(path, rgb)` queues a frame; `close(keep)` waits for the queue to drain (keep) or drops
    what is still queued (not keep), and keeps or discards the video. An error in the writer
    thread is raised by the next put() or by close(). `written` lists the PNGs written so far."""

    def __init__(self, video_path: Path | None, fps: float, size: tuple[int, int], depth: int = 4,
                 written: list[Path] | None = None):
        from ..media import VideoWriter

        self.written: list[Path] = written if written is not None else []
        self._discard = False
        self._video = VideoWriter(video_path, fps, size) if video_path is not None else None
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="edn-frame-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not _DONE:
            if self._error is not None or self._discard:
                continue  # keep draining so put() never blocks on a dead writer
            try:
                path, rgb = item
                write_png(path, rgb)
                self.written.append(path)
                if self._video is not None:
                    self._video.write(rgb)
            except BaseException as exc:  # handed to the generating thread
                self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, path: Path, rgb: np.ndarray) -> None:
        self._raise_error()
        self._queue.put((path, rgb))

    def close(self, keep: bool = True) -> None:
        self._discard = not keep
        self._queue.put(_DONE)
        self._thread.join()
        if self._video is not None:
            self._video.close(keep=keep and self._error is None)
        if keep:
            self._raise_error()

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(keep=exc_type is None)
