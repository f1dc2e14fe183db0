"""Detect one person's keypoints (and, when asked, their segmentation mask) in frames handed over one
at a time (generated or resized frames that exist only in memory), for evaluation's metrics."""
from __future__ import annotations

import os

import numpy as np

from .detect import choose_person
from .landmarker import Landmarker

MASK_THRESHOLD = 0.5  # MediaPipe's masks are a person probability per pixel


class PoseProbe:
    """A landmarker in VIDEO mode (it tracks the person between consecutive frames, as extraction
    does). Use as a context manager so the native landmarker is closed. With `segmentation`, `mask`
    is the found person's (H, W) bool mask after each detect (None when nobody is found)."""

    def __init__(self, model_file: str | os.PathLike, fps: float, segmentation: bool = False):
        self._landmarker = Landmarker(model_file, segmentation=segmentation)
        self.mask: np.ndarray | None = None
        self._step_ms = max(1, round(1000.0 / fps))
        self._time_ms = 0
        self._previous: np.ndarray | None = None

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        """(33, 4) keypoints [x_px, y_px, z, visibility] in this image's pixels, or None when nobody is found."""
        self._time_ms += self._step_ms
        candidates = self._landmarker.detect(rgb, self._time_ms)
        self.mask = None
        if not candidates:
            return None
        self._previous = choose_person(candidates, self._previous)
        masks = self._landmarker.last_masks
        chosen = next(i for i, c in enumerate(candidates) if c is self._previous)
        if chosen < len(masks):
            self.mask = masks[chosen] > MASK_THRESHOLD
        return self._previous

    def close(self) -> None:
        self._landmarker.close()

    def __enter__(self) -> PoseProbe:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
