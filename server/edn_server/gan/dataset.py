"""The training data of one target video at one resolution, built once and memory-mapped.

Built from: poses (pose.pipeline: detected, cached, smoothed) -> per frame, the frame
resized to (w, h) with area interpolation, the label drawn at (w, h) from the keypoints (gan.labels)
and the face box in model pixels. Stored under `data_dir()/cache/datasets/<key>/` as uint8 .npy
files (frames, labels), boxes and masks, with meta.json (stats, sizes) and the smoothed poses.
The key covers the video's content hash, frame range, resolution, face side, pose model,
smoothing and DATASET_VERSION; the folder is built under a temporary name and renamed.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import media as media_io
from ..atomic import atomic_dir
from ..config import data_dir
from ..errors import BAD_PARAMS, NO_PERSON, EdnError
from ..names import DATASET_STAGE
from ..pose.normalize import PoseStats
from ..pose.pipeline import pose_sequence
from ..pose.sequence import PoseSequence
from ..progress import Progress, check_cancelled, no_progress
from .face import FaceBox, face_box
from .labels import model_keypoints, render_model_label

# Bump when the stored data for the same inputs changes (resizing, label drawing, boxes).
DATASET_VERSION = 1
STAGE = DATASET_STAGE
_FILES = ("frames.npy", "labels.npy", "boxes.npy", "has_box.npy", "usable.npy", "meta.json", "poses.npz")


def datasets_dir() -> Path:
    return data_dir() / "cache" / "datasets"


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is built from; every field is part of its cache key."""

    video: Path
    start: int
    end: int
    size: tuple[int, int]
    face_side: int
    pose_model: str = "full"
    smoothing: float = 1.0

    def key(self, media_hash: str) -> str:
        fields = {"version": DATASET_VERSION, "media": media_hash, "start": self.start, "end": self.end,
                  "size": list(self.size), "face_side": self.face_side, "pose_model": self.pose_model,
                  "smoothing": self.smoothing}
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
        return f"{media_hash[:12]}_{self.start}-{self.end}_{self.size[0]}x{self.size[1]}_{digest}"


class TrainingData:
    """A built dataset: frames / labels (N, h, w, 3) uint8 memory maps, face boxes (N, 3) int32
    (x0, y0, side), has_box (N,), usable (N,) (a person was detected), stats and poses."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.frames = np.load(self.folder / "frames.npy", mmap_mode="r")
        self.labels = np.load(self.folder / "labels.npy", mmap_mode="r")
        self.boxes = np.load(self.folder / "boxes.npy")
        self.has_box = np.load(self.folder / "has_box.npy")
        self.usable = np.load(self.folder / "usable.npy")
        self.meta: dict[str, Any] = json.loads((self.folder / "meta.json").read_text())
        self.stats = PoseStats.from_dict(self.meta["stats"])
        self.size: tuple[int, int] = (int(self.meta["size"][0]), int(self.meta["size"][1]))

    def __len__(self) -> int:
        return len(self.usable)

    @property
    def poses(self) -> PoseSequence:
        """The smoothed poses in the video's pixels."""
        return PoseSequence.load(self.folder / "poses.npz")

    def training_frames(self, holdout_fraction: float = 0.0) -> int:
        """Frames [0, n) are for training; the last `holdout_fraction` of the clip is held out."""
        return len(self) - int(round(len(self) * holdout_fraction))

    def pair_starts(self, holdout_fraction: float = 0.0, need_face: bool = False) -> np.ndarray:
        """Indices i of consecutive training pairs (i, i + 1) where a person was detected in both
        (and, with need_face, the second frame has a face box)."""
        n = self.training_frames(holdout_fraction)
        ok = self.usable[: n - 1] & self.usable[1:n]
        if need_face:
            ok &= self.has_box[1:n]
        return np.flatnonzero(ok)

    def face_boxes(self, indices: np.ndarray) -> list[FaceBox]:
        return [FaceBox(*map(int, self.boxes[i])) for i in indices]

    def tensors(self, indices: np.ndarray, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """(labels, frames) of `indices` as (N, 3, h, w) float tensors in [-1, 1]."""
        order = np.asarray(indices)
        out = []
        for array in (self.labels, self.frames):
            pixels = torch.from_numpy(np.ascontiguousarray(array[order])).to(device, non_blocking=True)
            out.append(pixels.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0).contiguous())
        return out[0], out[1]


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    if (frame.shape[1], frame.shape[0]) == tuple(size):
        return frame
    return cv2.resize(frame, tuple(size), interpolation=cv2.INTER_AREA)


