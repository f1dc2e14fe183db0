"""The person window: a box with the generator's aspect that follows the person through a clip.

Per frame the window must hold every visible keypoint and room for the arms stretched out
(a reach box around the shoulders, sized from the clip's own arm lengths), yet move and zoom
smoothly, or the generator would see the background slide under a still person. So:

1. the centre is the Gaussian-smoothed centre of the keypoints' box (no lag: centred kernel);
2. each frame's needed size is measured around that smoothed centre; the size is the running
   maximum of the needed sizes over +-R frames, then smoothed by a Gaussian truncated at R
   frames, which never drops below any frame's need (each value it averages covers that frame);
3. the box is shifted inside the frame where it fits; a box larger than the frame is centred
   on it and the crop is padded.

Boxes are floats (x0, y0, w, h) in frame pixels: crops are sub-pixel warps, so a slowly moving
window does not jump by whole pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..pose.landmarks import LEFT_SHOULDER, NUM_LANDMARKS, RIGHT_SHOULDER

_LEFT_ARM = (LEFT_SHOULDER, LEFT_SHOULDER + 2, LEFT_SHOULDER + 4)  # shoulder, elbow, wrist
_RIGHT_ARM = (RIGHT_SHOULDER, RIGHT_SHOULDER + 2, RIGHT_SHOULDER + 4)


def _cv2():
    import cv2

    return cv2


@dataclass(frozen=True)
class WindowOptions:
    """min_visibility: keypoints below it are ignored.
    margin: room around the needed box, as a fraction of its size.
    centre_sigma_s / size_sigma_s: Gaussian smoothing of the centre and the size, in seconds.
    reach: include room for both arms stretched out sideways and up, wherever they are now.
    """

    min_visibility: float = 0.5
    margin: float = 0.12
    centre_sigma_s: float = 0.25
    size_sigma_s: float = 0.5
    reach: bool = True


@dataclass(frozen=True)
class WindowTrack:
    """boxes: (frames, 4) float32 of (x0, y0, w, h) in frame pixels; w / h == aspect."""

    boxes: np.ndarray
    aspect: float
    frame_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def centres(self) -> np.ndarray:
        return self.boxes[:, :2] + self.boxes[:, 2:] / 2


def _gaussian(values: np.ndarray, sigma: float, radius: int) -> np.ndarray:
    """Centred Gaussian smoothing along axis 0, edges extended with the end values."""
    if sigma <= 0 or radius < 1 or len(values) < 2:
        return values.astype(np.float64)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([np.repeat(values[:1], radius, 0), values, np.repeat(values[-1:], radius, 0)]).astype(np.float64)
    out = np.zeros(values.shape, np.float64)
    for weight, offset in zip(kernel, offsets + radius, strict=True):
        out += weight * padded[offset:offset + len(values)]
    return out


def _running_max(values: np.ndarray, radius: int) -> np.ndarray:
    padded = np.concatenate([np.repeat(values[:1], radius), values, np.repeat(values[-1:], radius)])
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1).max(axis=1)


def _fill_missing(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Linear interpolation over frames that lack a value (constant beyond the ends)."""
    frames = np.arange(len(values))
    if known.all():
        return values
    out = values.copy()
    for column in range(values.shape[1]):
        out[:, column] = np.interp(frames, frames[known], values[known, column])
    return out


def arm_reach(keypoints: np.ndarray, min_visibility: float) -> float:
    """The clip's arm length (shoulder to elbow to wrist), a high percentile over frames where an
    arm is fully visible; 0 when no arm ever is."""
    lengths = []
    for shoulder, elbow, wrist in (_LEFT_ARM, _RIGHT_ARM):
        seen = (keypoints[:, [shoulder, elbow, wrist], 3] >= min_visibility).all(axis=1)
        upper = np.linalg.norm(keypoints[seen, elbow, :2] - keypoints[seen, shoulder, :2], axis=1)
        lower = np.linalg.norm(keypoints[seen, wrist, :2] - keypoints[seen, elbow, :2], axis=1)
        lengths.append(upper + lower)
    lengths = np.concatenate(lengths)
    return float(np.percentile(lengths, 90)) if len(lengths) else 0.0


