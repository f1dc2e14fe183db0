"""A Scene strip whose scene has a camera and an armature drives Preview Poses through the real server
(the rig sampled over the frames the strip shows, sent as media kind `poses`), and keyframed Offset X
reaches the server as one value per frame."""
from __future__ import annotations

import numpy as np
import pytest
from addon_helpers import drive, finished, poll_message, pure
from test_rig_poses import MIXAMO_MINIMAL, add_camera, build_armature, raise_left_arm

bpy = pytest.importorskip("bpy")
pf = pure("pose_file")
L = pf.LANDMARK_INDEX
HIPS = [L["left_hip"], L["right_hip"]]


@pytest.fixture
def rig_scene(scene):
    """A second scene 'rig' (frames 1..30, 400x300 at 20 fps) with a Mixamo rig raising its left arm."""
    rig = bpy.data.scenes.new("rig")
    rig.render.resolution_x, rig.render.resolution_y, rig.render.resolution_percentage = 400, 300, 100
    rig.render.fps, rig.render.fps_base = 20, 1.0
    rig.frame_start, rig.frame_end = 1, 30
    armature = build_armature(rig, MIXAMO_MINIMAL, "mixamorig:")
    raise_left_arm(armature, "mixamorig:", {1: 0.0, 30: 120.0})
    bpy.context.window.scene = scene  # the Sequencer's scene is the window's again
    return rig


def add_scene_strip(addon, scene, rig, frame_start: int = 10, trim_start: int = 4, trim_end: int = 6):
    editor = scene.sequence_editor
    strip = addon.strips.top_level(editor).new_scene(name="dance rig", scene=rig, channel=2, frame_start=frame_start)
    strip.frame_offset_start, strip.frame_offset_end = trim_start, trim_end
    editor.active_strip = strip
    return strip


def preview(addon, scene, target_model, edn_server, tmp_path) -> tuple[object, dict]:
    scene.edn.target_model = target_model["name"]
    scene.edn.output_dir = str(tmp_path / "out")
    assert bpy.ops.edn.preview_poses() == {"FINISHED"}
    record = scene.edn.jobs[-1]
    drive(addon, lambda: finished(record), 120)
    assert (record.state, record.placed) == ("done", True), (record.state, record.error_code, record.error_message)
    job = addon.client.EdnClient(edn_server["url"], edn_server["token"]).job(record.job_id)
    return record, job


def test_poll_says_what_the_rig_scene_lacks(addon, local_prefs, scene, rig_scene, target_model):
    scene.edn.target_model = target_model["name"]
    add_scene_strip(addon, scene, rig_scene)
    assert "has no active camera" in poll_message(bpy.ops.edn.preview_poses)
    assert "has no active camera" in poll_message(bpy.ops.edn.transfer_motion)
    empty = bpy.data.scenes.new("empty")
    add_scene_strip(addon, scene, empty)
    assert "no active camera and no armature" in poll_message(bpy.ops.edn.preview_poses)
    assert "scene strip" in poll_message(bpy.ops.edn.train_target)  # a rig cannot be a target


def test_scene_strip_previews_the_rig_over_the_frames_it_shows(addon, local_prefs, scene, rig_scene, target_model,
                                                              edn_server, tmp_path):
    add_camera(rig_scene)
    strip = add_scene_strip(addon, scene, rig_scene)  # shows rig frames 5..24 from timeline frame 14
    assert (strip.frame_final_start, strip.frame_final_duration) == (14, 20)
    record, job = preview(addon, scene, target_model, edn_server, tmp_path)

    assert job["input"]["media"]["kind"] == "poses" and job["input"]["media"]["frames"] == 20
    result = job["result"]
    assert (result["first_frame"], result["frame_count"]) == (4, 20)  # numbered by the rig scene's frames, from 0
    placed = addon.strips.find_strip(scene, record.result_strip)
    assert (placed.frame_final_start, placed.frame_final_duration, placed.channel) == (14, 20, 3)

    sent = pf.load_poses(next((tmp_path / "out").rglob("rig_poses.npz")))  # written into the job's output folder
    expected = addon.rig_poses.rig_poses(addon.rig_poses.shot_for_scene(rig_scene, first=5, last=24))
    np.testing.assert_array_equal(sent.keypoints, expected.keypoints)
    normalized = pf.load_poses(result["poses"])
    assert normalized.detected.all() and tuple(normalized.size) == tuple(target_model["stats"]["frame_size"])
    k = normalized.keypoints
    rise = k[:, L["left_shoulder"], 1] - k[:, L["left_wrist"], 1]  # the arm swings up as the rig's does
    assert rise[0] < 0 < rise[-1] and rise[-1] - rise[0] > 0.3 * np.ptp(k[0, :, 1])  # hanging, then above the shoulder


