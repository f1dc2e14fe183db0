"""What the generator sees of one frame in person mode: keypoints, label, frame, person mask and
background plate, all cut at the frame's person window (window.py) and resampled to the
generator's size. Training data and transfer both go through here, so their labels agree.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..pose.render import render_label
from .window import cut_window


def window_keypoints(keypoints: np.ndarray, box, size: tuple[int, int]) -> np.ndarray:
    """(…, 33, 4) keypoints in frame pixels -> pixels of the window `box` resampled to `size` (w, h)."""
    x0, y0, w, h = (float(v) for v in box)
    points = np.array(keypoints, dtype=np.float32, copy=True)
    points[..., 0] = (points[..., 0] - x0) * (size[0] / w)
    points[..., 1] = (points[..., 1] - y0) * (size[1] / h)
    return points


def window_label(keypoints: np.ndarray, box, size: tuple[int, int]) -> np.ndarray:
    """The (h, w, 3) uint8 label of one pose (33, 4) in frame pixels, drawn in the window."""
    return render_label(window_keypoints(keypoints, box, size), size, scale=1.0)


def cut_mask(mask: np.ndarray, box, frame_size: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """A person mask stored at a reduced resolution (uint8) cut at `box` (frame pixels) -> (h, w) uint8;
    zero outside the frame."""
    sx, sy = mask.shape[1] / frame_size[0], mask.shape[0] / frame_size[1]
    x0, y0, w, h = (float(v) for v in box)
    return cut_window(np.ascontiguousarray(mask), (x0 * sx, y0 * sy, w * sx, h * sy), size, border="constant")


@dataclass(frozen=True)
class WindowSample:
    """One training frame in person mode, every image (h, w[, 3]) uint8 at the generator's size."""

    frame: np.ndarray
    label: np.ndarray
    mask: np.ndarray
    plate: np.ndarray
    keypoints: np.ndarray  # (33, 4) in window pixels


def window_sample(frame: np.ndarray, keypoints: np.ndarray | None, mask: np.ndarray, plate: np.ndarray, box,
                  size: tuple[int, int]) -> WindowSample:
    """Cut one frame, its label (black without keypoints), mask and the plate at the window `box`."""
    frame_size = (frame.shape[1], frame.shape[0])
    if keypoints is None:
        label, points = np.zeros((size[1], size[0], 3), np.uint8), np.zeros((33, 4), np.float32)
    else:
        points = window_keypoints(keypoints, box, size)
        label = render_label(points, size, scale=1.0)
    return WindowSample(frame=cut_window(frame, box, size), label=label, mask=cut_mask(mask, box, frame_size, size),
                        plate=cut_window(plate, box, size), keypoints=points)
