"""A strip's poses as an editable pose track: a Movie Clip of the same movie file with one tracking track
per landmark, so the artist fixes drift or swapped limbs in the Clip Editor; and the edited tracks
read back as poses.

Markers sit in the clip's normalized coordinates (0..1, y up, Blender's clip space; the poses' pixels
have y down). A frame without a person has its markers muted; muting a marker on a frame hides that
landmark there (visibility 0), unmuting every marker of an empty frame gives it a person. Points the
artist did not move read back exactly as they were written, so a re-run changes only what was edited.
"""
from __future__ import annotations

import os

import bpy
import numpy as np

from .pose_file import LANDMARK_COUNT, LANDMARK_NAMES, PoseData

TRACK_PREFIX = "edn "
# Custom properties on the clip: which stretch of the movie its tracks describe, and the pose size.
FRAME_START_KEY = "edn_pose_frame_start"
FRAME_COUNT_KEY = "edn_pose_frame_count"
SIZE_KEY = "edn_pose_size"


def _normalized(poses: PoseData) -> np.ndarray:
    """(frames, 33, 2) float32 marker positions: what a marker holds for each keypoint."""
    width, height = poses.size
    xy = poses.keypoints[:, :, :2].astype(np.float64)
    return np.stack([xy[..., 0] / width, 1.0 - xy[..., 1] / height], axis=-1).astype(np.float32)


def _clip_frame(poses_frame_start: int, index: int) -> int:
    """Marker frame of the poses' frame `index`: the clip's frame numbers count the movie from 1."""
    return poses_frame_start + index + 1


def create_pose_track(poses: PoseData, movie_path: str | os.PathLike, name: str) -> bpy.types.MovieClip:
    """A new Movie Clip of `movie_path` named `name`, one track per landmark over the poses' frames."""
    clip = bpy.data.movieclips.load(str(movie_path))
    clip.name = name
    clip.frame_start, clip.frame_offset = 1, 0
    clip[FRAME_START_KEY], clip[FRAME_COUNT_KEY] = poses.frame_start, len(poses)
    clip[SIZE_KEY] = list(poses.size)
    marks = _normalized(poses)
    first = _clip_frame(poses.frame_start, 0)
    for landmark, label in enumerate(LANDMARK_NAMES):
        track = clip.tracking.tracks.new(name=TRACK_PREFIX + label, frame=first)
        for i in range(len(poses)):
            marker = track.markers.insert_frame(_clip_frame(poses.frame_start, i), co=tuple(marks[i, landmark]))
            marker.mute = not poses.usable[i]
    return clip


def _track_positions(clip: bpy.types.MovieClip, frame_start: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames, 33, 2) marker positions and (frames, 33) enabled flags; a missing marker counts as muted."""
    xy = np.zeros((frames, LANDMARK_COUNT, 2), dtype=np.float32)
    enabled = np.zeros((frames, LANDMARK_COUNT), dtype=bool)
    tracks = clip.tracking.tracks
    for landmark, label in enumerate(LANDMARK_NAMES):
        track = tracks.get(TRACK_PREFIX + label)
        if track is None:
            continue
        for i in range(frames):
            marker = track.markers.find_frame(_clip_frame(frame_start, i), exact=True)
            if marker is not None:
                xy[i, landmark] = tuple(marker.co)
                enabled[i, landmark] = not marker.mute
    return xy, enabled


def read_pose_track(clip: bpy.types.MovieClip, base: PoseData) -> PoseData:
    """The poses `base` (those the track was made from) with the artist's edits applied."""
    marks, enabled = _track_positions(clip, base.frame_start, len(base))
    width, height = base.size
    keypoints = base.keypoints.copy()
    moved = np.any(marks != _normalized(base), axis=-1)
    keypoints[..., 0] = np.where(moved, marks[..., 0].astype(np.float64) * width, keypoints[..., 0])
    keypoints[..., 1] = np.where(moved, (1.0 - marks[..., 1].astype(np.float64)) * height, keypoints[..., 1])
    person = enabled.any(axis=1)
    newly_found = person & ~base.usable
    keypoints[newly_found, :, 2] = 0.0  # no depth is known for a person the artist added
    keypoints[newly_found, :, 3] = 1.0
    keypoints[..., 3] = np.where(enabled, keypoints[..., 3], 0.0)
    keypoints[~person] = 0.0
    detected = (base.detected | newly_found) & person
    interpolated = base.interpolated & person & ~detected
    return PoseData(keypoints, detected, base.fps, base.size, interpolated, base.frame_start)


def edited_poses(clip_name: str, base: PoseData) -> tuple[PoseData | None, str | None]:
    """(edited poses, None), or (None, a warning sentence) when the strip's pose track is gone or
    describes other frames than `base` (the strip's range changed): the caller then uses the poses
    detected afresh."""
    clip = bpy.data.movieclips.get(clip_name)
    if clip is None:
        return None, f"The pose track '{clip_name}' was deleted; its edits are ignored and the poses are detected again."
    stored = (clip.get(FRAME_START_KEY), clip.get(FRAME_COUNT_KEY))
    if None in stored:
        return None, f"The clip '{clip_name}' is not an edn pose track; it is ignored and the poses are detected again."
    if stored != (base.frame_start, len(base)):
        return None, (f"The pose track '{clip_name}' covers {stored[1]} frames from frame {stored[0]}, but the strip now shows "
                      f"{len(base)} from frame {base.frame_start}; its edits are ignored. Import the pose track again.")
    return read_pose_track(clip, base), None
