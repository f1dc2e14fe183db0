"""The paper's evaluation of a trained target: reconstruct each real frame of a clip of the target
from that frame's own pose (normalization off) and compare with the real frame at the model's
resolution (real frames resized with area interpolation).

Metrics (means over the frames where the real frame has a pose):
- body_ssim, body_psnr: on the body box (ground-truth keypoints, padded 15% sideways, 10% up and
  down); per-frame PSNR is capped at 100 dB so an exact match stays a finite JSON number.
- face_ssim: on the face GAN's face crop.
- pose_distance: mean pixel distance, at the model's resolution, between the keypoints MediaPipe
  detects on the generated frame and on the real frame, over landmarks visible in both.
- missed_detections: generated frames where MediaPipe finds nobody although the real frame shows
  someone (a metric, never an error); those frames have no pose_distance.
- lpips: null, with lpips_unavailable_reason (see LPIPS_REASON).
`baseline="median"` adds the same metrics for the per-pixel median of the training frames used as
every prediction: a still image of the stage with a blurred person, the figure a model must beat.
The frames (up to MEDIAN_FRAMES, spread evenly) come from the model's dataset cache when it is
still there at the model's resolution (its held-out tail excluded), else from the evaluated clip
range itself, which makes the baseline slightly optimistic.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import atomic_file
from ..errors import BAD_PARAMS, EdnError
from ..names import EVALUATE_STAGE, MEDIAN_STAGE
from ..person.plate import PERSON
from ..progress import Progress, check_cancelled, no_progress
from .face import face_box
from .labels import model_keypoints
from .metrics import SSIM_WINDOW, body_box, crop_box, pose_distance, psnr, ssim
from .output_frames import PersonOutput
from .sequence_generator import SequenceGenerator, pick_device

if TYPE_CHECKING:
    import torch

    from .model_io import TrainedModel

BASELINES = (None, "median")
MEDIAN_FRAMES = 64
PSNR_CAP_DB = 100.0
STAGE = EVALUATE_STAGE
LPIPS_REASON = ("LPIPS needs ImageNet-trained AlexNet or VGG16 weights plus its calibrated linear layers; edn neither "
                "ships nor downloads them, so it is not computed")
METRICS = ("body_ssim", "body_psnr", "face_ssim", "pose_distance")


class FrameScores:
    """Per-frame values of every metric (None where a frame could not be scored), and the means."""

    def __init__(self):
        self.values: dict[str, list[float | None]] = {name: [] for name in METRICS}
        self.missed = 0

    def add(self, real: np.ndarray, fake: np.ndarray, keypoints: np.ndarray, face_side: int | None,
            real_pose: np.ndarray | None, fake_pose: np.ndarray | None) -> None:
        size = (real.shape[1], real.shape[0])
        box = body_box(keypoints, size)
        if box is not None and min(box[2] - box[0], box[3] - box[1]) >= SSIM_WINDOW:
            a, b = crop_box(fake, box), crop_box(real, box)
            body = (ssim(a, b), min(psnr(a, b), PSNR_CAP_DB))
        else:
            body = (None, None)
        face = face_box(keypoints, size, side=face_side)
        face_score = None
        if face is not None:
            face_score = ssim(fake[face.y0:face.y1, face.x0:face.x1], real[face.y0:face.y1, face.x0:face.x1])
        distance = None
        if fake_pose is None:
            self.missed += 1
        elif real_pose is not None:
            d = pose_distance(fake_pose, real_pose)
            distance = None if math.isnan(d) else d
        for name, value in zip(METRICS, (*body, face_score, distance), strict=True):
            self.values[name].append(value)

    def skip(self) -> None:
        for values in self.values.values():
            values.append(None)

    def summary(self) -> dict:
        out: dict = {}
        for name, values in self.values.items():
            known = [v for v in values if v is not None]
            out[name] = float(np.mean(known)) if known else None
            out[f"{name}_frames"] = len(known)
        out["missed_detections"] = int(self.missed)
        return out


def evaluate(model: str | TrainedModel, video: str | os.PathLike, out_json: str | os.PathLike, start: int = 0,
             end: int | None = None, baseline: str | None = None, progress: Progress | None = None,
             cancelled: Callable[[], bool] | None = None, device: str | torch.device | None = None,
             per_frame: bool = True) -> dict:
    """Score `model` on frames [start, end) of `video` (a clip of the target subject, ideally frames
    it was not trained on) and write the metrics to `out_json` atomically; returns them.
    Raises EdnError (MODEL_NOT_FOUND, media errors, BAD_RANGE, BAD_PARAMS, NO_PERSON, CANCELLED);
    on error nothing is written."""
    from .. import media as media_io
    from ..pose.models import ensure_pose_model
    from ..pose.pipeline import pose_sequence
    from ..pose.probe import PoseProbe
    from .infer import resolve_model

    started = time.perf_counter()
    progress = progress or no_progress
    out_json = Path(out_json).expanduser()
    if baseline not in BASELINES:
        raise EdnError(BAD_PARAMS, f"Baseline {baseline!r} is unknown; use 'median' or leave it out.")
    if out_json.is_dir():
        raise EdnError(BAD_PARAMS, f"Output {out_json} is a folder; give a file name such as metrics.json.")
    if device is not None:
        device = pick_device(device)
    trained = resolve_model(model, device)
    info = media_io.probe(video)
    start, end = media_io.check_range(info, start, end)
    config = trained.config
    # The poses go through what the training data went through: same detector, same smoothing.
    poses = pose_sequence(info.path, start, end, smoothing=config.smoothing, model=config.pose_model, progress=progress,
                          cancelled=cancelled)
    person = PersonOutput(trained, poses) if trained.mode == PERSON else None
    size = scoring_size(trained)
    keypoints = model_keypoints(poses.keypoints, poses.size, size)
    usable = poses.usable
    resize = _resizer(size)
    median, median_source = (None, None)
    if baseline == "median":
        median, median_source = _median_baseline(trained, info, start, end, resize, progress, cancelled)
    pose_file = ensure_pose_model(config.pose_model)

    engine = SequenceGenerator(trained.generator, trained.resolution, pick_device(device, trained.generator),
                               trained.face_generator, trained.face_side)
    model_scores, baseline_scores = FrameScores(), FrameScores()
    total = end - start
    with contextlib.ExitStack() as stack:
        real_probe = stack.enter_context(PoseProbe(pose_file, info.fps))
        fake_probe = stack.enter_context(PoseProbe(pose_file, info.fps))
        median_pose = None
        if median is not None:
            with PoseProbe(pose_file, info.fps) as probe:
                median_pose = probe.detect(median)
        frames = stack.enter_context(contextlib.closing(media_io.iter_frames(info, start, end, transform=resize)))
        for i, real in enumerate(frames):
            check_cancelled(cancelled)
            fake = resize(person.frame(engine, i)) if person else engine.step(keypoints[i] if usable[i] else None).image
            if usable[i]:
                real_pose = real_probe.detect(real)
                model_scores.add(real, fake, keypoints[i], trained.face_side, real_pose, fake_probe.detect(fake))
                if median is not None:
                    baseline_scores.add(real, median, keypoints[i], trained.face_side, real_pose, median_pose)
            else:
                model_scores.skip()
                baseline_scores.skip()
            progress(i + 1, total, STAGE)

    result = {
        "model": trained.name,
        "video": str(info.path),
        "range": [start, end],
        "frames": total,
        "frames_with_pose": int(usable.sum()),
        "resolution": list(size),
        **model_scores.summary(),
        "lpips": None,
        "lpips_unavailable_reason": LPIPS_REASON,
        "baseline": None,
    }
    if median is not None:
        result["baseline"] = {"kind": "median", "source": median_source, **baseline_scores.summary()}
    if per_frame:
        result["per_frame"] = {"frame": list(range(start, end)), **model_scores.values}
    result["seconds"] = time.perf_counter() - started
    with atomic_file(out_json, suffix=".json") as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    return result


def scoring_size(trained: TrainedModel) -> tuple[int, int]:
    """Where frames are scored: a full-frame model's own resolution; for a person-mode model (a
    square window composited at the target's size), its window height at the target's aspect."""
    if trained.mode != PERSON:
        return trained.resolution
    width, height = trained.stats.frame_size
    side = trained.resolution[1]
    return (max(2, int(round(width * side / height / 2)) * 2), side)


def _resizer(size: tuple[int, int]) -> Callable[[np.ndarray], np.ndarray]:
    import cv2

    def resize(frame: np.ndarray) -> np.ndarray:
        if (frame.shape[1], frame.shape[0]) == tuple(size):
            return frame
        return cv2.resize(frame, tuple(size), interpolation=cv2.INTER_AREA)

    return resize


def _spread(count: int) -> np.ndarray:
    """Up to MEDIAN_FRAMES indices spread evenly over [0, count)."""
    return np.unique(np.linspace(0, count - 1, min(MEDIAN_FRAMES, count)).round().astype(int))


def _median_baseline(trained: TrainedModel, info, start: int, end: int, resize, progress: Progress,
                     cancelled) -> tuple[np.ndarray, str]:
    """The median frame and where its frames came from."""
    dataset = trained.info.get("dataset") if isinstance(trained.info, dict) else None
    folder = Path(dataset["folder"]) if isinstance(dataset, dict) and dataset.get("folder") else None
    if folder is not None and (folder / "frames.npy").is_file():
        frames = np.load(folder / "frames.npy", mmap_mode="r")
        count = min(int(dataset.get("train_frames") or len(frames)), len(frames))
        if frames.ndim == 4 and frames.shape[1:3] == (trained.resolution[1], trained.resolution[0]) and count > 0:
            progress(count, count, MEDIAN_STAGE)
            return np.median(frames[_spread(count)], axis=0).round().astype(np.uint8), f"training frames ({folder})"
    return _median_of_clip(info, start, end, resize, progress, cancelled), f"evaluated clip frames [{start}, {end})"


def _median_of_clip(info, start: int, end: int, resize, progress: Progress, cancelled) -> np.ndarray:
    """Per-pixel median of up to MEDIAN_FRAMES frames spread evenly over [start, end)."""
    from .. import media as media_io

    total = end - start
    wanted = set(_spread(total).tolist())
    kept = []
    with contextlib.closing(media_io.iter_frames(info, start, end)) as frames:
        for i, frame in enumerate(frames):
            check_cancelled(cancelled)
            if i in wanted:
                kept.append(resize(frame))
            progress(i + 1, total, MEDIAN_STAGE)
    return np.median(np.stack(kept), axis=0).round().astype(np.uint8)
