"""A clip's poses and the npz file format every pose command reads and writes.

Keys of the npz: keypoints, detected, fps, size (required); interpolated, frame_start (optional);
masks (optional, target extraction only): (frames, h, w) uint8 person masks 0..255 of the tracked
person at a reduced resolution (long side <= MASK_LONG_SIDE, the frame's aspect), zeros where nobody
was detected. Files without the optional keys (older ones included) load with their defaults.
"""
from __future__ import annotations

import dataclasses
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_file
from ..errors import BAD_POSE_FILE, EdnError
from .landmarks import NUM_LANDMARKS

REQUIRED_KEYS = ("keypoints", "detected", "fps", "size")
# The largest frame side poses may refer to: label images are allocated at that size (3 bytes a pixel).
MAX_FRAME_SIDE = 8192


def frame_size(value, what: str = "size") -> tuple[int, int]:
    """(width, height) from any two-number sequence, or ValueError unless both lie in [1, MAX_FRAME_SIDE]."""
    values = np.asarray(value).reshape(-1) if not isinstance(value, list | tuple) else value
    if len(values) != 2:
        raise ValueError(f"{what} must be two numbers (width, height), not {value!r}")
    try:
        width, height = (float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be two numbers (width, height), not {value!r}") from None
    if not all(v.is_integer() and 1 <= v <= MAX_FRAME_SIDE for v in (width, height)):
        raise ValueError(f"{what} {value!r} must be two whole numbers of pixels from 1 to {MAX_FRAME_SIDE}")
    return int(width), int(height)


MASK_LONG_SIDE = 256


def mask_size(frame_size: tuple[int, int], long_side: int = MASK_LONG_SIDE) -> tuple[int, int]:
    """(w, h) of the stored masks of a `frame_size` (w, h) frame: the long side at most `long_side`."""
    width, height = frame_size
    scale = min(1.0, long_side / max(width, height))
    return (max(1, round(width * scale)), max(1, round(height * scale)))


@dataclasses.dataclass
class PoseSequence:
    """Per-frame keypoints of one person.

    keypoints: (frames, 33, 4) float32 of [x, y, z, visibility]; x and y in pixels of a frame of
        `size`, z in MediaPipe's relative depth units, visibility in 0..1.
    detected: (frames,) bool, False where the detector found nobody (keypoints there are
        interpolated when `interpolated` is set, else zeros).
    fps: frames per second of the source.
    size: (width, height) of the frame the pixels refer to.
    interpolated: (frames,) bool, frames whose keypoints were filled in from neighbours.
    frame_start: index of the first frame in the source clip (0-based).
    masks: (frames, h, w) uint8 person masks (0..255) at a reduced resolution, or None.
    """

    keypoints: np.ndarray
    detected: np.ndarray
    fps: float
    size: tuple[int, int]
    interpolated: np.ndarray | None = None
    frame_start: int = 0
    masks: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        self.detected = np.asarray(self.detected, dtype=bool)
        if self.interpolated is None:
            self.interpolated = np.zeros(len(self.detected), dtype=bool)
        self.interpolated = np.asarray(self.interpolated, dtype=bool)
        self.size = frame_size(self.size)
        self.fps = float(self.fps)
        if not 0 < self.fps < float("inf"):
            raise ValueError(f"fps {self.fps} must be a positive, finite frame rate")
        frames = len(self.detected)
        if self.keypoints.shape != (frames, NUM_LANDMARKS, 4) or self.interpolated.shape != (frames,):
            raise ValueError(
                f"keypoints {self.keypoints.shape}, detected {self.detected.shape} and interpolated "
                f"{self.interpolated.shape} do not describe the same {frames} frames of {NUM_LANDMARKS} landmarks"
            )
        if self.masks is not None:
            self.masks = np.asarray(self.masks, dtype=np.uint8)
            if self.masks.ndim != 3 or len(self.masks) != frames:
                raise ValueError(f"masks {self.masks.shape} do not describe the same {frames} frames")

    def __len__(self) -> int:
        return len(self.detected)

    @property
    def usable(self) -> np.ndarray:
        """Frames with keypoints: detected, or filled in from detected neighbours."""
        return self.detected | self.interpolated

    def replace(self, **changes) -> PoseSequence:
        return dataclasses.replace(self, **changes)

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically: a reader never finds a half-written file under `path`."""
        path = Path(path)
        with atomic_file(path, suffix=".npz") as tmp:
            np.savez_compressed(
                tmp,
                keypoints=self.keypoints,
                detected=self.detected,
                fps=np.float64(self.fps),
                size=np.asarray(self.size, dtype=np.int32),
                interpolated=self.interpolated,
                frame_start=np.int64(self.frame_start),
                **({"masks": self.masks} if self.masks is not None else {}),
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> PoseSequence:
        path = Path(path)
        if not path.is_file():
            raise EdnError(BAD_POSE_FILE, f"Pose file {path} does not exist. Create it with `edn pose extract VIDEO -o {path.name}`.")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in REQUIRED_KEYS if k not in data]
                if missing:
                    raise EdnError(BAD_POSE_FILE, f"{path} is not an edn pose file: it lacks {', '.join(missing)}. "
                                                  "Create it with `edn pose extract`.")
                return cls(
                    keypoints=data["keypoints"],
                    detected=data["detected"],
                    fps=_scalar(data["fps"], "fps"),
                    size=data["size"],
                    interpolated=data["interpolated"] if "interpolated" in data else None,
                    frame_start=_frame_index(data["frame_start"]) if "frame_start" in data else 0,
                    masks=data["masks"] if "masks" in data else None,
                )
        except EdnError:
            raise
        except (OSError, ValueError, TypeError, OverflowError, zipfile.BadZipFile, KeyError, EOFError) as exc:
            raise EdnError(BAD_POSE_FILE, f"{path} could not be read as a pose file ({exc}). "
                                          "Extract the poses again with `edn pose extract`.") from exc


MAX_FRAME_START = 10**9  # a frame index in any clip; beyond it a pose file is damaged, not long


def _frame_index(value: np.ndarray) -> int:
    """The pose file's first frame index: a whole number from 0, or ValueError saying what it is instead."""
    number = _scalar(value, "frame_start")
    if not (math.isfinite(number) and number == int(number) and 0 <= number <= MAX_FRAME_START):
        raise ValueError(f"'frame_start' must be a whole number from 0 to {MAX_FRAME_START}, not {number!r}")
    return int(number)


def _scalar(value: np.ndarray, name: str) -> float:
    """One number stored in a pose file, or ValueError naming the key."""
    if np.ndim(value) != 0 or not np.issubdtype(np.asarray(value).dtype, np.number):
        raise ValueError(f"'{name}' must be one number, not an array of shape {np.shape(value)}")
    return float(value)
