"""Zero-lag temporal smoothing of keypoints for offline video.

The filter is an adaptive, centred local-quadratic regression (a LOESS with a Gaussian window):
for every frame and joint it fits a parabola to the joint's neighbouring positions, weighted by a
Gaussian in time and by the detector's visibility, and keeps the parabola's value at that frame.

Why this shape:
- Centred and symmetric, so it has no lag: a symmetric peak stays on its frame (a causal filter run
  forwards, even a one-euro one, delays motion; running it backwards too only approximately cancels).
- A parabola follows a turning point, where a plain moving average would flatten it.
- The window shrinks with the joint's local speed (measured around the frame, not at it, since the
  speed at a turning point is zero), so still joints are averaged over many frames and lose their
  jitter while fast ones are barely touched and keep their peaks.
- Only frames that have keypoints are used, and runs of missing frames longer than `max_gap`
  split the clip, so nothing is smoothed across a person leaving the picture.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from ..errors import BAD_PARAMS, EdnError
from .landmarks import HIPS, LEFT_SHOULDER, RIGHT_SHOULDER
from .sequence import PoseSequence

_BLOCK_FRAMES = 2048
KEYFRAME_STEP = 0.05  # keyframed strengths are applied in steps this fine


@dataclasses.dataclass(frozen=True)
class SmoothOptions:
    """strength: 0 = off, 1 = default, larger = smoother (scales the window of still joints).
    still_window_s: Gaussian sigma, in seconds, of the window for a still joint at strength 1.
    min_window_frames / max_window_frames: bounds on that sigma in frames (a low frame rate still
        gets some smoothing; a high one does not average over a whole second).
    fast_speed: joint speed, in torso lengths per second, at which the window has shrunk to half.
    max_gap: missing frames bridged inside one stretch; longer gaps split the clip.
    interpolated_weight: trust in frames the detector filled in, relative to detected ones.
    visibility_window_frames: sigma of the light smoothing of visibility (keeps limbs from
        flickering on and off at a threshold); 0 keeps visibility as detected.
    """

    strength: float = 1.0
    still_window_s: float = 0.1
    min_window_frames: float = 1.5
    max_window_frames: float = 6.0
    fast_speed: float = 1.5
    max_gap: int = 2
    interpolated_weight: float = 0.5
    visibility_window_frames: float = 1.0


def smooth_poses(seq: PoseSequence, strength: float | Sequence[float] | None = None,
                 options: SmoothOptions | None = None) -> PoseSequence:
    """Return a smoothed copy of `seq` (same masks, fps, size); frames without keypoints are kept as they are.
    `strength` overrides options.strength (0 = off, 1 = default); one per frame when keyframed (see _keyframed)."""
    options = options or SmoothOptions()
    if isinstance(strength, tuple | list):
        return _keyframed(seq, strength, options)
    if strength is not None:
        options = dataclasses.replace(options, strength=strength)
    return _smoothed(seq, options)


def _smoothed(seq: PoseSequence, options: SmoothOptions) -> PoseSequence:
    check_strength(options.strength)
    keypoints = seq.keypoints.copy()
    sigma_still = _still_sigma(seq.fps, options)
    if sigma_still <= 0 or len(seq) < 2:
        return seq.replace(keypoints=keypoints)
    usable = seq.usable
    filled_in = np.where(seq.interpolated & ~seq.detected, options.interpolated_weight, 1.0)[:, None]
    weights = np.clip(seq.keypoints[:, :, 3], 0.05, 1.0) * filled_in
    weights = weights * usable[:, None]
    torso = _torso_length(seq)
    radius = math.ceil(3 * sigma_still)
    # Every step below looks at most `margin` frames away, so long clips are done in blocks (bounded
    # memory) with that much context on each side, which gives the same result as one pass.
    margin = 3 * radius + 4
    for start, end in stretches(usable, options.max_gap):
        for block in range(start, end, _BLOCK_FRAMES):
            lo, hi = max(start, block - margin), min(end, block + _BLOCK_FRAMES + margin)
            keep_from, keep_to = block - lo, min(end, block + _BLOCK_FRAMES) - lo
            smoothed = _smooth_stretch(seq, weights[lo:hi], sigma_still, radius, torso, lo, hi, options)
            part = slice(block, lo + keep_to)
            keep = usable[part]
            keypoints[part][keep] = smoothed[keep_from:keep_to][keep]
    return seq.replace(keypoints=keypoints.astype(np.float32))


def check_strength(strength: float | Sequence[float], frames: int | None = None) -> None:
    """BAD_PARAMS for a bad strength; per-frame strengths (keyframed) must number `frames` when given."""
    values = strength if isinstance(strength, tuple | list) else (strength,)
    for value in values:
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise EdnError(BAD_PARAMS, f"Smoothing strength {value} is invalid: use 0 (off), 1 (default) or a larger positive number.")
    if values is strength and frames is not None and len(values) != frames:
        raise EdnError(BAD_PARAMS, f"Smoothing has {len(values)} per-frame values but the range has {frames} frames; "
                                   "send one value per frame, or one number for all.")


def _keyframed(seq: PoseSequence, strengths: Sequence[float], options: SmoothOptions) -> PoseSequence:
    """One strength per frame (keyframed): each frame takes its keypoints from a pass at its own
    strength, rounded to KEYFRAME_STEP (a ramp costs one pass per step it crosses), so a change of
    strength is a change of window there, not a blend of two smoothings."""
    check_strength(strengths, len(seq))
    steps = np.round(np.asarray(strengths, dtype=np.float64) / KEYFRAME_STEP) * KEYFRAME_STEP
    keypoints = seq.keypoints.copy()
    for value in np.unique(steps):
        frames = steps == value
        keypoints[frames] = _smoothed(seq, dataclasses.replace(options, strength=float(value))).keypoints[frames]
    return seq.replace(keypoints=keypoints)


def _smooth_stretch(seq: PoseSequence, weights: np.ndarray, sigma_still: float, radius: int, torso: float,
                    lo: int, hi: int, options: SmoothOptions) -> np.ndarray:
    """Smoothed (frames, joints, 4) keypoints of frames [lo, hi), one stretch or part of one."""
    positions = seq.keypoints[lo:hi, :, :3].astype(np.float64)
    weights = weights.astype(np.float64)
    speed = _local_speed(positions, weights, sigma_still) * seq.fps / torso
    sigma = sigma_still / (1.0 + (speed / options.fast_speed) ** 2)
    out = seq.keypoints[lo:hi].astype(np.float64)
    out[:, :, :3] = _local_quadratic(positions, weights, sigma, radius)
    if options.visibility_window_frames > 0:
        vis_sigma = np.full(weights.shape, options.visibility_window_frames * min(options.strength, 1.0))
        usable = np.broadcast_to(seq.usable[lo:hi, None], weights.shape).astype(np.float64)
        out[:, :, 3] = np.clip(_gaussian_average(out[:, :, 3:4], usable, vis_sigma)[..., 0], 0.0, 1.0)
    return out


def stretches(usable: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    """[start, end) spans of frames to smooth together: usable frames joined across gaps of at most `max_gap`."""
    frames = np.flatnonzero(usable)
    if len(frames) == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) > max_gap + 1)
    starts = np.concatenate([[frames[0]], frames[breaks + 1]])
    ends = np.concatenate([frames[breaks], [frames[-1]]]) + 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _still_sigma(fps: float, options: SmoothOptions) -> float:
    if options.strength == 0:
        return 0.0
    sigma = float(np.clip(options.still_window_s * fps, options.min_window_frames, options.max_window_frames))
    return sigma * options.strength


def _torso_length(seq: PoseSequence) -> float:
    """Median shoulder-centre to hip-centre distance in pixels: the body's own unit of speed."""
    k = seq.keypoints[seq.usable]
    if len(k):
        shoulders = k[:, [LEFT_SHOULDER, RIGHT_SHOULDER], :2].mean(axis=1)
        hips = k[:, list(HIPS), :2].mean(axis=1)
        length = float(np.median(np.linalg.norm(shoulders - hips, axis=1)))
        if length > 1.0:
            return length
    return max(seq.size[1], 1) / 4.0  # a standing person's torso is roughly a quarter of the frame


