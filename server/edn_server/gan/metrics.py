"""Image and pose metrics of the paper's evaluation: SSIM, PSNR, the body box, the face crop and
the distance between two poses.

SSIM follows Wang et al. 2004 exactly as their reference code: an 11x11 Gaussian window of
sigma 1.5 (normalised to sum 1), K1 = 0.01, K2 = 0.03, L = the data range (255 for 8-bit), only
windows wholly inside the image ("valid"), the SSIM map averaged; colour images are scored per
channel and the channels averaged.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .face import face_box

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
BODY_PAD_X, BODY_PAD_Y = 0.15, 0.10  # fraction of the box's width / height added on each side
BOX_VISIBILITY = 0.3  # the label renderer's threshold: the points drawn are the body that should appear
POSE_VISIBILITY = 0.5


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The 1-D Gaussian whose outer product with itself is MATLAB's fspecial('gaussian', size, sigma)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _as_channels(image: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, C) -> (C, 1, H, W) float64."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3:
        raise ValueError(f"images must be (H, W) or (H, W, C), got shape {a.shape}")
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[:, None]


def ssim_map(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """SSIM of every 11x11 window wholly inside two same-shaped images (H, W) or (H, W, C), averaged
    over the channels: (H - 10, W - 10), entry (i, j) the window centred on pixel (i + 5, j + 5).
    Both sides must be at least 11 px (the window) so the score covers real windows."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"SSIM needs images of one shape, got {np.shape(a)} and {np.shape(b)}")
    if min(np.shape(a)[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} px, got {np.shape(a)[1]}x{np.shape(a)[0]}")
    x, y = _as_channels(a), _as_channels(b)
    g = torch.from_numpy(gaussian_window())
    rows, cols = g.view(1, 1, -1, 1), g.view(1, 1, 1, -1)

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable, 'valid'
        return F.conv2d(F.conv2d(t, rows), cols)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    score = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return score.mean(dim=0)[0].numpy()


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM of two same-shaped images (H, W) or (H, W, C); 1 for identical images."""
    return float(ssim_map(a, b, data_range).mean())


def masked_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray, data_range: float = 255.0) -> float | None:
    """Mean SSIM over the windows centred on a pixel of `mask` (H, W) bool; None when no such window
    lies wholly inside the images (a mask empty or only along the border)."""
    half = SSIM_WINDOW // 2
    centres = np.asarray(mask, bool)[half:-half, half:-half]
    if not centres.any():
        return None
    return float(ssim_map(a, b, data_range)[centres].mean())


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB; +inf for identical images."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"PSNR needs images of one shape, got {np.shape(a)} and {np.shape(b)}")
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def body_box(keypoints: np.ndarray, frame_size: tuple[int, int], pad_x: float = BODY_PAD_X, pad_y: float = BODY_PAD_Y,
             min_visibility: float = BOX_VISIBILITY) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), end exclusive: the box around the visible keypoints (33, 4) widened by
    pad_x of its width on the left and on the right and pad_y of its height above and below,
    clipped to the frame. None when no keypoint is visible or the box misses the frame."""
    points = np.asarray(keypoints, np.float64)
    shown = points[(points[:, 3] >= min_visibility) & np.isfinite(points[:, :2]).all(axis=1), :2]
    if len(shown) == 0:
        return None
    (lo_x, lo_y), (hi_x, hi_y) = shown.min(axis=0), shown.max(axis=0)
    dx, dy = pad_x * (hi_x - lo_x), pad_y * (hi_y - lo_y)
    width, height = frame_size
    x0, y0 = max(0, math.floor(lo_x - dx)), max(0, math.floor(lo_y - dy))
    x1, y1 = min(width, math.floor(hi_x + dx) + 1), min(height, math.floor(hi_y + dy) + 1)  # the pixel holding the extreme point
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def crop_box(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1]


def face_crop(image: np.ndarray, keypoints: np.ndarray, side: int | None = None) -> np.ndarray | None:
    """The face GAN's square crop of an (H, W, C) image (face.face_box on keypoints in its pixels)."""
    box = face_box(keypoints, (image.shape[1], image.shape[0]), side=side)
    return None if box is None else image[box.y0:box.y1, box.x0:box.x1]


def pose_distance(a: np.ndarray, b: np.ndarray, min_visibility: float = POSE_VISIBILITY) -> float:
    """Mean pixel distance between two poses (33, 4) over the landmarks visible in both; NaN if none is."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    both = (a[:, 3] >= min_visibility) & (b[:, 3] >= min_visibility)
    if not both.any():
        return math.nan
    return float(np.linalg.norm(a[both, :2] - b[both, :2], axis=1).mean())
