"""Media -> poses, in one place: detected and gap-filled (cached by media content, range and
detector settings) -> smoothed over time -> normalized into a target's frame. Training, transfer,
evaluation and the pose jobs all take their poses from here, so they agree on every step.

The result is a PoseSequence; what later steps add per frame (person masks, crops) travels in it.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from ..names import NORMALIZE_STAGE
from ..progress import Progress, no_progress
from .detect import DetectOptions, extract_poses
from .normalize import NormalizeOptions, PoseStats, normalize_poses
from .sequence import PoseSequence
from .smooth import check_strength, smooth_poses


def pose_sequence(
    media: str | os.PathLike,
    start: int = 0,
    end: int | None = None,
    *,
    smoothing: float = 1.0,
    target: PoseStats | None = None,
    normalization: NormalizeOptions | None = None,
    fps: float | None = None,
    model: str = "full",
    model_path: str | os.PathLike | None = None,
    detect: DetectOptions | None = None,
    use_cache: bool = True,
    masks: bool = False,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> PoseSequence:
    """The poses of frames [start, end) of a movie or image folder (see extract_poses for the media,
    range, fps and detector arguments; `masks` also keeps the person masks, for a target), smoothed with
    strength `smoothing` (0 = as detected) and, with a `target`, normalized into its frame with
    `normalization` (default: automatic).

    Bad smoothing or normalization values are refused before the (slow) detection starts.
    Raises EdnError: extract_poses' errors, BAD_PARAMS, NO_ANKLES (normalization needs the feet).
    """
    check_strength(smoothing)
    if normalization is not None:
        normalization.validate()
    progress = progress or no_progress
    if masks:
        detect = dataclasses.replace(detect or DetectOptions(), masks=True)
    source = extract_poses(media, model=model, start=start, end=end, fps=fps, progress=progress, cancelled=cancelled,
                           use_cache=use_cache, model_path=model_path, options=detect)
    if target is None:
        return smooth_poses(source, strength=smoothing)
    progress(0, 1, NORMALIZE_STAGE)
    normalized = refine_poses(source, smoothing, target, normalization, source_name=Path(media).name)
    progress(1, 1, NORMALIZE_STAGE)
    return normalized


def refine_poses(source: PoseSequence, smoothing: float = 1.0, target: PoseStats | None = None,
                 normalization: NormalizeOptions | None = None, source_name: str = "the source clip") -> PoseSequence:
    """The steps after detection, for poses already extracted (a pose file): smoothed (0 = as they
    are) and, with a `target`, normalized into its frame."""
    smoothed = smooth_poses(source, strength=smoothing)
    if target is None:
        return smoothed
    return normalize_poses(smoothed, target, normalization, source_name=source_name)
