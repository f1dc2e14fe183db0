"""Label images in the Everybody Dance Now style: a coloured stick figure on black.

Every limb has its own colour (the generator tells limbs apart by colour alone), the person's right
side in warm hues and the left in cool ones, so a figure seen from the back is not read as one seen
from the front. The face (eyes, ears, nose, mouth) and hands (wrist, pinky, index, thumb) are drawn
thinner. Lines are anti-aliased and placed with sub-pixel precision, so slow motion moves the
figure smoothly instead of in whole-pixel steps.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_dir
from ..errors import BAD_PARAMS, NO_FRAMES, EdnError
from ..media import VideoWriter, write_image
from ..names import RENDER_STAGE, frame_name
from ..progress import Progress, check_cancelled, no_progress
from .landmarks import INDEX, NUM_LANDMARKS
from .sequence import PoseSequence, frame_size

VISIBILITY_THRESHOLD = 0.3
NECK = NUM_LANDMARKS  # a virtual point between the shoulders, appended while drawing
STAGE = RENDER_STAGE
_SUBPIXEL_BITS = 4
_I = INDEX

# (from, to, RGB colour, is_detail): body limbs first, so detail lines are drawn over them.
LIMBS: tuple[tuple[int, int, tuple[int, int, int], bool], ...] = (
    # centre
    (_I["left_shoulder"], _I["right_shoulder"], (170, 0, 255), False),
    (_I["left_hip"], _I["right_hip"], (255, 0, 128), False),
    (NECK, _I["nose"], (255, 0, 255), False),
    # right side: warm
    (_I["right_shoulder"], _I["right_hip"], (255, 102, 0), False),
    (_I["right_hip"], _I["right_knee"], (204, 0, 51), False),
    (_I["right_knee"], _I["right_ankle"], (255, 128, 128), False),
    (_I["right_shoulder"], _I["right_elbow"], (255, 0, 0), False),
    (_I["right_elbow"], _I["right_wrist"], (255, 170, 0), False),
    # left side: cool
    (_I["left_shoulder"], _I["left_hip"], (0, 204, 102), False),
    (_I["left_hip"], _I["left_knee"], (0, 0, 255), False),
    (_I["left_knee"], _I["left_ankle"], (128, 128, 255), False),
    (_I["left_shoulder"], _I["left_elbow"], (0, 255, 0), False),
    (_I["left_elbow"], _I["left_wrist"], (0, 255, 255), False),
    # feet
    (_I["right_ankle"], _I["right_heel"], (153, 76, 0), True),
    (_I["right_heel"], _I["right_foot_index"], (153, 76, 0), True),
    (_I["right_ankle"], _I["right_foot_index"], (153, 76, 0), True),
    (_I["left_ankle"], _I["left_heel"], (0, 102, 102), True),
    (_I["left_heel"], _I["left_foot_index"], (0, 102, 102), True),
    (_I["left_ankle"], _I["left_foot_index"], (0, 102, 102), True),
    # face
    (_I["nose"], _I["right_eye_inner"], (255, 204, 153), True),
    (_I["right_eye_inner"], _I["right_eye"], (255, 204, 153), True),
    (_I["right_eye"], _I["right_eye_outer"], (255, 204, 153), True),
    (_I["right_eye_outer"], _I["right_ear"], (255, 204, 153), True),
    (_I["nose"], _I["left_eye_inner"], (153, 255, 204), True),
    (_I["left_eye_inner"], _I["left_eye"], (153, 255, 204), True),
    (_I["left_eye"], _I["left_eye_outer"], (153, 255, 204), True),
    (_I["left_eye_outer"], _I["left_ear"], (153, 255, 204), True),
    (_I["mouth_left"], _I["mouth_right"], (255, 255, 255), True),
    # hands
    (_I["right_wrist"], _I["right_pinky"], (255, 255, 0), True),
    (_I["right_wrist"], _I["right_index"], (255, 255, 0), True),
    (_I["right_pinky"], _I["right_index"], (255, 255, 0), True),
    (_I["right_wrist"], _I["right_thumb"], (255, 230, 120), True),
    (_I["left_wrist"], _I["left_pinky"], (0, 128, 255), True),
    (_I["left_wrist"], _I["left_index"], (0, 128, 255), True),
    (_I["left_pinky"], _I["left_index"], (0, 128, 255), True),
    (_I["left_wrist"], _I["left_thumb"], (120, 170, 255), True),
)


def _point_styles() -> tuple[np.ndarray, np.ndarray]:
    """Each landmark is dotted in the colour of the first limb touching it, passing over the
    shoulder and hip lines (so left and right joints differ); points only on detail lines are smaller."""
    colours = np.full((NUM_LANDMARKS + 1, 3), -1, np.int32)
    detail = np.ones(NUM_LANDMARKS + 1, bool)
    crossing = {(_I["left_shoulder"], _I["right_shoulder"]), (_I["left_hip"], _I["right_hip"])}
    for a, b, colour, is_detail in LIMBS:
        for point in (a, b):
            if (a, b) not in crossing and colours[point, 0] < 0:
                colours[point] = colour
            detail[point] &= is_detail
    return np.maximum(colours, 0), detail


POINT_COLOURS, POINT_IS_DETAIL = _point_styles()


def line_width(size: tuple[int, int]) -> int:
    """Body line thickness in pixels: about 1% of the shorter side (5 px at 512)."""
    return max(1, round(min(size) / 100))


def letterbox(src_size: tuple[int, int], size: tuple[int, int]) -> tuple[float, tuple[float, float]]:
    """Uniform scale and offset that fit a src_size frame inside `size`, centred (never distorted)."""
    scale = min(size[0] / src_size[0], size[1] / src_size[1])
    return scale, ((size[0] - scale * src_size[0]) / 2.0, (size[1] - scale * src_size[1]) / 2.0)


def render_label(keypoints: np.ndarray, size: tuple[int, int], src_size: tuple[int, int] | None = None,
                 scale: float | None = None, offset: tuple[float, float] = (0.0, 0.0),
                 visibility_threshold: float = VISIBILITY_THRESHOLD) -> np.ndarray:
    """One (h, w, 3) uint8 RGB label image of (33, 4) keypoints [x, y, z, visibility].

    Pixels map as p * scale + offset; with `src_size` instead (the frame the keypoints refer to)
    they are letterboxed into `size`. Limbs with an end below `visibility_threshold` are left out.
    """
    import cv2

    width, height = int(size[0]), int(size[1])
    image = np.zeros((height, width, 3), np.uint8)
    if scale is None:
        scale, offset = letterbox(src_size, size) if src_size is not None else (1.0, (0.0, 0.0))
    k = np.asarray(keypoints, np.float64)
    neck = (k[_I["left_shoulder"]] + k[_I["right_shoulder"]]) / 2.0
    neck[3] = min(k[_I["left_shoulder"], 3], k[_I["right_shoulder"], 3])
    k = np.vstack([k, neck])
    shown = (k[:, 3] >= visibility_threshold) & np.isfinite(k[:, :2]).all(axis=1)
    # fixed-point pixel coordinates for sub-pixel drawing; far-off points clamped so they stay ints
    limit = 4 * max(width, height)
    xy = np.clip(k[:, :2] * scale + np.asarray(offset), -limit, limit)
    fixed = np.round(np.nan_to_num(xy) * (1 << _SUBPIXEL_BITS)).astype(np.int64)
    body = line_width(size)
    thin = max(1, body // 2)
    for a, b, colour, is_detail in LIMBS:
        if shown[a] and shown[b]:
            cv2.line(image, tuple(fixed[a].tolist()), tuple(fixed[b].tolist()), colour,
                     thin if is_detail else body, cv2.LINE_AA, _SUBPIXEL_BITS)
    for i in np.flatnonzero(shown[:NUM_LANDMARKS]):
        radius = (thin if POINT_IS_DETAIL[i] else body) * (1 << _SUBPIXEL_BITS) // 2 + (1 << _SUBPIXEL_BITS)
        cv2.circle(image, tuple(fixed[i].tolist()), radius, POINT_COLOURS[i].tolist(), -1, cv2.LINE_AA, _SUBPIXEL_BITS)
    return image


def render_sequence(seq: PoseSequence, output: str | os.PathLike, size: tuple[int, int] | None = None,
                    progress: Progress | None = None, cancelled=None) -> Path:
    """Write one label image per frame: an .mp4 (at the poses' fps), or numbered PNGs (000123.png,
    numbered by source frame) in the folder `output`. Frames without a person are black. With a
    `size` other than the poses' frame, the figure is scaled uniformly and centred. Nothing is left
    under `output` when this fails or is cancelled."""

    output = Path(output)
    try:
        size = frame_size(seq.size if size is None else size, "label size")
    except ValueError as exc:
        raise EdnError(BAD_PARAMS, f"{exc}, e.g. 512x256.") from None
    if len(seq) == 0:
        raise EdnError(NO_FRAMES, f"There are no poses to render into {output}: the pose file holds no frames.")
    suffix = output.suffix.lower()
    if suffix not in ("", ".mp4"):
        raise EdnError(BAD_PARAMS, f"Cannot write labels to {output}: give an .mp4 file or a folder (a path without an extension).")
    progress = progress or no_progress
    scale, offset = letterbox(seq.size, size)
    usable = seq.usable
    black = np.zeros((size[1], size[0], 3), np.uint8)

    def frames():
        for i in range(len(seq)):
            check_cancelled(cancelled)
            yield i, (render_label(seq.keypoints[i], size, scale=scale, offset=offset) if usable[i] else black)
            progress(i + 1, len(seq), STAGE)

    if suffix == ".mp4":
        with VideoWriter(output, seq.fps, size) as writer:
            for _, image in frames():
                writer.write(image)
        return output
    with atomic_dir(output) as folder:
        for i, image in frames():
            write_image(folder / frame_name(seq.frame_start + i), image, png_compression=1)
    return output
