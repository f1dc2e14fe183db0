"""The editable pose track: poses → a Movie Clip of the strip's movie with one track per landmark →
(the artist moves a marker) → poses where exactly that point changed."""
from __future__ import annotations

import numpy as np
import pytest
from addon_helpers import SHARED_DATA, addon_module, pure

bpy = pytest.importorskip("bpy")
pt = addon_module("pose_track")
pf = pure("pose_file")
NOSE, LEFT_WRIST = pf.LANDMARK_INDEX["nose"], pf.LANDMARK_INDEX["left_wrist"]
FRAMES, FIRST = 12, 5


@pytest.fixture
def movie():
    path = SHARED_DATA / "mediapipe_pose_segmentation_dance.mp4"
    if not path.is_file():
        pytest.skip(f"real clip {path.name} not found in {SHARED_DATA}")
    bpy.ops.wm.read_homefile(use_empty=True)
    return path


def detected_like_poses(size=(600, 600)) -> object:
    """Poses as the server returns them for frames FIRST..FIRST+FRAMES-1: sub-pixel positions, one
    frame without a person, one filled in from its neighbours."""
    rng = np.random.default_rng(7)
    keypoints = np.zeros((FRAMES, 33, 4), np.float32)
    keypoints[..., 0] = rng.uniform(50, size[0] - 50, (FRAMES, 33))
    keypoints[..., 1] = rng.uniform(50, size[1] - 50, (FRAMES, 33))
    keypoints[..., 2] = rng.normal(0, 30, (FRAMES, 33))
    keypoints[..., 3] = rng.uniform(0.5, 1.0, (FRAMES, 33))
    detected = np.ones(FRAMES, bool)
    detected[[3, 4]] = False
    keypoints[3] = 0.0
    interpolated = np.zeros(FRAMES, bool)
    interpolated[4] = True
    return pf.PoseData(keypoints, detected, 20.0, size, interpolated, frame_start=FIRST)


def test_track_round_trip_changes_exactly_the_moved_marker(movie, tmp_path):
    poses = detected_like_poses()
    clip = pt.create_pose_track(poses, movie, "dance poses")
    assert len(clip.tracking.tracks) == 33 and tuple(clip.size) == (600, 600)
    untouched, warning = pt.edited_poses("dance poses", poses)
    assert warning is None
    assert np.array_equal(untouched.keypoints, poses.keypoints) and np.array_equal(untouched.detected, poses.detected)
    assert np.array_equal(untouched.interpolated, poses.interpolated)

    track = clip.tracking.tracks["edn nose"]
    movie_frame = FIRST + 6 + 1  # clip frames count the movie from 1
    marker = track.markers.find_frame(movie_frame, exact=True)
    x, y = marker.co
    assert x == pytest.approx(poses.keypoints[6, NOSE, 0] / 600, abs=1e-6)
    assert y == pytest.approx(1 - poses.keypoints[6, NOSE, 1] / 600, abs=1e-6)  # clip space: y up
    assert track.markers.find_frame(FIRST + 3 + 1, exact=True).mute  # nobody on that frame
    marker.co = (0.25, 0.75)  # the artist drags the nose to a quarter across, a quarter down
    clip.tracking.tracks["edn left_wrist"].markers.find_frame(FIRST + 2 + 1, exact=True).mute = True

    edited, warning = pt.edited_poses("dance poses", poses)
    assert warning is None
    changed = np.argwhere(np.any(edited.keypoints != poses.keypoints, axis=-1))
    assert changed.tolist() == [[2, LEFT_WRIST], [6, NOSE]]
    assert edited.keypoints[6, NOSE, :2] == pytest.approx((150.0, 150.0), abs=1e-3)
    assert edited.keypoints[6, NOSE, 2:].tolist() == poses.keypoints[6, NOSE, 2:].tolist()  # depth, visibility kept
    assert edited.keypoints[2, LEFT_WRIST, 3] == 0.0  # muted: not visible there
    saved = pf.load_poses(pf.save_poses(edited, tmp_path / "edited.npz"))
    assert np.array_equal(saved.keypoints, edited.keypoints) and np.array_equal(saved.detected, edited.detected)


def test_a_deleted_or_mismatched_track_is_ignored_with_a_warning(movie):
    poses = detected_like_poses()
    clip = pt.create_pose_track(poses, movie, "dance poses")
    shorter = pf.PoseData(poses.keypoints[:8], poses.detected[:8], poses.fps, poses.size, poses.interpolated[:8], FIRST)
    result, warning = pt.edited_poses("dance poses", shorter)
    assert result is None and "12 frames" in warning and "8" in warning and "Import the pose track again" in warning
    bpy.data.movieclips.remove(clip)
    result, warning = pt.edited_poses("dance poses", poses)
    assert result is None and "was deleted" in warning
    bpy.data.movieclips.load(str(movie)).name = "someone's clip"
    result, warning = pt.edited_poses("someone's clip", poses)
    assert result is None and "not an edn pose track" in warning


def test_unmuting_an_empty_frame_gives_it_a_person(movie):
    poses = detected_like_poses()
    clip = pt.create_pose_track(poses, movie, "dance poses")
    for track in clip.tracking.tracks:
        marker = track.markers.find_frame(FIRST + 3 + 1, exact=True)
        marker.mute = False
        marker.co = (0.5, 0.5)
    edited, _ = pt.edited_poses("dance poses", poses)
    assert edited.detected[3] and (edited.keypoints[3, :, :2] == 300.0).all() and (edited.keypoints[3, :, 3] == 1.0).all()
    assert np.array_equal(edited.keypoints[np.arange(FRAMES) != 3], poses.keypoints[np.arange(FRAMES) != 3])
