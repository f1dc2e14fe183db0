"""The training data of one target video at one resolution, built once and memory-mapped.

Built from: poses (pose.pipeline: detected, cached, smoothed) -> per frame, the frame
resized to (w, h) with area interpolation, the label drawn at (w, h) from the keypoints (gan.labels)
and the face box in model pixels. Stored under `data_dir()/cache/datasets/<key>/` as uint8 .npy
files (frames, labels), boxes and masks, with meta.json (stats, sizes) and the smoothed poses.
The key covers the video's content hash, frame range, resolution, face side, pose model,
smoothing, the layer and DATASET_VERSION; the folder is built under a temporary name and renamed.

Person mode (a TargetLayer with a plate, see person/target.py): frames, labels and face boxes are
cut at the person window of each frame (person_windows over the smoothed keypoints, the
generator's aspect), and the dataset also holds windows.npy (N, 4) boxes in video pixels,
person_masks.npy (N, h, w) uint8 and plates.npy (the plate cut at each window), plus plate.png.
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
from ..names import DATASET_STAGE, PLATE_FILE
from ..person.plate import FULL_FRAME, PERSON
from ..person.target import TargetLayer
from ..person.window import person_windows
from ..person.window_frames import window_sample
from ..pose.normalize import PoseStats
from ..pose.pipeline import pose_sequence
from ..pose.sequence import PoseSequence
from ..progress import Progress, check_cancelled, no_progress
from .face import FaceBox, face_box
from .frame_writer import write_png
from .labels import model_keypoints, render_model_label

# Bump when the stored data for the same inputs changes (resizing, label drawing, boxes).
DATASET_VERSION = 1
STAGE = DATASET_STAGE
_FILES = ("frames.npy", "labels.npy", "boxes.npy", "has_box.npy", "usable.npy", "meta.json", "poses.npz")
_PERSON_FILES = ("windows.npy", "person_masks.npy", "plates.npy", PLATE_FILE)


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
    layer: str = FULL_FRAME

    def key(self, media_hash: str) -> str:
        fields = {"version": DATASET_VERSION, "media": media_hash, "start": self.start, "end": self.end,
                  "size": list(self.size), "face_side": self.face_side, "pose_model": self.pose_model,
                  "smoothing": self.smoothing}
        if self.layer != FULL_FRAME:  # full-frame keys stay as before the person layer
            fields["layer"] = self.layer
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
        self.person = self.meta.get("layer", {}).get("mode") == PERSON
        if self.person:
            self.windows = np.load(self.folder / "windows.npy")
            self.masks = np.load(self.folder / "person_masks.npy", mmap_mode="r")
            self.plates = np.load(self.folder / "plates.npy", mmap_mode="r")

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

    def person_tensors(self, indices: np.ndarray, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Person mode: (masks (N, 1, h, w) in [0, 1], plates (N, 3, h, w) in [-1, 1]) of `indices`."""
        order = np.asarray(indices)
        masks = torch.from_numpy(np.ascontiguousarray(self.masks[order])).to(device).unsqueeze(1).float().div_(255.0)
        plates = torch.from_numpy(np.ascontiguousarray(self.plates[order])).to(device)
        return masks.contiguous(), plates.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0).contiguous()


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    if (frame.shape[1], frame.shape[0]) == tuple(size):
        return frame
    return cv2.resize(frame, tuple(size), interpolation=cv2.INTER_AREA)


def _images(folder: Path, name: str, count: int, size: tuple[int, int], channels: int | None = 3) -> np.ndarray:
    shape = (count, size[1], size[0]) + ((channels,) if channels else ())
    return np.lib.format.open_memmap(folder / name, mode="w+", dtype=np.uint8, shape=shape)


