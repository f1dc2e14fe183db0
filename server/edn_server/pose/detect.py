"""Keypoints of one person per frame from a movie or an image folder, with MediaPipe PoseLandmarker.

The landmarker runs in VIDEO mode, so it tracks the person from frame to frame instead of searching
every frame afresh. Frames are decoded in a background thread (media.iter_frames) while the
landmarker works on the previous one. Results are cached by media content, range and settings.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import media as media_io
from ..config import pose_cache_dir
from ..errors import BAD_PARAMS, NO_PERSON, POSE_MODEL_MISSING, EdnError
from ..names import DETECT_STAGE
from ..progress import Progress, check_cancelled, no_progress
from .gaps import describe_gaps, fill_short_gaps
from .landmarker import Landmarker, to_mp_image
from .landmarks import HIPS, NUM_LANDMARKS
from .sequence import PoseSequence, mask_size

__all__ = ["DetectOptions", "EXTRACTION_VERSION", "choose_person", "describe_gaps", "extract_poses", "pose_cache_path"]

# Bump when the output for the same input changes (selection, gap filling, coordinates): old cache
# entries are then ignored instead of served.
EXTRACTION_VERSION = 1
MODEL_VARIANTS = ("lite", "full", "heavy")
STAGE = DETECT_STAGE
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DetectOptions:
    """Detector settings beyond the model variant; every field except `prefetch` is part of the cache key.

    num_poses: people the landmarker reports per frame; the tracker keeps the one consistent with
        the previous frames. 1 (default) relies on MediaPipe's own frame-to-frame tracking and is
        fastest; 2 costs about 1.6x per frame here (the person detector then runs on every frame
        while only one person is visible, and each extra person adds a landmark pass) but can pick
        the right person back up after an occlusion in a crowded clip.
    max_gap_s: undetected runs up to this long (with detections on both sides) are interpolated.
    max_jump, track_memory_s: for this long after the tracked person was last seen, a person whose
        hips are farther than `max_jump` body sizes from theirs is someone else, and the frame is
        left undetected instead of switching; after that, whoever is found becomes the subject.
    prefetch: frames decoded ahead in the background thread.
    masks: also keep the tracked person's segmentation mask per frame (PoseSequence.masks), for a
        target's person layer; the same landmark pass outputs it, at a small extra cost per frame, so
        source extraction leaves it off. Part of the cache key only when on (older caches still match).
    """

    num_poses: int = 1
    max_gap_s: float = 0.2
    max_jump: float = 1.0
    track_memory_s: float = 1.0
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    prefetch: int = 4
    masks: bool = False

    def validate(self) -> None:
        if not 1 <= self.num_poses <= 10:
            raise EdnError(BAD_PARAMS, f"num_poses={self.num_poses} is out of range; use 1 (one person) up to 10.")
        if not self.max_jump > 0:
            raise EdnError(BAD_PARAMS, f"max_jump={self.max_jump} must be a positive number of body sizes.")
        if not self.track_memory_s >= 0:
            raise EdnError(BAD_PARAMS, f"track_memory_s={self.track_memory_s} must be 0 or more seconds.")
        if not self.max_gap_s >= 0:
            raise EdnError(BAD_PARAMS, f"max_gap_s={self.max_gap_s} must be 0 or more seconds (0 turns gap filling off).")
        for name in ("min_detection_confidence", "min_presence_confidence", "min_tracking_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise EdnError(BAD_PARAMS, f"{name}={getattr(self, name)} must lie between 0 and 1.")

    def gap_frames(self, fps: float) -> int:
        """The longest run of frames that gap filling interpolates."""
        return int(self.max_gap_s * fps + 1e-6)

    def landmarker_settings(self) -> dict:
        names = ("num_poses", "min_detection_confidence", "min_presence_confidence", "min_tracking_confidence")
        return {name: getattr(self, name) for name in names}

    def cache_fields(self) -> dict:
        fields = dataclasses.asdict(self)
        fields.pop("prefetch")
        if not fields["masks"]:
            fields.pop("masks")
        return fields


def extract_poses(
    media: str | os.PathLike,
    model: str = "full",
    start: int = 0,
    end: int | None = None,
    fps: float | None = None,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    use_cache: bool = True,
    model_path: str | os.PathLike | None = None,
    options: DetectOptions | None = None,
) -> PoseSequence:
    """Poses of the person in frames [start, end) of a movie or image folder (0-based; end=None: to the end).

    x, y are pixels of the source frame. `fps` overrides the clip's rate (an image folder defaults
    to 30). `model` picks the bundled variant; `model_path` uses a given .task file instead.
    Raises EdnError: media errors from media.probe, BAD_RANGE, BAD_PARAMS, POSE_MODEL_*, NO_PERSON
    (nobody in any frame), CANCELLED. A clip with few detections is returned; describe_gaps warns.
    """
    options = options or DetectOptions()
    options.validate()
    if model_path is None and model not in MODEL_VARIANTS:
        raise EdnError(BAD_PARAMS, f"Pose model '{model}' is unknown; choose one of {', '.join(MODEL_VARIANTS)}.")
    media_io.check_fps(fps)
    progress = progress or no_progress
    info = media_io.probe(media, fps=fps)
    start, end = media_io.check_range(info, start, end)
    if model_path is not None:
        model_path = Path(model_path).expanduser()
        if not model_path.is_file():
            raise EdnError(POSE_MODEL_MISSING, f"Pose model {model_path} does not exist. "
                                               f"Pass a PoseLandmarker .task file, or omit it to use the '{model}' model.")

    cache_file = pose_cache_path(info, start, end, model, model_path, options)
    if use_cache:
        cached = _load_cached(cache_file, end - start, options.masks)
        if cached is not None:
            progress(end - start, end - start, STAGE)
            return cached

    model_file = model_path if model_path is not None else _ensure_model(model, progress)
    keypoints, detected, masks = _detect(info, start, end, model_file, options, progress, cancelled)
    if not detected.any():
        raise EdnError(
            NO_PERSON,
            f"No person was found in frames [{start}, {end}) of {info.path}. Choose a clip or frame range where one "
            "person is visible (ideally head to toe, not tiny, reasonably lit), or try the 'heavy' model.",
        )
    keypoints, interpolated = fill_short_gaps(keypoints, detected, max_gap=options.gap_frames(info.fps))
    seq = PoseSequence(keypoints=keypoints, detected=detected, fps=info.fps, size=info.size,
                       interpolated=interpolated, frame_start=start, masks=masks)
    try:
        seq.save(cache_file)
    except OSError as exc:  # the cache only saves time: a full or read-only disk must not lose the result
        log.warning("could not cache poses in %s: %s", cache_file, exc)
    return seq


def pose_cache_path(info: media_io.MediaInfo, start: int, end: int, model: str = "full",
                    model_path: Path | None = None, options: DetectOptions | None = None) -> Path:
    """Where extract_poses caches the poses of this media, range, model and settings."""
    options = options or DetectOptions()
    media_hash = media_io.content_hash(info.path)
    # A given .task file is identified by its bytes, a bundled variant by its name.
    model_id = f"file:{media_io.content_hash(model_path)}" if model_path is not None else model
    key = json.dumps({"version": EXTRACTION_VERSION, "media": media_hash, "start": start, "end": end, "fps": info.fps,
                      "model": model_id, "options": options.cache_fields()}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    label = model if model_path is None else "custom"
    return pose_cache_dir() / f"{media_hash[:16]}_{start}-{end}_{label}_{digest}.npz"


def _load_cached(path: Path, frames: int, want_masks: bool = False) -> PoseSequence | None:
    """The cached poses, or None when absent or unreadable (then they are detected again)."""
    if not path.is_file():
        return None
    try:
        seq = PoseSequence.load(path)
    except (EdnError, ValueError):  # a damaged or outdated entry: detect again and overwrite it
        return None
    if len(seq) != frames or (want_masks and seq.masks is None):
        return None
    return seq


def _ensure_model(variant: str, progress: Progress) -> Path:
    from .models import ensure_pose_model  # imported late: it pulls in download and build machinery

    return Path(ensure_pose_model(variant, progress=progress))


def _detect(info: media_io.MediaInfo, start: int, end: int, model_file: Path, options: DetectOptions,
            progress: Progress, cancelled: Callable[[], bool] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    total = end - start
    # Grown per decoded frame: a clip's header can claim any frame count (a 52 KB file, 50 million frames).
    keypoints: list[np.ndarray] = []
    detected: list[bool] = []
    empty = np.zeros((NUM_LANDMARKS, 4), dtype=np.float32)
    small = mask_size(info.size)
    masks: list[np.ndarray] | None = [] if options.masks else None
    no_mask = np.zeros((small[1], small[0]), np.uint8)
    previous: np.ndarray | None = None
    previous_frame = -1
    # Within this many frames of the last detection a far-away candidate is another person, not a move.
    memory = max(1, round(options.track_memory_s * info.fps))
    last_ms = -1
    # The copy into a MediaPipe image happens in the decode thread too, off the detector's path.
    with Landmarker(model_file, **options.landmarker_settings(), segmentation=options.masks) as landmarker, contextlib.closing(
            media_io.iter_frames(info, start, end, prefetch=options.prefetch, transform=to_mp_image)) as frames:
        for i, image in enumerate(frames):
            check_cancelled(cancelled)
            # VIDEO mode needs strictly increasing timestamps; rounding could repeat one above 1000 fps.
            last_ms = max(last_ms + 1, round((start + i) * 1000.0 / info.fps))
            candidates = landmarker.detect(image, last_ms)
            keypoints.append(empty)
            detected.append(False)
            if masks is not None:
                masks.append(no_mask)
            if candidates:
                jump_limit = options.max_jump if i - previous_frame <= memory else None
                chosen = choose_person(candidates, previous, jump_limit)
                if chosen is not None:
                    previous = keypoints[i] = chosen
                    previous_frame = i
                    detected[i] = True
                    if masks is not None:
                        masks[i] = _small_mask(landmarker.last_masks, candidates, chosen, small)
            progress(i + 1, total, STAGE)
    stacked = np.stack(keypoints) if keypoints else np.zeros((0, NUM_LANDMARKS, 4), np.float32)
    stacked_masks = None if masks is None else (np.stack(masks) if masks else np.zeros((0, small[1], small[0]), np.uint8))
    return stacked, np.array(detected, dtype=bool), stacked_masks


def _small_mask(found: list[np.ndarray], candidates: list[np.ndarray], chosen: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The chosen person's mask (0..1 float) as uint8 0..255 at the stored `size` (w, h)."""
    import cv2

    index = next((k for k, c in enumerate(candidates) if c is chosen), 0)
    if index >= len(found):
        return np.zeros((size[1], size[0]), np.uint8)
    mask = cv2.resize(np.asarray(found[index], np.float32), size, interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(mask * 255.0), 0, 255).astype(np.uint8)


