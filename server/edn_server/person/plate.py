"""The background plate of a target filmed with a static camera, and the check that it is static.

The plate is, per pixel, the median of that pixel over the sample frames in which the (dilated)
person mask does not cover it: the median ignores the person's shadow and passing noise as long
as the pixel is bare in most of its samples. Pixels the person covers in (nearly) every sample are
filled by OpenCV's inpainting. Memory stays bounded for any clip length: at most `max_samples`
frames are used (evenly spread over the clip, `sample_indices`), and the median is taken a strip
of rows at a time.

`check_background` compares other frames' bare pixels with the plate. A moving camera, a changing
light or a backdrop that moves leaves large residuals there; such a target trains full-frame.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..names import FULL_FRAME, PERSON

MODES = (PERSON, FULL_FRAME)

_MISSING = np.uint16(0xFFFF)  # sorts after every 8-bit value
_STRIP_BYTES = 64 << 20


def _cv2():
    import cv2

    return cv2


@dataclass(frozen=True)
class PlateOptions:
    """max_samples: frames used for the plate (evenly spread over the clip).
    max_bytes: memory for the kept samples; fewer samples are used for large frames.
    dilate_fraction: the mask is grown by this fraction of the frame height (hair, motion blur,
        the segmentation's soft edge), at least 3 px.
    min_bare: a pixel bare in fewer samples than this is inpainted rather than trusted.
    inpaint_radius: OpenCV's inpainting neighbourhood, in pixels.
    mask_threshold: mask values above this (masks in 0..1, or 0..255 for uint8) are the person.
    """

    max_samples: int = 48
    max_bytes: int = 512 << 20
    dilate_fraction: float = 0.02
    min_bare: int = 2
    inpaint_radius: int = 5
    mask_threshold: float = 0.5


@dataclass(frozen=True)
class Plate:
    """image: (H, W, 3) uint8, the frames' colour order; filled: (H, W) bool, pixels inpainted;
    samples: frames the median was taken over."""

    image: np.ndarray
    filled: np.ndarray
    samples: int

    @property
    def filled_fraction(self) -> float:
        return float(self.filled.mean())


def sample_indices(frame_count: int, max_samples: int) -> np.ndarray:
    """Up to `max_samples` frame indices evenly spread over [0, frame_count)."""
    if frame_count < 1 or max_samples < 1:
        raise ValueError(f"need at least one frame and one sample, got {frame_count} frames, {max_samples} samples")
    count = min(frame_count, max_samples)
    return np.unique(np.round(np.linspace(0, frame_count - 1, count)).astype(int))


def samples_within(size: tuple[int, int], options: PlateOptions) -> int:
    """How many samples of a `size` (w, h) frame fit options.max_bytes (at least 3)."""
    width, height = size
    per_frame = width * height * 4  # 3 colour bytes + 1 mask byte
    return max(3, min(options.max_samples, options.max_bytes // per_frame))


def person_region(mask: np.ndarray, size: tuple[int, int], options: PlateOptions = PlateOptions()) -> np.ndarray:
    """The (H, W) bool region to treat as the person: the mask at the frame's `size` (w, h),
    thresholded and dilated. Masks may come at a reduced resolution."""
    cv2 = _cv2()
    width, height = size
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    values = mask.astype(np.float32) / (255.0 if mask.dtype == np.uint8 else 1.0)
    if values.shape != (height, width):
        values = cv2.resize(values, (width, height), interpolation=cv2.INTER_LINEAR)
    person = (values > options.mask_threshold).astype(np.uint8)
    radius = max(3, int(round(options.dilate_fraction * height)))
    if radius <= 8:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        return cv2.dilate(person, kernel).astype(bool)
    # a wide disc: the distance to the person costs the same at any radius (dilate grows with its square)
    return cv2.distanceTransform(1 - person, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= radius


def mask_area(mask: np.ndarray, threshold: float = 0.5) -> float:
    """The fraction of the frame a mask (0..1, or 0..255 uint8) marks as the person."""
    mask = np.asarray(mask)
    return float((mask.astype(np.float32) / (255.0 if mask.dtype == np.uint8 else 1.0) > threshold).mean())


def estimate_plate(frames: Iterable[np.ndarray], masks: Iterable[np.ndarray], options: PlateOptions = PlateOptions()) -> Plate:
    """The plate from sample frames ((H, W, 3) uint8) and their person masks (any resolution).

    Pass already-sampled frames (see `sample_indices`, `samples_within`); all of them are kept in
    memory as uint8 while the median is taken.
    """
    colours, bare = [], []
    size = None
    for frame, mask in zip(frames, masks, strict=True):
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"plate frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        if size is None:
            size = (frame.shape[1], frame.shape[0])
        elif (frame.shape[1], frame.shape[0]) != size:
            raise ValueError(f"plate frames differ in size: {size} and {frame.shape[1]}x{frame.shape[0]}")
        colours.append(frame)
        bare.append(~person_region(mask, size, options))
    if size is None:
        raise ValueError("estimating a plate needs at least one frame")
    stack, bare_stack = np.stack(colours), np.stack(bare)
    del colours, bare
    image, counts = _masked_median(stack, bare_stack)
    filled = counts < min(options.min_bare, len(stack))
    if filled.any():
        image = _cv2().inpaint(image, filled.astype(np.uint8), options.inpaint_radius, _cv2().INPAINT_TELEA)
    return Plate(image=image, filled=filled, samples=len(stack))


def _masked_median(stack: np.ndarray, bare: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel median over the samples where `bare`, a strip of rows at a time; (image, counts)."""
    n, height, width, channels = stack.shape
    image = np.zeros((height, width, channels), np.uint8)
    counts = bare.sum(axis=0).astype(np.int32)
    rows = max(1, _STRIP_BYTES // max(1, n * width * channels * 2))
    for top in range(0, height, rows):
        part = slice(top, min(height, top + rows))
        values = np.where(bare[:, part, :, None], stack[:, part].astype(np.uint16), _MISSING)
        values.sort(axis=0)
        k = counts[part][None, :, :, None]
        low = np.take_along_axis(values, np.maximum(k - 1, 0) // 2, axis=0)[0].astype(np.float32)
        high = np.take_along_axis(values, np.minimum(k // 2, n - 1), axis=0)[0].astype(np.float32)
        median = np.where(k[0] > 0, (low + high) / 2, 0)
        image[part] = np.round(median).astype(np.uint8)
    return image, counts


@dataclass(frozen=True)
class BackgroundOptions:
    """threshold: a bare pixel 'differs' from the plate by more than this many grey levels (after
        a light blur, and after removing the frame's overall brightness offset, so compression
        noise and a gentle exposure drift do not count).
    moved_fraction: a frame 'moved' when more than this fraction of its bare pixels differ.
    max_moved_frames: the background is not static when more than this fraction of frames moved.
    min_person_area: a mask covering less than this fraction of the frame counts as empty.
    max_empty_frames: more empty masks than this fraction: the masks cannot carry a person layer.
    near_person: pixels within this fraction of the frame height around the person are not checked:
        the person's own shadow, floor reflection and light spill move with them (measured on
        subject 4's glossy studio floor with MediaPipe's masks: up to 30% of the bare pixels
        within 0.05 of the height differ), while a moving camera or light shows everywhere.
    """

    threshold: float = 12.0
    moved_fraction: float = 0.08
    max_moved_frames: float = 0.2
    min_person_area: float = 0.005
    max_empty_frames: float = 0.5
    near_person: float = 0.1


@dataclass(frozen=True)
class BackgroundCheck:
    """mode: "person" (static background: plate + person window) or "full-frame"; reason: a
    sentence for the training log and model.json; the figures it was decided on."""

    mode: str
    reason: str
    moved_frames: float
    median_residual: float
    empty_masks: float

    def to_dict(self) -> dict:
        return {"mode": self.mode, "reason": self.reason, "moved_frames": self.moved_frames,
                "median_residual": self.median_residual, "empty_masks": self.empty_masks}


def _grey(image: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.GaussianBlur(grey, (5, 5), 1.2)


def frame_residual(frame: np.ndarray, bare: np.ndarray, plate_grey: np.ndarray, threshold: float) -> tuple[float, float]:
    """(fraction of bare pixels differing from the plate, their median absolute difference)."""
    if not bare.any():
        return 0.0, 0.0
    difference = (_grey(frame) - plate_grey)[bare]
    difference -= np.median(difference)  # an overall exposure change is not a moving background
    absolute = np.abs(difference)
    return float((absolute > threshold).mean()), float(np.median(absolute))


def check_background(frames: Iterable[np.ndarray], masks: Iterable[np.ndarray], plate: Plate,
                     options: BackgroundOptions = BackgroundOptions(),
                     plate_options: PlateOptions = PlateOptions()) -> BackgroundCheck:
    """Decide the mode from frames ideally other than the plate's samples, and their masks."""
    plate_grey = _grey(plate.image)
    height, width = plate_grey.shape
    moved, residuals, empty = [], [], []
    near = dataclasses.replace(plate_options, dilate_fraction=max(plate_options.dilate_fraction, options.near_person))
    for frame, mask in zip(frames, masks, strict=True):
        person = person_region(mask, (width, height), near)
        empty.append(mask_area(mask, plate_options.mask_threshold) < options.min_person_area)
        fraction, residual = frame_residual(frame, ~person & ~plate.filled, plate_grey, options.threshold)
        moved.append(fraction > options.moved_fraction)
        residuals.append(residual)
    if not moved:
        raise ValueError("checking the background needs at least one frame")
    moved_share, empty_share = float(np.mean(moved)), float(np.mean(empty))
    median_residual = float(np.median(residuals))
    figures = {"moved_frames": moved_share, "median_residual": median_residual, "empty_masks": empty_share}
    if empty_share > options.max_empty_frames:
        reason = (f"the person mask is empty in {empty_share:.0%} of the checked frames, so no background plate can be "
                  "separated from the person; training full-frame")
        return BackgroundCheck(FULL_FRAME, reason, **figures)
    if moved_share > options.max_moved_frames:
        reason = (f"the background changes in {moved_share:.0%} of the checked frames (a moving camera, a changing light "
                  "or a moving backdrop), so a still plate cannot stand behind the person; training full-frame")
        return BackgroundCheck(FULL_FRAME, reason, **figures)
    reason = (f"static background: its bare pixels stay within {median_residual:.1f} grey levels of the plate "
              f"(median), {moved_share:.0%} of the checked frames differ; training on the person over the plate")
    return BackgroundCheck(PERSON, reason, **figures)
