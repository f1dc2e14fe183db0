"""Import Pose Track end to end: the real server detects a movie strip's poses, they become a Movie Clip,
one marker is moved on one frame, and Preview Poses then sends the edited poses: in the server's saved
normalized poses exactly that point of that frame changed. A deleted or outdated track is ignored with
a warning; the sidebar says which poses a strip uses."""
from __future__ import annotations

import numpy as np
import pytest
from addon_helpers import add_movie_strip, drive, finished, poll_message, pure
from test_addon_panels import draw as draw_with

bpy = pytest.importorskip("bpy")
pf = pure("pose_file")
LEFT_WRIST = pf.LANDMARK_INDEX["left_wrist"]
EDITED = 5  # the frame (of the strip's 12) whose marker is moved


def sidebar(addon) -> str:
    """The Pose Source subpanel's text, its wrapped lines joined."""
    return draw_with(addon.pose_source_panel.draw_pose_source).texts().replace("\n", " ")


def _done(addon, record, timeout: float = 180.0):
    drive(addon, lambda: finished(record), timeout)
    assert (record.state, record.placed) == ("done", True), (record.state, record.error_code, record.error_message)
    return record


def _preview(addon, scene, strip, edn_server) -> dict:
    scene.sequence_editor.active_strip = strip
    assert bpy.ops.edn.preview_poses() == {"FINISHED"}
    record = _done(addon, scene.edn.jobs[-1])
    return addon.client.EdnClient(edn_server["url"], edn_server["token"]).job(record.job_id)


@pytest.fixture
def tracked(addon, local_prefs, scene, clip24, target_model, tmp_path):
    """A movie strip showing media frames 2..13, its pose track imported through the server."""
    strip = add_movie_strip(addon, scene, clip24, channel=1, frame_start=1)
    strip.frame_offset_start, strip.frame_offset_end = 2, 10
    scene.edn.target_model = target_model["name"]
    scene.edn.output_dir = str(tmp_path / "out")
    assert "no pose track" in poll_message(bpy.ops.edn.discard_pose_edits)
    assert bpy.ops.edn.import_pose_track() == {"FINISHED"}
    record = _done(addon, scene.edn.jobs[-1])
    assert record.kind == "extract_poses"
    return strip, bpy.data.movieclips[strip["edn_pose_track"]]


def test_a_moved_marker_changes_only_that_frames_point(addon, scene, tracked, edn_server):
    strip, clip = tracked
    assert len(clip.tracking.tracks) == 33 and clip.name.startswith("dance poses")
    assert "Poses: edited pose track" in sidebar(addon)
    before = _preview(addon, scene, strip, edn_server)
    assert before["input"]["media"]["kind"] == "poses" and before["params"]["smooth"] == 0.0

    marker = clip.tracking.tracks["edn left_wrist"].markers.find_frame(2 + EDITED + 1, exact=True)  # clip frames count from 1
    marker.co = (marker.co[0] + 0.05, marker.co[1] - 0.03)
    after = _preview(addon, scene, strip, edn_server)

    old, new = (pf.load_poses(job["result"]["poses"]) for job in (before, after))
    assert (old.frame_start, len(old)) == (new.frame_start, len(new)) == (2, 12)
    changed = np.argwhere(np.any(old.keypoints != new.keypoints, axis=-1))
    assert changed.tolist() == [[EDITED, LEFT_WRIST]]
    moved = new.keypoints[EDITED, LEFT_WRIST, :2] - old.keypoints[EDITED, LEFT_WRIST, :2]
    assert moved[0] > 0 and moved[1] > 0  # right, and down in pixels (the marker went down in clip space)


def test_a_deleted_or_outdated_track_is_ignored_with_a_warning(addon, scene, tracked, edn_server, capsys):
    strip, clip = tracked
    strip.frame_offset_end = 12  # the strip now shows 10 frames, the track covers 12
    job = _preview(addon, scene, strip, edn_server)
    assert "its edits are ignored" in capsys.readouterr().out and job["input"]["media"].get("kind") is None

    strip.frame_offset_end = 10
    bpy.data.movieclips.remove(clip)
    scene.sequence_editor.active_strip = strip  # the sidebar describes the active strip
    assert "was deleted" in sidebar(addon)
    job = _preview(addon, scene, strip, edn_server)
    assert "was deleted" in capsys.readouterr().out and job["input"]["media"].get("kind") is None

    scene.sequence_editor.active_strip = strip
    assert bpy.ops.edn.discard_pose_edits() == {"FINISHED"}
    assert "edn_pose_track" not in strip and "detected in the movie" in sidebar(addon)


def test_a_remote_server_sends_the_poses_back_for_the_track(addon, local_prefs, scene, clip24, edn_server, tmp_path):
    from test_addon_preview import _assert_server_released, _uploads

    local_prefs.mode, local_prefs.remote_url, local_prefs.remote_token = "REMOTE", edn_server["url"], edn_server["token"]
    uploads_before = _uploads(edn_server)
    strip = add_movie_strip(addon, scene, clip24, channel=1, frame_start=1)
    strip.frame_final_end = 1 + 6
    scene.edn.output_dir = str(tmp_path / "out")
    assert bpy.ops.edn.import_pose_track() == {"FINISHED"}
    record = _done(addon, scene.edn.jobs[-1])
    assert record.remote
    clip = bpy.data.movieclips[strip["edn_pose_track"]]
    base = pf.load_poses(clip["edn_pose_base"])
    assert str(tmp_path / "out") in clip["edn_pose_base"] and (base.frame_start, len(base)) == (0, 6)
    _assert_server_released(addon, edn_server, record.job_id, uploads_before)
