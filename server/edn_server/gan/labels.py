"""Label images at a model's resolution from keypoints in the target video's pixels.

The training frames are the video's frames resized to the model's (w, h); the model's width is
rounded to the generator's size multiple, so the two axes may scale by slightly different
factors. Keypoints are mapped by the same per-axis factors, so label and frame stay aligned;
training and transfer both draw labels through this module.
"""
from __future__ import annotations

import numpy as np

from ..pose.render import render_label


def model_keypoints(keypoints: np.ndarray, src_size: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """(…, 33, 4) keypoints in pixels of a src_size (w, h) frame -> pixels of a `size` (w, h) frame."""
    points = np.array(keypoints, dtype=np.float32, copy=True)
    points[..., 0] *= size[0] / src_size[0]
    points[..., 1] *= size[1] / src_size[1]
    return points


def render_model_label(keypoints: np.ndarray, src_size: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) uint8 label of one pose (33, 4) in src_size pixels, drawn at `size`."""
    return render_label(model_keypoints(keypoints, src_size, size), size, scale=1.0)
