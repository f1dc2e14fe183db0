"""Job lifecycle through the add-on: cancel (running, and before the server answered), a saved file
finding its jobs again, and Train/Transfer against whatever the server implements."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from addon_helpers import add_movie_strip, drive, finished, poll_message, submit_raw_job

bpy = pytest.importorskip("bpy")


def _record(scene, uid):
    return next(r for r in scene.edn.jobs if r.uid == uid)


def test_cancel_job_stops_a_running_job_within_a_second_or_two(addon, local_prefs, scene):
    assert "No job is running" in poll_message(bpy.ops.edn.cancel_job)
    uid = submit_raw_job(addon, scene, "test_sleep", {"seconds": 60, "steps": 600}).uid
    drive(addon, lambda: _record(scene, uid).state == "running" and _record(scene, uid).progress > 0, 30)
    assert _record(scene, uid).job_id
    started = time.monotonic()
    assert bpy.ops.edn.cancel_job(uid=uid) == {"FINISHED"}
    drive(addon, lambda: finished(_record(scene, uid)), 15)
    assert _record(scene, uid).state == "cancelled" and time.monotonic() - started < 5
    assert "No job is running" in poll_message(bpy.ops.edn.cancel_job)


def test_cancel_before_the_server_answered_cancels_once_it_does(addon, local_prefs, scene):
    uid = submit_raw_job(addon, scene, "test_sleep", {"seconds": 60, "steps": 600}).uid
    assert _record(scene, uid).state == "submitting"
    assert bpy.ops.edn.cancel_job() == {"FINISHED"}  # no uid: the newest running job
    drive(addon, lambda: finished(_record(scene, uid)), 15)
    assert _record(scene, uid).state == "cancelled" and _record(scene, uid).job_id


def test_a_saved_file_finds_its_running_job_again(addon, local_prefs, scene, tmp_path):
    uid = submit_raw_job(addon, scene, "test_sleep", {"seconds": 1.5, "steps": 15}).uid
    drive(addon, lambda: bool(_record(scene, uid).job_id), 15)
    job_id = _record(scene, uid).job_id
    blend = tmp_path / "saved.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.read_homefile(use_empty=True)
    assert not any(len(s.edn.jobs) for s in bpy.data.scenes)
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    reopened = bpy.context.scene
    record = _record(reopened, uid)
    assert record.job_id == job_id and record.state in ("queued", "running")
    drive(addon, lambda: finished(_record(bpy.context.scene, uid)), 30)
    assert _record(bpy.context.scene, uid).state == "done"


def test_a_job_saved_before_it_reached_the_server_says_so(addon, local_prefs, scene):
    record = scene.edn.jobs.add()
    record.uid, record.kind, record.state = "lost", "transfer", "submitting"
    addon.poller.tick()
    record = _record(scene, "lost")
    assert record.state == "not_sent" and "Start it again" in record.error_message


def _submit_or_not_implemented(addon, op, scene, timeout):
    assert op() == {"FINISHED"}
    uid = scene.edn.jobs[-1].uid
    drive(addon, lambda: finished(_record(scene, uid)), timeout)
    return _record(scene, uid)


def test_train_then_transfer_or_a_clear_not_implemented(addon, local_prefs, scene, clip24, target_model, tmp_path):
    """Train Target Model on the clip with a tiny budget, then Transfer Motion with the new model.
    While the server lacks these kinds it answers NOT_IMPLEMENTED, which must reach the user."""
    add_movie_strip(addon, scene, clip24)
    scene.edn.output_dir = str(tmp_path / "out")
    scene.edn.train_name, scene.edn.train_minutes, scene.edn.quality_preset = "addon test target", 0.1, "preview"
    trained = _submit_or_not_implemented(addon, bpy.ops.edn.train_target, scene, 300)
    if trained.error_code == "NOT_IMPLEMENTED":
        assert trained.state == "not_sent" and "not available" in trained.error_message
        assert scene.edn.last_error == trained.error_message
        scene.edn.target_model = target_model["name"]  # a target with stats but no weights
        transfer = _submit_or_not_implemented(addon, bpy.ops.edn.transfer_motion, scene, 60)
        assert transfer.error_code in ("NOT_IMPLEMENTED", "MODEL_NOT_FOUND", "WEIGHTS_MISSING", "BAD_MODEL"), transfer.error_message
        assert transfer.state in ("not_sent", "failed") and transfer.error_message
        return
    assert (trained.state, trained.error_message) == ("done", "")
    drive(addon, lambda: addon.poller.state.models_loaded, 30, "the model list")
    assert scene.edn.target_model == "addon test target"
    assert "addon test target" in [m["name"] for m in addon.poller.state.models]

    transfer = _submit_or_not_implemented(addon, bpy.ops.edn.transfer_motion, scene, 300)
    assert (transfer.state, transfer.error_message, transfer.placed) == ("done", "", True)
    strip = addon.strips.find_strip(scene, transfer.result_strip)
    assert (strip.channel, strip.frame_final_start, strip.frame_final_duration) == (2, 1, 24)
    assert strip.name == "dance > addon test target"


def test_start_and_stop_server_from_the_preferences(addon, local_prefs, scene, tmp_path):
    local_prefs.data_dir = str(tmp_path / "own-data")
    assert bpy.ops.edn.start_server() == {"FINISHED"}
    drive(addon, lambda: addon.poller.state.server.ok, 60, "the server start")
    assert (tmp_path / "own-data" / "server.json").is_file()
    assert Path(addon.preferences.log_path()).is_file()
    assert bpy.ops.edn.stop_server() == {"FINISHED"}
    drive(addon, lambda: addon.poller.state.server.code == "NOT_RUNNING", 30, "the server stop")
    assert addon.poller.state.server.message == "Server stopped" and not (tmp_path / "own-data" / "server.json").exists()


def test_output_folder_is_next_to_the_blend_or_in_the_extension_folder(addon, local_prefs, scene, tmp_path):
    assert scene.edn.output_dir == "//edn_output/"
    assert addon.operators.output_base(scene) == str(addon.preferences.user_dir() / "output")  # unsaved file
    (tmp_path / "project").mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "project" / "edit.blend"))
    assert addon.operators.output_base(bpy.context.scene) == str(tmp_path / "project" / "edn_output")
    bpy.context.scene.edn.output_dir = "//renders/../frames"
    assert addon.operators.output_base(bpy.context.scene) == str(tmp_path / "project" / "frames")
