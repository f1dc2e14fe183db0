"""Re-cutting generated windows on the device: the previous frame's output, cut at its own person
window, seen through the current frame's window (person.window.recut_window's torch twin for
batches, so training and transfer never leave the device for it). Outside the previous window the
edge pixels repeat, as recut_window does."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def recut_theta(from_boxes, to_boxes, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, 2, 3) affine_grid matrices mapping the `to_boxes` windows' normalised coordinates into
    the `from_boxes` windows'; boxes (N, 4) of (x0, y0, w, h) in frame pixels."""
    src = np.asarray(from_boxes, np.float64).reshape(-1, 4)
    dst = np.asarray(to_boxes, np.float64).reshape(-1, 4)
    theta = np.zeros((len(src), 2, 3), np.float64)
    for axis in (0, 1):
        origin_src, size_src = src[:, axis], src[:, axis + 2]
        origin_dst, size_dst = dst[:, axis], dst[:, axis + 2]
        theta[:, axis, axis] = size_dst / size_src
        theta[:, axis, 2] = (2.0 * (origin_dst - origin_src) + size_dst - size_src) / size_src
    return torch.as_tensor(theta, dtype=torch.float32, device=device)


def recut(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) windows re-cut by recut_theta's matrices, same size (bilinear, border repeated)."""
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
