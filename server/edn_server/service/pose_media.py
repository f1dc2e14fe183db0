"""Media kind `poses`: an edn pose file (.npz) as a job's source instead of a movie, so poses made
elsewhere (a rig in Blender, an edited pose track) are normalized, rendered and generated like
detected ones.

The file is checked at submit time (BAD_POSE_FILE with the reason): its keys and shapes, finite
values, a frame count and frame size within bounds. `frame_start`/`frame_end` of the media reference
index the file's own frames. A range in which nobody is in view answers NO_PERSON.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import BAD_POSE_FILE, BAD_RANGE, NO_PERSON, EdnError
from ..media import MediaInfo

POSES_KIND = "poses"
MAX_POSE_FRAMES = 200_000  # over 1.8 hours at 30 fps: more is a wrong file, not a dance
MAX_POSE_SIDE = 16_384  # pixels of the frame the keypoints refer to
MAX_POSE_FPS = 1_000.0


def _frame_count(path: Path) -> int:
    """The file's frame count, read from its small `detected` array before anything large is loaded."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "detected" not in data:
                return -1  # PoseSequence.load names the missing keys
            return int(data["detected"].shape[0]) if data["detected"].ndim == 1 else -1
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise EdnError(BAD_POSE_FILE, f"{path.name} could not be read as an edn pose file ({exc}). "
                                      "Write it with the add-on or `edn pose extract`.") from exc


def load_pose_file(path: str | Path):
    """The PoseSequence of a pose file, or BAD_POSE_FILE saying what is wrong with it."""
    from ..pose.sequence import PoseSequence

    path = Path(path)
    if path.is_file() and _frame_count(path) > MAX_POSE_FRAMES:
        raise EdnError(BAD_POSE_FILE, f"{path.name} holds more than {MAX_POSE_FRAMES} frames; send the frames the strip "
                                      "shows, not a whole session.")
    try:
        seq = PoseSequence.load(path)
    except ValueError as exc:  # shapes that do not describe frames of 33 landmarks
        raise EdnError(BAD_POSE_FILE, f"{path.name} is not an edn pose file: {exc}.") from exc
    problem = _value_problem(seq)
    if problem:
        raise EdnError(BAD_POSE_FILE, f"{path.name} is not a usable pose file: {problem}. Write it again with the add-on.")
    return seq


def _value_problem(seq) -> str | None:
    width, height = seq.size
    if not (0 < width <= MAX_POSE_SIDE and 0 < height <= MAX_POSE_SIDE):
        return f"its frame size {width}x{height} is not between 1 and {MAX_POSE_SIDE} pixels a side"
    if not (np.isfinite(seq.fps) and 0 < seq.fps <= MAX_POSE_FPS):
        return f"its frame rate {seq.fps} is not a positive number up to {MAX_POSE_FPS:g}"
    if len(seq) == 0:
        return "it holds no frames"
    if not np.isfinite(seq.keypoints).all():
        return "some keypoints are not finite numbers"
    if seq.frame_start < 0:
        return f"its frame_start {seq.frame_start} is negative"
    return None


def probe_poses(path: str | Path) -> MediaInfo:
    """A pose file described like a clip (kind 'poses'): its frames, rate and frame size."""
    seq = load_pose_file(path)
    return MediaInfo(path=Path(path), kind=POSES_KIND, frame_count=len(seq), fps=seq.fps, size=seq.size)


def check_pose_range(path: str | Path, frames: int, start: int, end: int | None) -> tuple[int, int]:
    """[start, end) inside the file's frames with somebody in view in at least one of them."""
    end = frames if end is None else end
    if not 0 <= start < end <= frames:
        raise EdnError(BAD_RANGE, f"Frames [{start}, {end}) are not inside the pose file's {frames} frames.")
    if not load_pose_range(path, start, end).usable.any():
        raise EdnError(NO_PERSON, f"Nobody is in view in frames [{start}, {end}) of the pose file {Path(path).name} "
                                  "(a rig behind the camera or outside its frame throughout). Aim the camera at the rig.")
    return start, end


def load_pose_range(path: str | Path, start: int, end: int):
    """Frames [start, end) of the file as a PoseSequence, numbered on from the file's frame_start."""
    seq = load_pose_file(path)
    return seq.replace(keypoints=seq.keypoints[start:end], detected=seq.detected[start:end],
                       interpolated=seq.interpolated[start:end], frame_start=seq.frame_start + start)