def _needed_points(keypoints: np.ndarray, visible: np.ndarray, reach: float) -> list[np.ndarray]:
    """Per frame, the (n, 2) points the window must hold: visible keypoints and the reach box."""
    points = []
    for frame, seen in zip(keypoints, visible, strict=True):
        pts = frame[seen, :2]
        if reach > 0 and seen[LEFT_SHOULDER] and seen[RIGHT_SHOULDER]:
            mid = (frame[LEFT_SHOULDER, :2] + frame[RIGHT_SHOULDER, :2]) / 2
            half = abs(frame[LEFT_SHOULDER, 0] - frame[RIGHT_SHOULDER, 0]) / 2 + reach
            pts = np.concatenate([pts, mid + np.array([[-half, -reach], [half, -reach]], np.float32)])
        points.append(pts)
    return points


def person_windows(keypoints: np.ndarray, frame_size: tuple[int, int], aspect: float, fps: float,
                   options: WindowOptions = WindowOptions()) -> WindowTrack:
    """The window of every frame of a clip's (frames, 33, 4) keypoints (pixels + visibility)."""
    keypoints = np.asarray(keypoints, np.float32)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_LANDMARKS, 4):
        raise ValueError(f"keypoints must be shaped (frames, {NUM_LANDMARKS}, 4), got {keypoints.shape}")
    if aspect <= 0 or fps <= 0:
        raise ValueError(f"aspect and fps must be positive, got {aspect}, {fps}")
    width, height = frame_size
    frames = len(keypoints)
    visible = keypoints[:, :, 3] >= options.min_visibility
    reach = arm_reach(keypoints, options.min_visibility) if options.reach else 0.0
    points = _needed_points(keypoints, visible, reach)
    known = np.array([len(p) > 0 for p in points])
    if not known.any():  # nobody anywhere: the whole frame
        return _whole_frame(frames, frame_size, aspect)
    boxes = np.array([[*p.min(0), *p.max(0)] if len(p) else [0, 0, 0, 0] for p in points], np.float64)
    boxes = _fill_missing(boxes, known)
    centre_sigma = options.centre_sigma_s * fps
    centres = _gaussian((boxes[:, :2] + boxes[:, 2:]) / 2, centre_sigma, int(np.ceil(3 * centre_sigma)))
    needed = np.zeros(frames)
    for i, p in enumerate(points):
        if len(p):
            reach_x = np.abs(p[:, 0] - centres[i, 0]).max() * 2 / aspect
            reach_y = np.abs(p[:, 1] - centres[i, 1]).max() * 2
            needed[i] = max(reach_x, reach_y)
    needed = _fill_missing(needed[:, None], known)[:, 0] * (1 + options.margin)
    size_sigma = options.size_sigma_s * fps
    radius = max(1, int(np.ceil(3 * size_sigma)))
    heights = _gaussian(_running_max(needed, radius), size_sigma, radius)
    heights = np.clip(heights, 8.0, max(height, width / aspect))  # no larger than the box that shows the whole frame
    return WindowTrack(_placed(centres, heights, frame_size, aspect), float(aspect), (int(width), int(height)))


def _placed(centres: np.ndarray, heights: np.ndarray, frame_size: tuple[int, int], aspect: float) -> np.ndarray:
    """Boxes shifted inside the frame where they fit, centred on it where they do not."""
    sizes = np.stack([heights * aspect, heights], axis=1)
    limits = np.asarray(frame_size, np.float64)
    origin = centres - sizes / 2
    inside = np.clip(origin, 0.0, np.maximum(limits - sizes, 0.0))
    origin = np.where(sizes <= limits, inside, (limits - sizes) / 2)
    return np.concatenate([origin, sizes], axis=1).astype(np.float32)


def _whole_frame(frames: int, frame_size: tuple[int, int], aspect: float) -> WindowTrack:
    width, height = frame_size
    h = max(height, width / aspect)
    box = np.array([(width - h * aspect) / 2, (height - h) / 2, h * aspect, h], np.float32)
    return WindowTrack(np.tile(box, (frames, 1)), float(aspect), (int(width), int(height)))