def _windows(frames: int, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour indices (frames, 2r+1), their offsets, and which of them lie inside the stretch."""
    offsets = np.arange(-radius, radius + 1)
    index = np.arange(frames)[:, None] + offsets[None, :]
    inside = (index >= 0) & (index < frames)
    return np.clip(index, 0, frames - 1), offsets, inside


def _kernel(sigma: np.ndarray, weights: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-in-time times per-frame weight, (frames, 2r+1, joints), and the offsets."""
    index, offsets, inside = _windows(len(weights), radius)
    gauss = np.exp(-0.5 * (offsets[None, :, None] / np.maximum(sigma[:, None, :], 1e-3)) ** 2)
    return gauss * weights[index] * inside[:, :, None], offsets


def _gaussian_average(values: np.ndarray, weights: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Weighted local mean of values (frames, joints, c) with per-frame, per-joint sigma (frames, joints)."""
    radius = max(1, math.ceil(3 * float(sigma.max(initial=0.0))))
    kernel, _ = _kernel(sigma, weights, radius)
    index, _, _ = _windows(len(values), radius)
    total = kernel.sum(axis=1)
    summed = np.einsum("tuj,tujc->tjc", kernel, values[index])
    return np.where(total[..., None] > 0, summed / np.maximum(total[..., None], 1e-12), values)


def _local_speed(positions: np.ndarray, weights: np.ndarray, sigma_still: float) -> np.ndarray:
    """Image-plane speed in pixels per frame, pre-smoothed against jitter and spread over the
    neighbourhood (a running maximum), so a fast joint counts as fast through its turning points."""
    frames, joints = weights.shape
    if frames < 3:
        return np.zeros((frames, joints))
    mean = _gaussian_average(positions[..., :2], weights, np.full((frames, joints), sigma_still))
    speed = np.linalg.norm(np.gradient(mean, axis=0), axis=-1)
    radius = max(1, math.ceil(2 * sigma_still))
    index, _, inside = _windows(frames, radius)
    return np.where(inside[:, :, None], speed[index], 0.0).max(axis=1)


def _local_quadratic(positions: np.ndarray, weights: np.ndarray, sigma: np.ndarray, radius: int) -> np.ndarray:
    """Value at each frame of a weighted least-squares parabola through the joint's neighbours.

    A small ridge on the slope and curvature keeps the fit defined where the window holds fewer
    than three frames (stretch ends, a nearly zero sigma); it then tends to the weighted mean.
    """
    kernel, offsets = _kernel(sigma, weights, radius)
    index, _, _ = _windows(len(positions), radius)
    u = offsets.astype(np.float64)[None, :, None]
    moments = [(kernel * u**k).sum(axis=1) for k in range(5)]  # each (frames, joints)
    s0, s1 = moments[0], moments[1]
    ridge = 1e-3 * s0
    s2, s3, s4 = moments[2], moments[3], moments[4]
    neighbours = positions[index]  # (frames, 2r+1, joints, c)
    r0, r1, r2 = (np.einsum("tuj,tujc->tjc", kernel * u**k, neighbours) for k in range(3))
    # Only the parabola's value at the frame is needed: the first row of the inverse of the
    # symmetric 3x3 normal matrix, in closed form (much faster than a batched solve).
    m11, m22 = s2 + ridge, s4 + ridge
    c0 = m11 * m22 - s3 * s3
    c1 = s2 * s3 - s1 * m22
    c2 = s1 * s3 - m11 * s2
    det = s0 * c0 + s1 * c1 + s2 * c2
    solvable = det > 1e-12 * np.maximum(s0, 1e-300) ** 3
    safe_det = np.where(solvable, det, 1.0)[..., None]
    value = (c0[..., None] * r0 + c1[..., None] * r1 + c2[..., None] * r2) / safe_det
    mean = r0 / np.maximum(s0, 1e-12)[..., None]
    value = np.where(solvable[..., None], value, mean)
    return np.where((s0 <= 1e-12)[..., None], positions, value)
