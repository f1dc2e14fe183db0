"""The do-nothing predictions evaluation scores beside a model, at the scoring size:

- median: the per-pixel median of the training frames (up to MEDIAN_FRAMES, spread evenly), used
  as every prediction: a still of the stage with a blurred person.
- nearest: for each evaluated frame, the training frame closest to it in pixels (squared
  distance of the frames shrunk to SEARCH_HEIGHT px high): what copying the best-matching frame
  of the training clip scores, the figure a model must beat on the person.

The training frames are decoded from the model's own target clip (model.json's `target`: video and
range, the held-out tail excluded) at the scoring size, so every model trained on the same frames
gets the same baselines whatever its resolution or mode. When that clip is gone, a full-frame
model's dataset cache stands in (at the model's resolution, then resized); the median then falls
back to the evaluated clip range itself, which makes it optimistic (its source says so).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..names import MEDIAN_STAGE, TRAINING_FRAMES_STAGE
from ..person.plate import PERSON
from ..progress import Progress, check_cancelled

if TYPE_CHECKING:
    from .model_io import TrainedModel

MEDIAN_FRAMES = 64
SEARCH_HEIGHT = 64


def training_clip_frames(trained: TrainedModel, resize: Callable[[np.ndarray], np.ndarray], progress: Progress,
                         cancelled, every_frame: bool = True) -> tuple[np.ndarray, str] | None:
    """The model's training frames decoded from its target clip through `resize`, and their source,
    or None when model.json names no clip or the clip is gone or changed length. Without
    `every_frame` only the median's frames (spread evenly) are kept."""
    from .. import media as media_io
    from ..errors import EdnError

    target = trained.info.get("target") if isinstance(trained.info, dict) else None
    if not isinstance(target, dict) or not target.get("video"):
        return None
    try:
        info = media_io.probe(target["video"])
        start, end = media_io.check_range(info, int(target.get("start") or 0), target.get("end"))
    except (EdnError, TypeError, ValueError):
        return None
    dataset = trained.info.get("dataset") or {}
    count = int(dataset.get("train_frames") or (end - start)) if isinstance(dataset, dict) else end - start
    end = min(end, start + max(1, count))
    wanted = None if every_frame else _spread(end - start)
    frames = _decode(info, start, end, resize, progress, cancelled, TRAINING_FRAMES_STAGE, wanted)
    return frames, f"training frames [{start}, {end}) of {info.path}"


def training_frames(trained: TrainedModel) -> tuple[np.ndarray, Path] | None:
    """The model's training frames at its resolution (a memory map of its dataset cache, held-out
    tail excluded) and their folder, or None when the cache is gone or at another resolution."""
    if trained.mode == PERSON:
        return None  # its cache holds person windows, not the frames a baseline must be compared as
    dataset = trained.info.get("dataset") if isinstance(trained.info, dict) else None
    folder = Path(dataset["folder"]) if isinstance(dataset, dict) and dataset.get("folder") else None
    if folder is None or not (folder / "frames.npy").is_file():
        return None
    frames = np.load(folder / "frames.npy", mmap_mode="r")
    count = min(int(dataset.get("train_frames") or len(frames)), len(frames))
    if frames.ndim != 4 or frames.shape[1:3] != (trained.resolution[1], trained.resolution[0]) or count < 1:
        return None
    return frames[:count], folder


def _spread(count: int) -> np.ndarray:
    """Up to MEDIAN_FRAMES indices spread evenly over [0, count)."""
    return np.unique(np.linspace(0, count - 1, min(MEDIAN_FRAMES, count)).round().astype(int))


def median_baseline(trained: TrainedModel, clip: tuple[np.ndarray, str] | None, info, start: int, end: int,
                    resize: Callable[[np.ndarray], np.ndarray], progress: Progress, cancelled) -> tuple[np.ndarray, str]:
    """The median frame through `resize` and where its frames came from: the decoded training
    frames `clip`, else the dataset cache, else the evaluated range."""
    if clip is not None:
        frames, source = clip
        return _median(frames), source
    found = training_frames(trained)
    if found is not None:
        frames, folder = found
        progress(len(frames), len(frames), MEDIAN_STAGE)
        return resize(_median(frames)), f"training frames ({folder})"
    frames = _decode(info, start, end, resize, progress, cancelled, MEDIAN_STAGE, _spread(end - start))
    return _median(frames), f"evaluated clip frames [{start}, {end})"


def _median(frames: np.ndarray) -> np.ndarray:
    """Per-pixel median of up to MEDIAN_FRAMES of `frames`, spread evenly."""
    return np.median(frames[_spread(len(frames))], axis=0).round().astype(np.uint8)


def _decode(info, start: int, end: int, resize: Callable[[np.ndarray], np.ndarray], progress: Progress, cancelled,
            stage: str, wanted: np.ndarray | None = None) -> np.ndarray:
    """Frames [start, end) of a clip through `resize`: all of them, or those at the `wanted`
    offsets from `start` (the rest are decoded but not kept)."""
    from .. import media as media_io

    keep = None if wanted is None else set(wanted.tolist())
    kept = []
    with contextlib.closing(media_io.iter_frames(info, start, end)) as frames:
        for i, frame in enumerate(frames):
            check_cancelled(cancelled)
            if keep is None or i in keep:
                kept.append(resize(frame))
            progress(i + 1, end - start, stage)
    return np.stack(kept)


class NearestFrame:
    """The training frame closest in pixels to a frame at the model's resolution."""

    def __init__(self, frames: np.ndarray, source: str):
        import cv2

        self.frames, self.source = frames, source
        height, width = frames.shape[1:3]
        self._size = (max(1, round(width * SEARCH_HEIGHT / height)), min(SEARCH_HEIGHT, height))
        self._small = np.stack([self._shrink(frame, cv2) for frame in frames]).reshape(len(frames), -1)

    def _shrink(self, frame: np.ndarray, cv2) -> np.ndarray:
        return cv2.resize(np.asarray(frame), self._size, interpolation=cv2.INTER_AREA).astype(np.float32)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        query = self._shrink(frame, cv2).reshape(-1)
        index = int(np.argmin(((self._small - query) ** 2).sum(axis=1)))
        return np.asarray(self.frames[index])