def _write(folder: Path, spec: DatasetSpec, info: media_io.MediaInfo, poses: PoseSequence, stats: PoseStats,
           progress: Progress, cancelled: Callable[[], bool] | None) -> None:
    width, height = spec.size
    count = len(poses)
    frames = np.lib.format.open_memmap(folder / "frames.npy", mode="w+", dtype=np.uint8, shape=(count, height, width, 3))
    labels = np.lib.format.open_memmap(folder / "labels.npy", mode="w+", dtype=np.uint8, shape=(count, height, width, 3))
    boxes = np.zeros((count, 3), np.int32)
    has_box = np.zeros(count, bool)
    usable = poses.detected.copy()
    for index, frame in enumerate(media_io.iter_frames(info, spec.start, spec.end, transform=lambda f: _resize(f, spec.size))):
        check_cancelled(cancelled)
        frames[index] = frame
        if poses.usable[index]:
            labels[index] = render_model_label(poses.keypoints[index], poses.size, spec.size)
            box = face_box(model_keypoints(poses.keypoints[index], poses.size, spec.size), spec.size, side=spec.face_side)
            if box is not None:
                boxes[index], has_box[index] = box.to_tuple(), True
        progress(index + 1, count, STAGE)
    frames.flush()
    labels.flush()
    del frames, labels
    np.save(folder / "boxes.npy", boxes)
    np.save(folder / "has_box.npy", has_box & usable)
    np.save(folder / "usable.npy", usable)
    poses.save(folder / "poses.npz")
    meta = {"version": DATASET_VERSION, "video": str(spec.video), "start": spec.start, "end": spec.end,
            "size": list(spec.size), "source_size": list(poses.size), "fps": poses.fps, "face_side": spec.face_side,
            "pose_model": spec.pose_model, "smoothing": spec.smoothing, "stats": stats.to_dict(),
            "frames": count, "usable_frames": int(usable.sum())}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))


def _cached(folder: Path) -> TrainingData | None:
    if not all((folder / name).is_file() for name in _FILES):
        return None
    try:
        return TrainingData(folder)
    except (OSError, ValueError, KeyError, EdnError):  # damaged or outdated: build again
        return None


def build_dataset(video: str | os.PathLike, size: tuple[int, int], face_side: int, start: int = 0, end: int | None = None,
                  pose_model: str = "full", smoothing: float = 1.0, progress: Progress | None = None,
                  cancelled: Callable[[], bool] | None = None) -> TrainingData:
    """The training data of frames [start, end) of `video` at `size` (w, h), from the cache or
    built now. Raises EdnError for media problems, NO_PERSON (nobody in the clip), NO_ANKLES
    (the target's floor cannot be measured), CANCELLED (nothing is left behind)."""
    progress = progress or no_progress
    info = media_io.probe(video)
    start, end = media_io.check_range(info, start, end)
    if size[0] < 1 or size[1] < 1:
        raise EdnError(BAD_PARAMS, f"dataset size {size[0]}x{size[1]} is not a frame size")
    spec = DatasetSpec(Path(info.path).resolve(), start, end, (int(size[0]), int(size[1])), int(face_side), pose_model, float(smoothing))
    folder = datasets_dir() / spec.key(media_io.content_hash(info.path))
    data = _cached(folder)
    if data is not None:
        progress(len(data), len(data), STAGE)
        return data

    poses = pose_sequence(info.path, start, end, smoothing=smoothing, model=pose_model, progress=progress, cancelled=cancelled)
    if poses.detected.sum() < 2:
        raise EdnError(NO_PERSON, f"A person was found in only {int(poses.detected.sum())} of frames [{start}, {end}) of {info.path}; "
                                  "training needs a clip where the target is visible in most frames.")
    stats = PoseStats.from_poses(poses, name=info.path.name)
    with atomic_dir(folder) as tmp:
        _write(tmp, spec, info, poses, stats, progress, cancelled)
    return TrainingData(folder)


class PairSampler:
    """Seeded batches of pair starts, epoch by epoch (each pair once per epoch, shuffled).

    Every process of a distributed run draws the same global batch of batch_size * world_size
    pairs and keeps its own slice, so the ranks see different pairs while the sampler's state
    (saved in checkpoints) stays the same everywhere.
    """

    def __init__(self, pairs: np.ndarray, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if len(pairs) == 0:
            raise EdnError(NO_PERSON, "No two consecutive frames with a detected person are left for training; "
                                      "choose a longer frame range or a clip where the target stays in view.")
        self.pairs = np.asarray(pairs, dtype=np.int64)
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(len(self.pairs))
        self._position = 0

    def next_batch(self) -> np.ndarray:
        """Pair starts for this process's share of the next global batch."""
        chosen = []
        for _ in range(self.batch_size * self.world_size):
            if self._position == len(self._order):
                self._order, self._position = self._rng.permutation(len(self.pairs)), 0
            chosen.append(self._order[self._position])
            self._position += 1
        mine = chosen[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
        return self.pairs[np.asarray(mine)]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self._rng.bit_generator.state, "order": self._order.tolist(), "position": self._position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["rng"]
        self._order = np.asarray(state["order"], dtype=np.int64)
        self._position = int(state["position"])
