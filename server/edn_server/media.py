"""Reading movie files and image sequences frame by frame, and writing videos, with clear errors."""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import os
import queue
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_file
from .errors import BAD_PARAMS, BAD_RANGE, MEDIA_NOT_FOUND, MEDIA_UNREADABLE, NO_FRAMES, OUTPUT_UNWRITABLE, EdnError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".exr", ".webp")
DEFAULT_IMAGE_FPS = 30.0
# Frame rates a clip may be given: below 0.1 frame timestamps overflow the detector's clock.
MIN_FPS, MAX_FPS = 0.1, 1000.0


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


# -- the one place file names reach OpenCV -------------------------------------------------------
# OpenCV kills the process (a segfault) when a path str holds lone surrogates, which is how Python
# spells a file name that is not valid UTF-8. Images are therefore read and written with Python's
# own file IO and coded in memory; movies are opened through a symlink with a plain name.

def _plain_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


@contextlib.contextmanager
def opencv_path(path: str | os.PathLike) -> Iterator[str]:
    """A name for `path` that OpenCV can take: the path itself, or a symlink to it while the block runs."""
    text = os.fspath(path)
    if _plain_text(text):
        yield text
        return
    suffix = Path(text).suffix if _plain_text(Path(text).suffix) else ""
    folder = tempfile.mkdtemp(prefix="edn-media-")
    try:
        link = os.path.join(folder, f"media{suffix}")
        os.symlink(os.fsencode(os.path.abspath(text)), link)
        yield link
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_image(path: str | os.PathLike) -> np.ndarray | None:
    """An image file as RGB uint8, or None when its bytes are not a decodable image."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise EdnError(MEDIA_UNREADABLE, f"Image {path} could not be read ({exc.strerror}). Check it exists and is readable.") from exc
    cv2 = _cv2()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_image(path: str | os.PathLike, rgb: np.ndarray, png_compression: int | None = None) -> None:
    """Encode RGB (or RGBA, straight alpha) uint8 pixels by `path`'s extension and write them; OUTPUT_UNWRITABLE
    when the disk refuses."""
    cv2 = _cv2()
    options = [cv2.IMWRITE_PNG_COMPRESSION, png_compression] if png_compression is not None else []
    order = cv2.COLOR_RGBA2BGRA if rgb.ndim == 3 and rgb.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, encoded = cv2.imencode(Path(path).suffix or ".png", cv2.cvtColor(np.ascontiguousarray(rgb), order), options)
    if not ok:
        raise EdnError(OUTPUT_UNWRITABLE, f"Could not encode {path} as an image; name it .png or .jpg.")
    try:
        with open(path, "wb") as handle:
            handle.write(encoded.tobytes())
    except OSError as exc:
        raise disk_error(exc, path) from exc


# A write the file system refused: full, over quota, read-only, not permitted, too long a name, a folder in the way.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG,
                         errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR})


def disk_error(exc: OSError, path: str | os.PathLike | None = None) -> EdnError:
    """A write the file system refused (full disk, read-only, permissions) as OUTPUT_UNWRITABLE."""
    where = path if path is not None else (exc.filename2 or exc.filename)  # a rename names its target second
    return EdnError(OUTPUT_UNWRITABLE, f"Could not write {where or 'the output'}: {exc.strerror or exc}. "
                                       "Free disk space, or choose a folder this program may write to.")


@contextlib.contextmanager
def open_video(path: str | os.PathLike) -> Iterator[Any]:
    """A cv2.VideoCapture on `path`, released when the block ends."""
    with opencv_path(path) as name:
        cap = _cv2().VideoCapture(name)
        try:
            yield cap
        finally:
            cap.release()


def check_fps(fps: float | None) -> None:
    """BAD_PARAMS unless `fps` is None or a finite rate in [MIN_FPS, MAX_FPS]."""
    if fps is not None and not (isinstance(fps, int | float) and MIN_FPS <= fps <= MAX_FPS):
        raise EdnError(BAD_PARAMS, f"fps={fps} is not a usable frame rate; give one from {MIN_FPS} to {MAX_FPS:g} frames per second.")


def probe(path: str | os.PathLike, fps: float | None = None) -> MediaInfo:
    """Open `path` (a movie file or a folder of images) far enough to know its frames, rate and size."""
    check_fps(fps)
    path = Path(path).expanduser()
    try:
        found = path.exists()
    except OSError as exc:  # a name too long for the file system, a loop of symlinks
        raise EdnError(MEDIA_NOT_FOUND, f"Media {path} cannot be looked up ({exc.strerror}). Check the path.") from exc
    if not found:
        raise EdnError(MEDIA_NOT_FOUND, f"Media {path} does not exist. Check the path, or re-link the strip's file in Blender.")
    if not os.access(path, os.R_OK):
        raise EdnError(MEDIA_UNREADABLE, f"Media {path} is not readable by this user. Fix its permissions.")
    cv2 = _cv2()
    if path.is_dir():
        try:
            files = list_images(path)
        except OSError as exc:
            raise EdnError(MEDIA_UNREADABLE, f"Folder {path} cannot be listed ({exc.strerror}). Fix its permissions.") from exc
        if not files:
            raise EdnError(NO_FRAMES, f"Folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)}). "
                                      "Point at a movie file or a folder of frames.")
        first = read_image(files[0])
        if first is None:
            raise EdnError(MEDIA_UNREADABLE, f"Image {files[0]} could not be decoded. Re-export the sequence as PNG or JPEG.")
        h, w = first.shape[:2]
        return MediaInfo(path, "images", len(files), float(fps or DEFAULT_IMAGE_FPS), (w, h), tuple(files))
    if not path.is_file():
        raise EdnError(MEDIA_UNREADABLE, f"Media {path} is neither a file nor a folder of images.")
    if path.stat().st_size == 0:
        raise EdnError(NO_FRAMES, f"Movie {path} is empty (0 bytes). Re-export or re-download it.")
    with open_video(path) as cap:
        if not cap.isOpened():
            raise EdnError(MEDIA_UNREADABLE, f"Movie {path} could not be opened: the file is corrupt or not a video. "
                                             "Re-encode it (e.g. to H.264 mp4) and try again.")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        rate = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        ok, frame = cap.read()
        if not ok or frame is None:
            raise EdnError(NO_FRAMES if count == 0 else MEDIA_UNREADABLE, f"Movie {path} has no decodable frames: "
                                                                          "the file is corrupt or truncated. Re-encode it and try again.")
        h, w = frame.shape[:2]
    if count <= 0:
        raise EdnError(NO_FRAMES, f"Movie {path} reports no frames. Re-encode it and try again.")
    if not MIN_FPS <= rate <= MAX_FPS:  # a file that claims no rate, or an absurd one
        rate = DEFAULT_IMAGE_FPS
    return MediaInfo(path, "movie", count, float(fps or rate), (w, h))


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
    with open_video(info.path) as cap:
        if start:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        for index in range(start, end):
            ok, frame = cap.read()
            if not ok:
                raise EdnError(MEDIA_UNREADABLE, f"Movie {info.path} ended or broke at frame {index} of {info.frame_count}: "
                                                 "the file is truncated or corrupt. Re-encode it, or choose an earlier end frame.")
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def _read_images(info: MediaInfo, start: int, end: int) -> Iterator[np.ndarray]:
    for file in info.image_files[start:end]:
        frame = read_image(file)
        if frame is None:
            raise EdnError(MEDIA_UNREADABLE, f"Image {file} could not be decoded. Replace or remove it and try again.")
        if (frame.shape[1], frame.shape[0]) != info.size:
            raise EdnError(MEDIA_UNREADABLE, f"Image {file} is {frame.shape[1]}x{frame.shape[0]}, "
                                             f"but the sequence is {info.size[0]}x{info.size[1]}. Every frame must have the same size.")
        yield frame


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
        digest.update(os.fsencode(file.name) if path.is_dir() else b"")
        with open(file, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def _disk_full(folder: Path) -> bool:
    return hasattr(os, "statvfs") and os.statvfs(folder).f_bavail == 0


class VideoWriter:
    """An mp4 written under a temporary name and renamed into place by `close()` (MPEG-4 Part 2,
    the codec OpenCV's wheels carry; Blender and every player read it)."""

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        self._files = contextlib.ExitStack()
        try:
            self._tmp = self._files.enter_context(atomic_file(path, suffix=".mp4"))
            name = self._files.enter_context(opencv_path(self._tmp))
        except OSError as exc:
            self._files.close()
            raise disk_error(exc, path) from exc
        cv2 = _cv2()
        self._writer = cv2.VideoWriter(name, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), tuple(size))
        if not self._writer.isOpened():
            self._discard()
            raise EdnError(OUTPUT_UNWRITABLE, f"Cannot write video {path}: OpenCV could not open an mp4 encoder on it.")
        self.size = tuple(size)

    def write(self, rgb: np.ndarray) -> None:
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            raise ValueError(f"frame {rgb.shape[1]}x{rgb.shape[0]} does not match video size {self.size}")
        self._writer.write(_cv2().cvtColor(np.ascontiguousarray(rgb), _cv2().COLOR_RGB2BGR))

    def close(self, keep: bool = True) -> None:
        self._writer.release()
        if not keep:
            return self._discard()
        try:
            # OpenCV reports no write errors: a file system left without a free block cut the video short.
            if self._tmp.stat().st_size == 0 or _disk_full(self._tmp.parent):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
            self._files.close()
        except OSError as exc:
            self._discard()
            raise disk_error(exc, self.path) from exc

    def _discard(self) -> None:
        self._files.__exit__(RuntimeError, RuntimeError("discarded"), None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(keep=exc_type is None)
