"""Reading movie files and image sequences frame by frame, and writing videos, with clear errors."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_file
from .errors import BAD_RANGE, MEDIA_NOT_FOUND, MEDIA_UNREADABLE, NO_FRAMES, EdnError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".exr", ".webp")
DEFAULT_IMAGE_FPS = 30.0


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    path: Path
    kind: str  # "movie" or "images"
    frame_count: int
    fps: float
    size: tuple[int, int]  # (width, height)
    image_files: tuple[Path, ...] = ()


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def list_images(directory: Path) -> list[Path]:
    files = [p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=_natural_key)


def _cv2():
    import cv2

    return cv2


def probe(path: str | os.PathLike, fps: float | None = None) -> MediaInfo:
    """Open `path` (a movie file or a folder of images) far enough to know its frames, rate and size."""
    path = Path(path).expanduser()
    if not path.exists():
        raise EdnError(MEDIA_NOT_FOUND, f"Media {path} does not exist. Check the path, or re-link the strip's file in Blender.")
    if not os.access(path, os.R_OK):
        raise EdnError(MEDIA_UNREADABLE, f"Media {path} is not readable by this user. Fix its permissions.")
    cv2 = _cv2()
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise EdnError(NO_FRAMES, f"Folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)}). Point at a movie file or a folder of frames.")
        first = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise EdnError(MEDIA_UNREADABLE, f"Image {files[0]} could not be decoded. Re-export the sequence as PNG or JPEG.")
        h, w = first.shape[:2]
        return MediaInfo(path, "images", len(files), float(fps or DEFAULT_IMAGE_FPS), (w, h), tuple(files))
    if not path.is_file():
        raise EdnError(MEDIA_UNREADABLE, f"Media {path} is neither a file nor a folder of images.")
    if path.stat().st_size == 0:
        raise EdnError(NO_FRAMES, f"Movie {path} is empty (0 bytes). Re-export or re-download it.")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise EdnError(MEDIA_UNREADABLE, f"Movie {path} could not be opened: the file is corrupt or not a video. Re-encode it (e.g. to H.264 mp4) and try again.")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        rate = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        ok, frame = cap.read()
        if not ok or frame is None:
            raise EdnError(NO_FRAMES if count == 0 else MEDIA_UNREADABLE, f"Movie {path} has no decodable frames: the file is corrupt or truncated. Re-encode it and try again.")
        h, w = frame.shape[:2]
    finally:
        cap.release()
    if count <= 0:
        raise EdnError(NO_FRAMES, f"Movie {path} reports no frames. Re-encode it and try again.")
    return MediaInfo(path, "movie", count, float(fps or rate or DEFAULT_IMAGE_FPS), (w, h))


def check_range(info: MediaInfo, start: int = 0, end: int | None = None) -> tuple[int, int]:
    """Validate a 0-based [start, end) frame range against the clip; end=None means the last frame."""
    end = info.frame_count if end is None else end
    if start < 0 or end <= start or end > info.frame_count:
        raise EdnError(
            BAD_RANGE,
            f"Frames [{start}, {end}) are outside {info.path.name}, which has frames [0, {info.frame_count}). "
            "Choose a start ≥ 0 and an end after it, at most the frame count.",
        )
    return start, end


def _read_movie(info: MediaInfo, start: int, end: int) -> Iterator[np.ndarray]:
    cv2 = _cv2()
    cap = cv2.VideoCapture(str(info.path))
    try:
        if start:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        for index in range(start, end):
            ok, frame = cap.read()
            if not ok:
                raise EdnError(MEDIA_UNREADABLE, f"Movie {info.path} ended or broke at frame {index} of {info.frame_count}: the file is truncated or corrupt. Re-encode it, or choose an earlier end frame.")
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def _read_images(info: MediaInfo, start: int, end: int) -> Iterator[np.ndarray]:
    cv2 = _cv2()
    for file in info.image_files[start:end]:
        frame = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if frame is None:
            raise EdnError(MEDIA_UNREADABLE, f"Image {file} could not be decoded. Replace or remove it and try again.")
        if (frame.shape[1], frame.shape[0]) != info.size:
            raise EdnError(MEDIA_UNREADABLE, f"Image {file} is {frame.shape[1]}x{frame.shape[0]}, but the sequence is {info.size[0]}x{info.size[1]}. Every frame must have the same size.")
        yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def iter_frames(info: MediaInfo, start: int = 0, end: int | None = None, prefetch: int = 4,
                transform: Callable[[np.ndarray], Any] | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 frames [start, end). With prefetch > 0 a thread decodes ahead, so decoding overlaps
    whatever the caller does with each frame (OpenCV releases the GIL while decoding).
    `transform`, when given, is applied to each frame in that thread and its results are yielded."""
    start, end = check_range(info, start, end)
    reader = _read_movie if info.kind == "movie" else _read_images
    frames = reader(info, start, end)
    if transform is not None:
        frames = _mapped(frames, transform)
    if prefetch <= 0:
        yield from frames
        return
    yield from _prefetched(frames, prefetch)


def _mapped(frames: Iterator[np.ndarray], transform: Callable[[np.ndarray], Any]) -> Iterator[Any]:
    with contextlib.closing(frames):
        for frame in frames:
            yield transform(frame)


_DONE = object()


def _prefetched(frames: Iterator[np.ndarray], depth: int) -> Iterator[np.ndarray]:
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item) -> bool:
        # Never block for good: a consumer that stopped early drains nothing, and would wait on join.
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for frame in frames:
                if not offer(frame):
                    return
            offer(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            offer(exc)
        finally:
            frames.close()

    thread = threading.Thread(target=produce, name="edn-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def content_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a movie's bytes, or of an image folder's file names and bytes."""
    path = Path(path)
    digest = hashlib.sha256()
    files = list_images(path) if path.is_dir() else [path]
    for file in files:
        digest.update(file.name.encode() if path.is_dir() else b"")
        with open(file, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    return digest.hexdigest()


class VideoWriter:
    """An mp4 written under a temporary name and renamed into place by `close()` (MPEG-4 Part 2,
    the codec OpenCV's wheels carry; Blender and every player read it)."""

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]):
        self._ctx = atomic_file(path, suffix=".mp4")
        self._tmp = self._ctx.__enter__()
        cv2 = _cv2()
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), tuple(size))
        if not self._writer.isOpened():
            self._ctx.__exit__(None, None, None)
            raise EdnError(MEDIA_UNREADABLE, f"Cannot write video {path}: OpenCV has no mp4 encoder here.")
        self.size = tuple(size)

    def write(self, rgb: np.ndarray) -> None:
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            raise ValueError(f"frame {rgb.shape[1]}x{rgb.shape[0]} does not match video size {self.size}")
        self._writer.write(_cv2().cvtColor(np.ascontiguousarray(rgb), _cv2().COLOR_RGB2BGR))

    def close(self, keep: bool = True) -> None:
        self._writer.release()
        if keep:
            self._ctx.__exit__(None, None, None)
        else:
            self._ctx.__exit__(RuntimeError, RuntimeError("discarded"), None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(keep=exc_type is None)
