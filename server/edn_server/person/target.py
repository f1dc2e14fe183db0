"""Which layer a target trains in: the person over a background plate, or the full frame.

From the target's poses with person masks (pose_sequence(masks=True)): the plate is estimated from
frames spread over the clip where the person was detected, and the background check runs on other
frames (every frame counts there, so a person missing from most frames reads as empty masks).
Frames are decoded once, keeping only the sampled ones: memory stays bounded for any clip length.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import media as media_io
from ..pose.sequence import PoseSequence
from .plate import (
    FULL_FRAME,
    PERSON,
    BackgroundCheck,
    Plate,
    PlateOptions,
    check_background,
    estimate_plate,
    sample_indices,
    samples_within,
)

log = logging.getLogger(__name__)
CHECK_FRAMES = 24  # frames (besides the plate's samples) the background check looks at
LAYERS = ("auto", PERSON, FULL_FRAME)


@dataclass(frozen=True)
class TargetLayer:
    """mode: "person" or "full-frame"; reason: a sentence for the training log and model.json;
    plate: the background plate (person mode only); check: the figures the mode was decided on."""

    mode: str
    reason: str
    plate: Plate | None = None
    check: BackgroundCheck | None = None

    def to_dict(self) -> dict:
        figures = self.check.to_dict() if self.check is not None else {}
        return {**figures, "mode": self.mode, "reason": self.reason}


def full_frame(reason: str) -> TargetLayer:
    return TargetLayer(FULL_FRAME, reason)


def choose_layer(video: str | Path, start: int, poses: PoseSequence, requested: str = "auto",
                 options: PlateOptions = PlateOptions()) -> TargetLayer:
    """The layer for frames [start, start + len(poses)) of `video`: `requested` "full-frame" is
    obeyed; "auto" and "person" estimate the plate and check the background ("person" on a moving
    background still trains full-frame: a plate cannot stand behind the person there)."""
    if requested not in LAYERS:
        raise ValueError(f"layer must be one of {', '.join(LAYERS)}, got {requested!r}")
    if requested == FULL_FRAME:
        return full_frame("full-frame training was asked for")
    if poses.masks is None:
        return _warned(full_frame("the target's poses carry no person masks; training full-frame"))
    detected = np.flatnonzero(poses.detected)
    if len(detected) < 3:
        return _warned(full_frame(f"a person was detected in only {len(detected)} frames, too few for a background "
                                  "plate; training full-frame"))
    info = media_io.probe(video)
    plate_frames = detected[sample_indices(len(detected), samples_within(info.size, options))]
    others = np.setdiff1d(np.arange(len(poses)), plate_frames)
    check_frames = others[sample_indices(len(others), CHECK_FRAMES)] if len(others) else plate_frames
    wanted = set(plate_frames.tolist()) | set(check_frames.tolist())
    frames = {}
    last = max(wanted)
    for i, frame in enumerate(media_io.iter_frames(info, start, start + last + 1)):
        if i in wanted:
            frames[i] = frame
    plate = estimate_plate([frames[i] for i in plate_frames], [poses.masks[i] for i in plate_frames], options)
    check = check_background([frames[i] for i in check_frames], [poses.masks[i] for i in check_frames], plate,
                             plate_options=options)
    layer = TargetLayer(check.mode, check.reason, plate if check.mode == PERSON else None, check)
    return layer if layer.mode == PERSON else _warned(layer)


def _warned(layer: TargetLayer) -> TargetLayer:
    log.warning("%s", layer.reason)
    return layer