def _write(folder: Path, spec: DatasetSpec, info: media_io.MediaInfo, poses: PoseSequence, stats: PoseStats,
           progress: Progress, cancelled: Callable[[], bool] | None, layer: TargetLayer | None = None) -> None:
    count = len(poses)
    frames, labels = _images(folder, "frames.npy", count, spec.size), _images(folder, "labels.npy", count, spec.size)
    boxes = np.zeros((count, 3), np.int32)
    has_box = np.zeros(count, bool)
    usable = poses.detected.copy()
    person = layer is not None and layer.plate is not None
    if person:
        windows = person_windows(poses.keypoints, poses.size, spec.size[0] / spec.size[1], poses.fps).boxes
        masks, plates = _images(folder, "person_masks.npy", count, spec.size, None), _images(folder, "plates.npy", count, spec.size)
        np.save(folder / "windows.npy", windows)
        write_png(folder / PLATE_FILE, layer.plate.image)
    transform = None if person else (lambda f: _resize(f, spec.size))
    for index, frame in enumerate(media_io.iter_frames(info, spec.start, spec.end, transform=transform)):
        check_cancelled(cancelled)
        keypoints = poses.keypoints[index] if poses.usable[index] else None
        if person:
            cut = window_sample(frame, keypoints, poses.masks[index], layer.plate.image, windows[index], spec.size)
            frames[index], labels[index], masks[index], plates[index] = cut.frame, cut.label, cut.mask, cut.plate
            points = cut.keypoints
        else:
            frames[index] = frame
            if keypoints is not None:
                labels[index] = render_model_label(keypoints, poses.size, spec.size)
            points = model_keypoints(poses.keypoints[index], poses.size, spec.size)
        if keypoints is not None:
            box = face_box(points, spec.size, side=spec.face_side)
            if box is not None:
                boxes[index], has_box[index] = box.to_tuple(), True
        progress(index + 1, count, STAGE)
    for array in (frames, labels, *((masks, plates) if person else ())):
        array.flush()
    del frames, labels
    if person:
        del masks, plates
    np.save(folder / "boxes.npy", boxes)
    np.save(folder / "has_box.npy", has_box & usable)
    np.save(folder / "usable.npy", usable)
    poses.save(folder / "poses.npz")
    meta = {"version": DATASET_VERSION, "video": str(spec.video), "start": spec.start, "end": spec.end,
            "size": list(spec.size), "source_size": list(poses.size), "fps": poses.fps, "face_side": spec.face_side,
            "pose_model": spec.pose_model, "smoothing": spec.smoothing, "stats": stats.to_dict(),
            "frames": count, "usable_frames": int(usable.sum()),
            "layer": layer.to_dict() if layer is not None else {"mode": FULL_FRAME}}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))


def _cached(folder: Path, person: bool) -> TrainingData | None:
    if not all((folder / name).is_file() for name in _FILES + (_PERSON_FILES if person else ())):
        return None
    try:
        return TrainingData(folder)
    except (OSError, ValueError, KeyError, EdnError):  # damaged or outdated: build again
        return None


def build_dataset(video: str | os.PathLike, size: tuple[int, int], face_side: int, start: int = 0, end: int | None = None,
                  pose_model: str = "full", smoothing: float = 1.0, progress: Progress | None = None,
                  cancelled: Callable[[], bool] | None = None, layer: TargetLayer | None = None) -> TrainingData:
    """The training data of frames [start, end) of `video` at `size` (w, h), from the cache or
    built now; with a person-mode `layer` (choose_layer's), cut at the person windows.
    Raises EdnError for media problems, NO_PERSON (nobody in the clip), NO_ANKLES
    (the target's floor cannot be measured), CANCELLED (nothing is left behind)."""
    progress = progress or no_progress
    info = media_io.probe(video)
    start, end = media_io.check_range(info, start, end)
    if size[0] < 1 or size[1] < 1:
        raise EdnError(BAD_PARAMS, f"dataset size {size[0]}x{size[1]} is not a frame size")
    person = layer is not None and layer.plate is not None
    spec = DatasetSpec(Path(info.path).resolve(), start, end, (int(size[0]), int(size[1])), int(face_side), pose_model, float(smoothing),
                       PERSON if person else FULL_FRAME)
    folder = datasets_dir() / spec.key(media_io.content_hash(info.path))
    data = _cached(folder, person)
    if data is not None:
        progress(len(data), len(data), STAGE)
        return data

    poses = pose_sequence(info.path, start, end, smoothing=smoothing, model=pose_model, masks=person, progress=progress,
                          cancelled=cancelled)
    if poses.detected.sum() < 2:
        raise EdnError(NO_PERSON, f"A person was found in only {int(poses.detected.sum())} of frames [{start}, {end}) of {info.path}; "
                                  "training needs a clip where the target is visible in most frames.")
    stats = PoseStats.from_poses(poses, name=info.path.name)
    with atomic_dir(folder) as tmp:
        _write(tmp, spec, info, poses, stats, progress, cancelled, layer if person else None)
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
