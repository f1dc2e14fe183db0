"""The paper's evaluation of a trained target: reconstruct each real frame of a clip of the target
from that frame's own pose (normalization off) and compare with the real frame at the scoring
size: the model's resolution, or `size` (w, h) so that models of different output sizes compare
(real frames resized with area interpolation; generated frames too, or bicubic when enlarged).

Metrics (means over the frames where the real frame has a pose):
- body_ssim, body_psnr: on the body box (ground-truth keypoints, padded 15% sideways, 10% up and
  down); per-frame PSNR is capped at 100 dB so an exact match stays a finite JSON number.
- person_ssim: SSIM over the windows centred inside the real frame's own person mask (MediaPipe's
  segmentation of the real frame at the scoring size), so a copied background cannot carry it.
- face_ssim: on the face GAN's face crop, of frames made as transfers make them: with the face
  refiner only where the model uses it (`face`: used and why, face_check.py).
- pose_distance: mean pixel distance, at the scoring size, between the keypoints MediaPipe
  detects on the generated frame and on the real frame, over landmarks visible in both.
- missed_detections: generated frames where MediaPipe finds nobody although the real frame shows
  someone (a metric, never an error); those frames have no pose_distance.
- lpips: null, with lpips_unavailable_reason (see LPIPS_REASON).
`baseline` ("median", "nearest" or "median,nearest") adds the same metrics for do-nothing
predictions (eval_baselines.py): the per-pixel median of the training frames as `baseline`, and
the training frame nearest in pixels to each evaluated frame as `nearest_baseline`.
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
from ..names import EVALUATE_STAGE
from ..person.plate import PERSON
from ..progress import Progress, check_cancelled, no_progress
from .eval_baselines import NearestFrame, median_baseline, training_clip_frames, training_frames
from .face import face_box
from .labels import model_keypoints
from .metrics import SSIM_WINDOW, body_box, crop_box, masked_ssim, pose_distance, psnr, ssim
from .output_frames import PersonOutput
from .sequence_generator import SequenceGenerator, pick_device

if TYPE_CHECKING:
    import torch

    from .model_io import TrainedModel

BASELINES = ("median", "nearest")
PSNR_CAP_DB = 100.0
STAGE = EVALUATE_STAGE
LPIPS_REASON = ("LPIPS needs ImageNet-trained AlexNet or VGG16 weights plus its calibrated linear layers; edn neither "
                "ships nor downloads them, so it is not computed")
METRICS = ("body_ssim", "body_psnr", "person_ssim", "face_ssim", "pose_distance")
MAX_SCORE_SIDE = 8192
NEAREST_UNAVAILABLE = ("the model's training clip (model.json's target) and its dataset cache are both gone; put the "
                       "clip back at its path to score the nearest-training-frame reference")


class FrameScores:
    """Per-frame values of every metric (None where a frame could not be scored), and the means."""

    def __init__(self):
        self.values: dict[str, list[float | None]] = {name: [] for name in METRICS}
        self.missed = 0

    def add(self, real: np.ndarray, fake: np.ndarray, keypoints: np.ndarray, face_side: int | None,
            real_pose: np.ndarray | None, fake_pose: np.ndarray | None, person_mask: np.ndarray | None = None) -> None:
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
        person = masked_ssim(fake, real, person_mask) if person_mask is not None else None
        for name, value in zip(METRICS, (*body, person, face_score, distance), strict=True):
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
             per_frame: bool = True, size: tuple[int, int] | None = None) -> dict:
    """Score `model` on frames [start, end) of `video` (a clip of the target subject, ideally frames
    it was not trained on) at `size` (w, h; default the model's resolution) and write the metrics
    to `out_json` atomically; returns them. Raises EdnError (MODEL_NOT_FOUND, media errors,
    BAD_RANGE, BAD_PARAMS, NO_PERSON, CANCELLED); on error nothing is written."""
    from .. import media as media_io
    from ..pose.models import ensure_pose_model
    from ..pose.pipeline import pose_sequence
    from ..pose.probe import PoseProbe
    from .infer import resolve_model

    started = time.perf_counter()
    progress = progress or no_progress
    out_json = Path(out_json).expanduser()
    baselines = _baselines(baseline)
    if out_json.is_dir():
        raise EdnError(BAD_PARAMS, f"Output {out_json} is a folder; give a file name such as metrics.json.")
    if size is not None:
        size = check_size(size)
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
    model_size = scoring_size(trained)  # what the model makes, before scoring at `size`
    score_size = tuple(size or model_size)
    keypoints = model_keypoints(poses.keypoints, poses.size, trained.resolution)
    score_keypoints = model_keypoints(poses.keypoints, poses.size, score_size)
    face_side = None if trained.face_side is None else round(trained.face_side * score_size[1] / trained.resolution[1])
    usable = poses.usable
    to_score = _resizer(score_size)
    median = median_source = nearest = None
    # every training frame for the nearest-frame search; the median needs only its spread of them
    clip = training_clip_frames(trained, to_score, progress, cancelled, every_frame="nearest" in baselines) if baselines else None
    if "median" in baselines:
        median, median_source = median_baseline(trained, clip, info, start, end, to_score, progress, cancelled)
    if "nearest" in baselines:
        nearest = NearestFrame(*clip) if clip is not None else _cached_nearest(trained, to_score)
    pose_file = ensure_pose_model(config.pose_model)

    engine = SequenceGenerator(trained.generator, trained.resolution, pick_device(device, trained.generator),
                               trained.face_refiner, trained.face_side)  # as transfers run it
    model_scores, median_scores, nearest_scores = FrameScores(), FrameScores(), FrameScores()
    total = end - start
    with contextlib.ExitStack() as stack:
        real_probe = stack.enter_context(PoseProbe(pose_file, info.fps, segmentation=True))
        fake_probe = stack.enter_context(PoseProbe(pose_file, info.fps))
        nearest_probe = stack.enter_context(PoseProbe(pose_file, info.fps)) if nearest is not None else None
        median_pose = None
        if median is not None:
            with PoseProbe(pose_file, info.fps) as probe:
                median_pose = probe.detect(median)
        frames = stack.enter_context(contextlib.closing(media_io.iter_frames(info, start, end)))
        for i, frame in enumerate(frames):
            check_cancelled(cancelled)
            made = person.frame(engine, i) if person else engine.step(keypoints[i] if usable[i] else None).image
            fake = to_score(made)
            if not usable[i]:
                for scores in (model_scores, median_scores, nearest_scores):
                    scores.skip()
            else:
                real = to_score(frame)
                real_pose = real_probe.detect(real)
                truth = (score_keypoints[i], face_side, real_pose)
                model_scores.add(real, fake, *truth, fake_probe.detect(fake), person_mask=real_probe.mask)
                if median is not None:
                    median_scores.add(real, median, *truth, median_pose, person_mask=real_probe.mask)
                if nearest is not None:
                    copy = nearest(real)
                    nearest_scores.add(real, copy, *truth, nearest_probe.detect(copy), person_mask=real_probe.mask)
            progress(i + 1, total, STAGE)

    result = {
        "model": trained.name,
        "video": str(info.path),
        "range": [start, end],
        "frames": total,
        "frames_with_pose": int(usable.sum()),
        "resolution": list(model_size),
        "score_size": list(score_size),
        "face": {k: trained.face[k] for k in ("used", "reason")},
        **model_scores.summary(),
        "lpips": None,
        "lpips_unavailable_reason": LPIPS_REASON,
        "baseline": None,
        "nearest_baseline": None,
    }
    if median is not None:
        result["baseline"] = {"kind": "median", "source": median_source, **median_scores.summary()}
    if nearest is not None:
        result["nearest_baseline"] = {"kind": "nearest", "source": nearest.source, **nearest_scores.summary()}
    elif "nearest" in baselines:
        result["nearest_baseline"] = {"kind": "nearest", "unavailable_reason": NEAREST_UNAVAILABLE}
    if per_frame:
        result["per_frame"] = {"frame": list(range(start, end)), **model_scores.values}
    result["seconds"] = time.perf_counter() - started
    with atomic_file(out_json, suffix=".json") as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    return result


def _cached_nearest(trained: TrainedModel, to_score: Callable[[np.ndarray], np.ndarray]) -> NearestFrame | None:
    """The nearest-frame baseline from a full-frame model's dataset cache (its clip is gone)."""
    found = training_frames(trained)
    if found is None:
        return None
    frames, folder = found
    return NearestFrame(np.stack([to_score(np.asarray(frame)) for frame in frames]), f"training frames ({folder})")


def _baselines(baseline: str | None) -> tuple[str, ...]:
    names = tuple(part.strip() for part in (baseline or "").split(",") if part.strip())
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise EdnError(BAD_PARAMS, f"Baseline {unknown[0]!r} is unknown; use median, nearest or median,nearest, or leave it out.")
    return names


def check_size(size) -> tuple[int, int]:
    """A scoring size (w, h) of whole pixels, each side at least the SSIM window."""
    try:
        width, height = (int(v) for v in size)
        valid = (width, height) == tuple(size)
    except (TypeError, ValueError):
        valid = False
    if not valid or min(width, height) < SSIM_WINDOW or max(width, height) > MAX_SCORE_SIDE:
        raise EdnError(BAD_PARAMS, f"size={size!r} is not a scoring size: give width x height in pixels, each from "
                                   f"{SSIM_WINDOW} to {MAX_SCORE_SIDE} (e.g. 512x256).")
    return width, height


def parse_size(text: str) -> tuple[int, int]:
    """'512x256' -> (512, 256); BAD_PARAMS naming the value otherwise."""
    width, sep, height = text.lower().partition("x")
    if not sep or not width.strip().isdigit() or not height.strip().isdigit():
        raise EdnError(BAD_PARAMS, f"--size {text!r} is not WIDTHxHEIGHT in pixels (e.g. 512x256).")
    return check_size((int(width), int(height)))


def scoring_size(trained: TrainedModel) -> tuple[int, int]:
    """Where frames are scored: a full-frame model's own resolution; for a person-mode model (a
    square window composited at the target's size), its window height at the target's aspect."""
    if trained.mode != PERSON:
        return trained.resolution
    width, height = trained.stats.frame_size
    side = trained.resolution[1]
    return (max(2, int(round(width * side / height / 2)) * 2), side)


def _resizer(size: tuple[int, int]) -> Callable[[np.ndarray], np.ndarray]:
    """Frames to `size` (w, h): area interpolation to shrink, bicubic to enlarge."""
    import cv2

    def resize(frame: np.ndarray) -> np.ndarray:
        if (frame.shape[1], frame.shape[0]) == tuple(size):
            return frame
        enlarge = size[0] * size[1] > frame.shape[0] * frame.shape[1]
        return cv2.resize(frame, tuple(size), interpolation=cv2.INTER_CUBIC if enlarge else cv2.INTER_AREA)

    return resize