def test_rig_out_of_view_and_missing_bones_are_reported_when_run(addon, local_prefs, scene, rig_scene, target_model,
                                                                 tmp_path):
    scene.edn.target_model = target_model["name"]
    scene.edn.output_dir = str(tmp_path / "out")
    add_camera(rig_scene, location=(0.0, 3.0, 1.0), look_at=(0.0, 6.0, 1.0))  # looking away from the rig
    add_scene_strip(addon, scene, rig_scene)
    jobs = len(scene.edn.jobs)
    with pytest.raises(RuntimeError, match="behind the camera or outside its frame"):
        bpy.ops.edn.preview_poses()
    assert len(scene.edn.jobs) == jobs and "behind the camera" in scene.edn.last_error
    rig_scene.edn_rig.mapping = "RIGIFY"
    with pytest.raises(RuntimeError, match="spine"):
        bpy.ops.edn.preview_poses()


def test_keyframed_offset_x_moves_the_normalized_hips_linearly(addon, local_prefs, scene, rig_scene, target_model,
                                                               edn_server, tmp_path):
    add_camera(rig_scene)
    strip = add_scene_strip(addon, scene, rig_scene)
    _, still = preview(addon, scene, target_model, edn_server, tmp_path / "still")

    first, last = strip.frame_final_start, strip.frame_final_end - 1
    for frame, value in ((first, 0.0), (last, 100.0)):
        scene.edn.offset_x = value
        scene.keyframe_insert("edn.offset_x", frame=frame)
    for key in addon.keyframed._fcurves(scene)[0].keyframe_points:
        key.interpolation = "LINEAR"
    scene.sequence_editor.active_strip = strip  # the preview's strip became the active one
    _, moved = preview(addon, scene, target_model, edn_server, tmp_path / "moved")

    ramp = np.linspace(0.0, 100.0, 20)
    sent = moved["params"]["normalization"]
    np.testing.assert_allclose(sent["offset_x"], ramp, atol=1e-4)
    assert sent["scale"] == 1.0 and moved["params"]["smooth"] == scene.edn.smoothing  # unanimated: one number
    hips = lambda job: pf.load_poses(job["result"]["poses"]).keypoints[:, HIPS, 0].mean(axis=1)  # noqa: E731
    np.testing.assert_allclose(hips(moved) - hips(still), ramp, atol=0.01)


def test_a_remote_server_is_sent_the_rig_poses_as_an_upload(addon, local_prefs, scene, rig_scene, target_model,
                                                           edn_server, tmp_path):
    from test_addon_preview import _assert_server_released, _uploads

    local_prefs.mode, local_prefs.remote_url, local_prefs.remote_token = "REMOTE", edn_server["url"], edn_server["token"]
    uploads_before = _uploads(edn_server)
    add_camera(rig_scene)
    add_scene_strip(addon, scene, rig_scene, trim_start=0, trim_end=24)  # rig frames 1..6
    scene.edn.target_model, scene.edn.output_dir = target_model["name"], str(tmp_path / "out")
    assert bpy.ops.edn.preview_poses() == {"FINISHED"}
    record = scene.edn.jobs[-1]
    drive(addon, lambda: finished(record), 120)
    assert (record.state, record.placed, record.remote) == ("done", True, True), (record.error_code, record.error_message)
    placed = addon.strips.find_strip(scene, record.result_strip)
    assert [e.filename for e in placed.elements] == [f"{i:06d}.png" for i in range(6)]
    _assert_server_released(addon, edn_server, record.job_id, uploads_before)


def test_a_custom_mapping_edited_in_the_sidebar_places_the_landmarks(addon, local_prefs, scene, rig_scene, tmp_path):
    from test_addon_panels import draw

    add_camera(rig_scene)
    strip = add_scene_strip(addon, scene, rig_scene)
    settings = rig_scene.edn_rig
    settings.mapping = "CUSTOM"
    assert bpy.ops.edn.mapping_row() == {"FINISHED"}  # a new table lists the landmarks normalization needs
    rows = {row.landmark: row for row in settings.custom}
    assert set(rows) == {"left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_ankle", "right_ankle"}
    for landmark, bone in (("shoulder", "Arm"), ("hip", "UpLeg"), ("ankle", "Foot")):
        for side in ("left", "right"):
            rows[f"{side}_{landmark}"].bone = f"mixamorig:{side.capitalize()}{bone}"
    texts = draw(addon.pose_source_panel.draw_pose_source).texts()
    assert "Poses: the rig found in scene 'rig'" in texts.replace("\n", " ") and "edn.mapping_row" in texts

    posed, warning = addon.pose_sources.prepare(scene, strip, str(tmp_path))
    poses = pf.load_poses(posed.source.path)
    assert warning is None and poses.detected.all() and len(poses) == 20
    assert (poses.keypoints[:, L["nose"], 3] == 0).all() and (poses.keypoints[:, L["left_ankle"], 3] == 1).all()
    rows["left_ankle"].bone = "no such bone"
    with pytest.raises(addon.strips.StripProblem, match="no such bone"):
        addon.pose_sources.prepare(scene, strip, str(tmp_path))
