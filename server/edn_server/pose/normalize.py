"""Global pose normalization (Everybody Dance Now, Sec. 3.4): map a source dancer's poses into the
target subject's frame, body size and floor, plus the user's scale, offset and mirror overrides.

For each subject we find the farthest (smallest image y) and closest (largest y) positions of the
feet on the floor and the body height at each. A source frame whose feet are at y gets the scale
and the floor position interpolated linearly between the far and close values:

    u     = (y - s_far) / (s_close - s_far)
    scale = t_far_h / s_far_h + u * (t_close_h / s_close_h - t_far_h / s_far_h)
    y'    = t_far + u * (t_close - t_far)

Under a pinhole camera looking at a flat floor, height and floor y are both linear in 1/depth, so
this mapping is exact, not just a blend. Horizontally the median hip centres are aligned and x is
scaled by the same factor. When a subject's feet barely move in depth (dancing in place), the far
and close values are the same place measured twice with noise, so the mapping falls back to one
constant scale (the heights where each subject usually stands) and aligns the median floor lines.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Annotated

import numpy as np
from annotated_types import Ge, Gt, Le, MaxLen

from ..errors import BAD_PARAMS, NO_ANKLES, EdnError
from .landmarks import ANKLES, HIPS, MIRROR, NOSE
from .sequence import MAX_FRAME_SIDE, PoseSequence, frame_size

STATS_VERSION = 1
ANKLE_VISIBILITY = 0.5
FAR_PERCENTILE, CLOSE_PERCENTILE = 5.0, 95.0  # robust extremes: a few bad detections cannot set them
HEIGHT_PERCENTILE = 90.0  # people crouch and bend far more often than they stretch above standing height
BAND = 0.15  # frames within this fraction of the ankle range from an extreme measure the height there
MIN_DEPTH_RANGE = 0.03  # an ankle range below this fraction of body height is in-place motion, not depth
SCALE_EXTRAPOLATION = (-1.0, 2.0)  # u beyond the measured range: keep the scale from running away
MAX_STAT_PX = 16.0 * MAX_FRAME_SIDE  # statistics are pixels of a frame; far beyond one is not a measurement
MAX_OFFSET_PX = 100_000.0  # far beyond any frame: a slider can push the figure out of view, not into overflow


MAX_KEYFRAMED = 200_000  # per-frame values: one per frame of a range (a pose file holds at most this many)
Scale = Annotated[float, Gt(0), Le(10)]
Offset = Annotated[float, Ge(-MAX_OFFSET_PX), Le(MAX_OFFSET_PX)]


@dataclasses.dataclass(frozen=True)
class NormalizeOptions:
    """The one value normalization settings travel as, from a job's `normalization` params (the HTTP
    service validates it as it is: the annotated bounds and no unknown fields) or the CLI to here.

    auto: the paper's mapping onto the target; off = only fit the source frame into the target's, uniformly.
    scale: multiplies the size, about the feet (they stay on the floor).
    offset_x, offset_y: shift in target pixels (right, down).
    mirror: flip the motion left-right, about the dancer's own centre, swapping left and right limbs.
    scale, offset_x and offset_y are one number for the whole clip, or one per frame (keyframed in
    Blender: as many values as the range has frames, each within the same bounds).
    """

    # Read by pydantic when a job's params hold this type: no unknown fields, never NaN or infinity.
    __pydantic_config__ = {"extra": "forbid", "allow_inf_nan": False}

    auto: bool = True
    scale: Scale | Annotated[tuple[Scale, ...], MaxLen(MAX_KEYFRAMED)] = 1.0
    offset_x: Offset | Annotated[tuple[Offset, ...], MaxLen(MAX_KEYFRAMED)] = 0.0
    offset_y: Offset | Annotated[tuple[Offset, ...], MaxLen(MAX_KEYFRAMED)] = 0.0
    mirror: bool = False

    def validate(self, frames: int | None = None) -> None:
        """BAD_PARAMS naming the first bad value; with `frames`, per-frame values must number that many."""
        for name in ("scale", "offset_x", "offset_y"):
            values = np.atleast_1d(np.asarray(getattr(self, name), dtype=np.float64))
            if name == "scale" and not (np.isfinite(values).all() and (values > 0).all()):
                raise EdnError(BAD_PARAMS, f"Normalization scale {_first_bad(values)} is invalid: use a positive factor "
                                           "(1.0 keeps the automatic size).")
            if name != "scale" and not (np.isfinite(values).all() and (np.abs(values) <= MAX_OFFSET_PX).all()):
                raise EdnError(BAD_PARAMS, f"Normalization {name}={_first_bad(values, MAX_OFFSET_PX)} is invalid: use a finite "
                                           f"number of target pixels from {-MAX_OFFSET_PX:g} to {MAX_OFFSET_PX:g}.")
            keyframed = isinstance(getattr(self, name), tuple | list)
            if keyframed and frames is not None and len(values) != frames:
                raise EdnError(BAD_PARAMS, f"Normalization {name} has {len(values)} per-frame values but the range has "
                                           f"{frames} frames; send one value per frame, or one number for all.")

    def per_frame(self, name: str, frames: int) -> np.ndarray:
        """The setting `name` as one float64 value per frame (validate(frames) first)."""
        return np.broadcast_to(np.asarray(getattr(self, name), dtype=np.float64), (frames,)).copy()


def _first_bad(values: np.ndarray, limit: float | None = None) -> float:
    """The first value that is not finite, not positive (scale) or past `limit` (offsets)."""
    bad = ~np.isfinite(values) | ((values <= 0) if limit is None else (np.abs(values) > limit))
    return float(values[bad][0]) if bad.any() else float(values[0])


@dataclasses.dataclass(frozen=True)
class PoseStats:
    """Where a subject stands and how tall it is, in pixels of its own frame (y grows downwards).

    ankle_far_y / ankle_close_y: robust smallest / largest y of the feet on the floor.
    height_far / height_close: nose-to-floor height when standing at those places.
    hip_x: median hip-centre x. ankle_y: median floor y. standing_height: typical nose-to-floor
    height overall (a high percentile: crouching frames do not shrink it).
    """

    name: str
    frame_size: tuple[int, int]
    ankle_far_y: float
    ankle_close_y: float
    height_far: float
    height_close: float
    hip_x: float
    ankle_y: float
    standing_height: float
    frames_used: int

    @property
    def ankle_range(self) -> float:
        return self.ankle_close_y - self.ankle_far_y

    @property
    def has_depth(self) -> bool:
        """Whether the subject moved toward and away from the camera enough to measure perspective."""
        return self.ankle_range >= MIN_DEPTH_RANGE * self.standing_height

    def height_at(self, floor_y: float) -> float:
        """Standing height of the subject with its feet at `floor_y` (linear in y, as perspective is)."""
        if not self.has_depth:
            return self.standing_height
        u = np.clip((floor_y - self.ankle_far_y) / self.ankle_range, *SCALE_EXTRAPOLATION)
        return float(self.height_far + u * (self.height_close - self.height_far))

    @classmethod
    def from_poses(cls, seq: PoseSequence, name: str = "the clip") -> PoseStats:
        floor = floor_line(seq)
        frames = np.flatnonzero(seq.usable & np.isfinite(floor))
        if len(frames) == 0:
            raise EdnError(
                NO_ANKLES,
                f"No frame of {name} shows the ankles clearly, so its floor and body height cannot be measured. "
                "Use a clip where the whole body, feet included, is in frame, or turn automatic normalization off "
                "(--no-normalize, or the Automatic Normalization toggle) and place the figure with scale and offsets.",
            )
        feet = floor[frames].astype(np.float64)
        heights = feet - seq.keypoints[frames, NOSE, 1].astype(np.float64)
        far, close = np.percentile(feet, [FAR_PERCENTILE, CLOSE_PERCENTILE])
        standing = float(np.percentile(heights, HEIGHT_PERCENTILE))
        band = max(BAND * (close - far), 0.01 * standing)
        height_far = float(np.percentile(heights[feet <= far + band], HEIGHT_PERCENTILE))
        height_close = float(np.percentile(heights[feet >= close - band], HEIGHT_PERCENTILE))
        if height_close < height_far:  # nearer must look taller; otherwise crouching, not depth, set them
            height_far = height_close = standing
        hips = seq.keypoints[seq.usable][:, list(HIPS), 0].mean(axis=1)
        return cls(
            name=name, frame_size=tuple(seq.size), ankle_far_y=float(far), ankle_close_y=float(close),
            height_far=height_far, height_close=height_close, hip_x=float(np.median(hips)),
            ankle_y=float(np.median(feet)), standing_height=standing, frames_used=int(len(frames)),
        )

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["frame_size"] = list(self.frame_size)
        data["version"] = STATS_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict) -> PoseStats:
        fields = [f.name for f in dataclasses.fields(cls)]
        missing = [f for f in fields if f not in data]
        if missing:
            raise EdnError(BAD_PARAMS, f"Pose statistics lack {', '.join(missing)}: they were not written by PoseStats.to_dict. "
                                       "Recompute them from the target's poses.")
        values = {f: data[f] for f in fields}
        values["name"] = str(values["name"])
        values["frame_size"] = frame_size(data["frame_size"], "frame_size")
        for f in fields:
            if f not in ("name", "frame_size", "frames_used"):
                values[f] = float(values[f])
                if not math.isfinite(values[f]) or abs(values[f]) > MAX_STAT_PX:
                    raise EdnError(BAD_PARAMS, f"Pose statistic {f}={data[f]!r} is not a finite number of pixels under "
                                               f"{MAX_STAT_PX:g}. Recompute the statistics from the target's poses.")
        values["frames_used"] = int(values["frames_used"])
        return cls(**values)


def floor_line(seq: PoseSequence) -> np.ndarray:
    """Per frame, the y of the lower visible ankle (the foot carrying the weight); NaN where no ankle
    is visible inside the picture. A lifted foot is higher, so it does not pull the floor up."""
    ankles = seq.keypoints[:, list(ANKLES)]
    w, h = seq.size
    inside = (ankles[..., 0] >= 0) & (ankles[..., 0] < w) & (ankles[..., 1] >= 0) & (ankles[..., 1] < h)
    visible = (ankles[..., 3] >= ANKLE_VISIBILITY) & inside
    y = np.where(visible, ankles[..., 1], -np.inf).max(axis=1)
    return np.where(np.isfinite(y), y, np.nan)


def mirror_keypoints(keypoints: np.ndarray, centre_x: float) -> np.ndarray:
    """Flip (frames, 33, 4) keypoints about x = centre_x and swap left and right landmarks."""
    mirrored = keypoints[:, MIRROR].copy()
    mirrored[..., 0] = 2.0 * centre_x - mirrored[..., 0]
    return mirrored


def normalize_poses(source: PoseSequence, target_stats: PoseStats, options: NormalizeOptions | None = None,
                    source_name: str = "the source clip") -> PoseSequence:
    """The source's poses in the target's frame (size = target_stats.frame_size); masks, fps and
    frame numbers unchanged; frames without keypoints stay empty."""
    options = options or NormalizeOptions()
    options.validate(len(source))
    usable = source.usable
    keypoints = source.keypoints.astype(np.float64)
    if not usable.any():
        return source.replace(keypoints=np.zeros_like(source.keypoints), size=target_stats.frame_size)
    if options.mirror:
        centre = float(np.median(keypoints[usable][:, list(HIPS), 0].mean(axis=1)))
        keypoints[usable] = mirror_keypoints(keypoints[usable], centre)
        source = source.replace(keypoints=keypoints.astype(np.float32))

    feet = _filled_floor(source, keypoints)
    if options.auto:
        scale, feet_out, x_shift = _automatic_mapping(source, feet, target_stats, source_name)
    else:
        scale, feet_out, x_shift = _fit_into_frame(source.size, target_stats.frame_size, feet)
    out = np.empty_like(keypoints)
    out[..., 0] = x_shift[:, None] + scale[:, None] * keypoints[..., 0]
    out[..., 1] = feet_out[:, None] + scale[:, None] * (keypoints[..., 1] - feet[:, None])
    out[..., 2] = scale[:, None] * keypoints[..., 2]
    out[..., 3] = keypoints[..., 3]

    user_scale = options.per_frame("scale", len(source))[:, None]
    if (user_scale != 1.0).any():  # about the feet: x about the dancer's median centre, y about each frame's floor
        centre_x = float(np.median(out[usable][:, list(HIPS), 0].mean(axis=1)))
        out[..., 0] = centre_x + user_scale * (out[..., 0] - centre_x)
        out[..., 1] = feet_out[:, None] + user_scale * (out[..., 1] - feet_out[:, None])
        out[..., 2] *= user_scale
    out[..., 0] += options.per_frame("offset_x", len(source))[:, None]
    out[..., 1] += options.per_frame("offset_y", len(source))[:, None]
    out[~usable] = 0.0
    return source.replace(keypoints=out.astype(np.float32), size=target_stats.frame_size)


def _filled_floor(seq: PoseSequence, keypoints: np.ndarray) -> np.ndarray:
    """The floor line of every frame: measured where an ankle is visible, interpolated in time
    between such frames, and the lowest visible point of the body where the clip never shows one."""
    floor = floor_line(seq)
    known = np.flatnonzero(np.isfinite(floor) & seq.usable)
    if len(known):
        return np.interp(np.arange(len(seq)), known, floor[known])
    visible = keypoints[..., 3] >= ANKLE_VISIBILITY
    lowest = np.where(visible, keypoints[..., 1], -np.inf).max(axis=1)
    return np.where(np.isfinite(lowest), lowest, keypoints[..., 1].max(axis=1))


def _automatic_mapping(source: PoseSequence, feet: np.ndarray, target: PoseStats, source_name: str):
    """Per-frame scale, mapped floor y and horizontal shift of the paper's mapping."""
    src = PoseStats.from_poses(source, name=source_name)
    if src.has_depth and target.has_depth:
        u = (feet - src.ankle_far_y) / src.ankle_range
        ratio_far = target.height_far / src.height_far
        ratio_close = target.height_close / src.height_close
        scale = ratio_far + np.clip(u, *SCALE_EXTRAPOLATION) * (ratio_close - ratio_far)
        feet_out = target.ankle_far_y + u * target.ankle_range
    else:  # one constant scale: the two bodies' heights where each usually stands
        scale = np.full(len(feet), target.height_at(target.ankle_y) / src.height_at(src.ankle_y))
        feet_out = target.ankle_y + scale * (feet - src.ankle_y)
    x_shift = target.hip_x - scale * src.hip_x
    return scale, feet_out, x_shift


def _fit_into_frame(src_size: tuple[int, int], dst_size: tuple[int, int], feet: np.ndarray):
    """Uniform scale that fits the source frame inside the target frame, centred (no distortion)."""
    factor = min(dst_size[0] / src_size[0], dst_size[1] / src_size[1])
    left = (dst_size[0] - factor * src_size[0]) / 2.0
    top = (dst_size[1] - factor * src_size[1]) / 2.0
    scale = np.full(len(feet), factor)
    return scale, top + factor * feet, np.full(len(feet), left)
