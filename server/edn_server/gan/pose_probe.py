"""Detect one person's keypoints in frames handed over one at a time (generated or resized frames
that exist only in memory), for the pose metrics of evaluation."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..pose.detect import choose_person


class PoseProbe:
    """A PoseLandmarker in VIDEO mode (it tracks the person between consecutive frames, as extraction
    does). Use as a context manager so the native landmarker is closed."""

    def __init__(self, model_file: Path, fps: float):
        from mediapipe.tasks.python import BaseOptions, vision

        settings = vision.PoseLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(model_file)),
                                                running_mode=vision.RunningMode.VIDEO, num_poses=1)
        self._landmarker = vision.PoseLandmarker.create_from_options(settings)
        self._step_ms = max(1, round(1000.0 / fps))
        self._time_ms = 0
        self._previous: np.ndarray | None = None

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        """(33, 4) keypoints [x_px, y_px, z, visibility] in this image's pixels, or None when nobody is found."""
        import mediapipe as mp

        self._time_ms += self._step_ms
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._landmarker.detect_for_video(image, self._time_ms)
        if not result.pose_landmarks:
            return None
        scale = np.array([rgb.shape[1], rgb.shape[0], 1.0, 1.0], np.float32)
        candidates = [np.array([(p.x, p.y, p.z, p.visibility or 0.0) for p in person], np.float32) * scale
                      for person in result.pose_landmarks]
        self._previous = choose_person(candidates, self._previous)
        return self._previous

    def close(self) -> None:
        self._landmarker.close()

    def __enter__(self) -> PoseProbe:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