def _box(points: np.ndarray) -> tuple[float, float, float, float]:
    lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _hip_centre(points: np.ndarray) -> tuple[float, float]:
    left, right = points[HIPS[0]], points[HIPS[1]]
    return 0.5 * float(left[0] + right[0]), 0.5 * float(left[1] + right[1])


def choose_person(candidates: list[np.ndarray], previous: np.ndarray | None, max_jump: float | None = None) -> np.ndarray | None:
    """The candidate (33, 4) that continues the track: the best box overlap with the previously chosen
    person, then the nearest hip centre; with no history, the largest person (the likely subject).

    With `max_jump`, a candidate whose hips are farther than that many body sizes from the previous
    person's is someone else: when all are, None (the frame becomes a gap rather than a switch)."""
    if previous is None:
        if len(candidates) == 1:
            return candidates[0]
        boxes = [_box(c) for c in candidates]
        return candidates[int(np.argmax([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]))]
    px, py = _hip_centre(previous)
    jumps = [math.hypot(x - px, y - py) for x, y in map(_hip_centre, candidates)]
    if len(candidates) == 1 and max_jump is None:
        return candidates[0]
    previous_box = _box(previous)
    best = 0
    if len(candidates) > 1:
        overlaps = [_overlap(_box(c), previous_box) for c in candidates]
        best = max(range(len(candidates)), key=lambda k: (overlaps[k], -jumps[k]))
    body_size = max(previous_box[2] - previous_box[0], previous_box[3] - previous_box[1], 1.0)
    if max_jump is not None and jumps[best] > max_jump * body_size:
        return None
    return candidates[best]