def _window_matrix(box, out_size: tuple[int, int]) -> np.ndarray:
    """The affine map from frame pixels to window pixels (pixel centres on integers)."""
    x0, y0, w, h = (float(v) for v in box)
    sx, sy = out_size[0] / w, out_size[1] / h
    return np.array([[sx, 0, (0.5 - x0) * sx - 0.5], [0, sy, (0.5 - y0) * sy - 0.5]], np.float64)


def _warp(image: np.ndarray, matrix: np.ndarray, out_size: tuple[int, int], border: str) -> np.ndarray:
    """warpAffine with a pre-blur when it shrinks (bilinear sampling alone would alias)."""
    cv2 = _cv2()
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.9:
        sigma = 0.5 * (1.0 / scale - 1.0) + 0.3
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    mode = cv2.BORDER_REPLICATE if border == "replicate" else cv2.BORDER_CONSTANT
    return cv2.warpAffine(image, matrix, tuple(int(v) for v in out_size), flags=cv2.INTER_LINEAR, borderMode=mode, borderValue=0)


def cut_window(frame: np.ndarray, box, out_size: tuple[int, int], border: str = "replicate") -> np.ndarray:
    """The window `box` of `frame`, resampled to `out_size` (w, h): the generator's input or target.
    Outside the frame: the edge pixels repeated ("replicate") or zeros ("constant")."""
    return _warp(frame, _window_matrix(box, out_size), out_size, border)


def recut_window(window: np.ndarray, from_box, to_box) -> np.ndarray:
    """A window image cut at `from_box`, re-cut to `to_box` at the same size without going through
    the full frame (the previous generated frame as the current frame's previous-frame input)."""
    size = (window.shape[1], window.shape[0])
    into = _window_matrix(to_box, size)
    back = _cv2().invertAffineTransform(_window_matrix(from_box, size))
    matrix = into[:, :2] @ back[:, :2], into[:, :2] @ back[:, 2] + into[:, 2]
    return _warp(window, np.concatenate([matrix[0], matrix[1][:, None]], axis=1), size, "replicate")


@dataclass(frozen=True)
class Pasted:
    """A window resampled into frame pixels: `patch` covers rows y0:y1 and columns x0:x1 of the
    frame; pixels of the patch outside the window are 0 (so a pasted alpha is 0 there)."""

    patch: np.ndarray
    y0: int
    y1: int
    x0: int
    x1: int

    def full(self, frame_size: tuple[int, int]) -> np.ndarray:
        """The whole frame, zeros outside the patch."""
        out = np.zeros((frame_size[1], frame_size[0], *self.patch.shape[2:]), self.patch.dtype)
        out[self.y0:self.y1, self.x0:self.x1] = self.patch
        return out


def paste_window(window: np.ndarray, box, frame_size: tuple[int, int], border: str = "constant") -> Pasted:
    """Resample a generated window (h, w[, c]) back into a `frame_size` (w, h) frame at `box`;
    only the part of the frame the window covers is computed. Past the window's edge: zeros
    ("constant", for alpha) or its edge pixels ("replicate", for colour under a fading alpha)."""
    width, height = frame_size
    x0, y0, w, h = (float(v) for v in box)
    left, top = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    right, bottom = min(width, int(np.ceil(x0 + w))), min(height, int(np.ceil(y0 + h)))
    if right <= left or bottom <= top:
        return Pasted(np.zeros((0, 0, *window.shape[2:]), window.dtype), 0, 0, 0, 0)
    size = (window.shape[1], window.shape[0])
    to_window = _window_matrix((x0 - left, y0 - top, w, h), size)
    matrix = _cv2().invertAffineTransform(to_window)
    patch = _warp(window, matrix, (right - left, bottom - top), border)
    return Pasted(patch, top, bottom, left, right)


def scale_box(box, factor: float) -> np.ndarray:
    """The same window in a frame resized by `factor` (an output height below the native one)."""
    return np.asarray(box, np.float32) * np.float32(factor)
