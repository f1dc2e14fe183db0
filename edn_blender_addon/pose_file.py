"""The edn pose file (npz) on the add-on's side: what the server's PoseSequence.save writes and its
load reads, so poses made in Blender (a rig, an edited pose track) go to the server as a file.

No bpy; numpy ships with Blender. The landmark names and the file's keys are the server's
(server/edn_server/pose/landmarks.py, pose/sequence.py); tests pin both copies to the server's.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np

LANDMARK_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
LANDMARK_COUNT = len(LANDMARK_NAMES)
POSES_MEDIA_KIND = "poses"  # a job's media kind for a pose file (edn_server.service.pose_media.POSES_KIND)
EXTRACTED_POSES_FILE = "poses.npz"  # what extract_poses names its file (edn_server.names.POSES_FILE)
LANDMARK_INDEX = {name: i for i, name in enumerate(LANDMARK_NAMES)}


@dataclasses.dataclass
class PoseData:
    """One person's poses: keypoints (frames, 33, 4) float32 of x, y (pixels of a `size` frame, y
    down), z (MediaPipe-like relative depth, pixels) and visibility 0..1; detected (frames,) bool;
    interpolated (frames,) bool; fps; size (width, height); frame_start, the first frame (0-based)
    of the source they belong to."""

    keypoints: np.ndarray
    detected: np.ndarray
    fps: float
    size: tuple[int, int]
    interpolated: np.ndarray | None = None
    frame_start: int = 0

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        self.detected = np.asarray(self.detected, dtype=bool)
        frames = len(self.detected)
        flags = np.zeros(frames, dtype=bool) if self.interpolated is None else self.interpolated
        self.interpolated = np.asarray(flags, dtype=bool)
        self.size = (int(self.size[0]), int(self.size[1]))
        self.fps = float(self.fps)
        self.frame_start = int(self.frame_start)
        if self.keypoints.shape != (frames, LANDMARK_COUNT, 4) or self.interpolated.shape != (frames,):
            raise ValueError(f"{self.keypoints.shape} keypoints and {self.interpolated.shape} interpolated flags "
                             f"do not match {frames} frames of {LANDMARK_COUNT} landmarks")

    def __len__(self) -> int:
        return len(self.detected)

    @property
    def usable(self) -> np.ndarray:
        """Frames that have keypoints: detected or filled in from neighbours."""
        return self.detected | self.interpolated


def save_poses(poses: PoseData, path: str | os.PathLike) -> Path:
    """Write the npz under `path` whole or not at all (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    os.close(handle)
    try:
        np.savez_compressed(tmp, keypoints=poses.keypoints, detected=poses.detected, fps=np.float64(poses.fps),
                            size=np.asarray(poses.size, dtype=np.int32), interpolated=poses.interpolated,
                            frame_start=np.int64(poses.frame_start))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_poses(path: str | os.PathLike) -> PoseData:
    """Read a pose file the server or save_poses wrote (ValueError or OSError when it is not one)."""
    with np.load(Path(path), allow_pickle=False) as data:
        return PoseData(keypoints=data["keypoints"], detected=data["detected"], fps=float(data["fps"]),
                        size=tuple(int(v) for v in data["size"]),
                        interpolated=data["interpolated"] if "interpolated" in data else None,
                        frame_start=int(data["frame_start"]) if "frame_start" in data else 0)
