"""What stopped a new user in the first hour (issue 12), through the operators and the poller against
the real server: a second training run (Resume Training, Delete Model, a taken name), a still image
as the source, results that survive a moved project, and a bad Python path that stays explained."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from addon_helpers import TINY_MODEL, add_movie_strip, drive, finished, prefs, run_server_python

bpy = pytest.importorskip("bpy")


def _client(addon, edn_server):
    return addon.client.EdnClient(edn_server["url"], edn_server["token"], timeout=30.0)


def _models(addon):
    assert bpy.ops.edn.refresh_models() == {"FINISHED"}
    drive(addon, lambda: addon.session.state.models_loaded, 30, "the model list")
    return {m["name"]: m for m in addon.session.state.models}


def test_a_taken_name_offers_resume_training_which_trains_the_model_on(addon, local_prefs, scene, clip24, tiny_target):
    add_movie_strip(addon, scene, clip24, name="tiny dancer.mp4")  # its default name is the tiny model's
    scene.edn.train_minutes = 0.1
    # The server refuses a second model of that name; the add-on says what to press, in its own words.
    assert bpy.ops.edn.train_target() == {"FINISHED"}
    refused = scene.edn.jobs[-1]
    drive(addon, lambda: finished(refused), 60)
    assert (refused.state, refused.error_code) == ("not_sent", "MODEL_EXISTS")
    assert "Resume Training" in refused.error_message and "/v1/" not in refused.error_message
    # with the list known, the refusal comes at once, and the panel offers Resume Training instead
    drive(addon, lambda: addon.session.state.models_loaded and TINY_MODEL in addon.model_list.names(), 30, "the list")
    jobs = len(scene.edn.jobs)
    with pytest.raises(RuntimeError, match="Resume Training"):  # an operator's error report raises in a script
        bpy.ops.edn.train_target()
    assert len(scene.edn.jobs) == jobs and "Resume Training" in scene.edn.last_error
    before = _models(addon)[TINY_MODEL]["info"]

    assert bpy.ops.edn.resume_training() == {"FINISHED"}
    resumed = scene.edn.jobs[-1]
    drive(addon, lambda: finished(resumed), 180)
    assert (resumed.state, resumed.error_message) == ("done", ""), resumed.error_message
    after = _models(addon)[TINY_MODEL]["info"]
    assert after["steps"] > before["steps"] and after["training"]["seconds"] > before["training"]["seconds"]
    assert after["preset"] == "tiny"  # a model keeps its own quality: the sidebar's Preview is not applied


def test_resume_training_of_a_model_the_server_lacks_says_so(addon, local_prefs, scene, clip24, edn_server):
    add_movie_strip(addon, scene, clip24)
    scene.edn.train_name = "never trained"
    assert bpy.ops.edn.resume_training() == {"FINISHED"}  # the list was not fetched: the server answers
    record = scene.edn.jobs[-1]
    drive(addon, lambda: finished(record), 60)
    assert record.error_code == "MODEL_NOT_FOUND" and "no model named 'never trained' to resume" in record.error_message


def test_delete_model_asks_first_then_removes_it(addon, local_prefs, scene, edn_server, target_model):
    doomed = Path(edn_server["data_dir"]) / "models" / "doomed"
    doomed.mkdir(parents=True)
    (doomed / "model.json").write_text(json.dumps({"name": "doomed", "stats": target_model["stats"]}))
    assert "doomed" in _models(addon)
    scene.edn.target_model_choice = "doomed"

    class WindowManager:  # what invoke() asks Blender for: a confirmation naming the model
        def invoke_confirm(self, operator, event, **words):
            self.words = words
            return {"RUNNING_MODAL"}

    class Context:
        window_manager = WindowManager()
        scene = bpy.context.scene
        workspace = bpy.context.workspace

    class Operator:
        name = ""
        _name = addon.model_operators.EDN_OT_delete_model._name

    assert addon.model_operators.EDN_OT_delete_model.invoke(Operator(), Context(), None) == {"RUNNING_MODAL"}
    assert "doomed" in Context.window_manager.words["title"] and Context.window_manager.words["confirm_text"] == "Delete"
    assert doomed.is_dir(), "nothing is deleted before the user confirms"

    assert bpy.ops.edn.delete_model() == {"FINISHED"}  # confirmed (a script runs execute directly)
    drive(addon, lambda: not addon.session.state.busy() and not doomed.exists(), 30, "the delete")
    assert scene.edn.target_model == "" and "doomed" not in addon.model_list.names()
    assert "doomed" not in _models(addon) and target_model["name"] in addon.model_list.names()


def _still(clip24: Path, folder: Path) -> Path:
    folder.mkdir()
    run_server_python(f"""
        import cv2
        from edn_server.media import iter_frames, probe
        frame = next(iter(iter_frames(probe({str(clip24)!r}), 5, 6)))
        cv2.imwrite({str(folder / "pose.png")!r}, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    """)
    return folder / "pose.png"


def test_a_still_image_gives_a_result_as_long_as_its_strip(addon, local_prefs, scene, clip24, target_model, tmp_path):
    still = _still(clip24, tmp_path / "still")
    strip = addon.strips.new_strip(addon.strips.top_level(scene.sequence_editor), "new_image", "pose", str(still), 1, 3, "FIT")
    strip.frame_final_duration = 25  # a still held for 25 frames, as a user drags it out
    scene.sequence_editor.active_strip = strip
    scene.edn.output_dir, scene.edn.target_model = str(tmp_path / "out"), target_model["name"]
    assert bpy.ops.edn.preview_poses() == {"FINISHED"}
    record = scene.edn.jobs[-1]
    drive(addon, lambda: finished(record), 120)
    assert (record.state, record.placed) == ("done", True), record.error_message
    result = addon.strips.find_strip(scene, record.result_strip)
    assert (result.frame_final_start, result.frame_final_duration, len(result.elements)) == (3, 25, 1)  # the pose held


def test_results_use_paths_relative_to_the_saved_blend_and_survive_a_move(addon, local_prefs, scene, clip24, target_model,
                                                                        tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(clip24, project / "dance.mp4")
    source = add_movie_strip(addon, scene, project / "dance.mp4")
    source.frame_final_end = 1 + 4
    scene.edn.target_model = target_model["name"]
    bpy.ops.wm.save_as_mainfile(filepath=str(project / "edit.blend"), relative_remap=True)
    scene = bpy.context.scene
    assert scene.edn.output_dir == "//edn_output/"
    assert bpy.ops.edn.preview_poses() == {"FINISHED"}
    record = scene.edn.jobs[-1]
    drive(addon, lambda: finished(record), 120)
    assert (record.state, record.placed) == ("done", True), record.error_message
    strip = addon.strips.find_strip(scene, record.result_strip)
    assert strip.directory.startswith("//edn_output") and record.output_dir.startswith("//edn_output"), strip.directory
    bpy.ops.wm.save_mainfile()

    moved, name = tmp_path / "moved project", strip.name  # the record and strip are gone once another file opens
    shutil.move(project, moved)
    bpy.ops.wm.open_mainfile(filepath=str(moved / "edit.blend"))
    strip = addon.strips.find_strip(bpy.context.scene, name)
    folder = Path(bpy.path.abspath(strip.directory))
    assert folder.is_relative_to(moved) and all((folder / e.filename).is_file() for e in strip.elements)


def test_an_unsaved_file_says_where_its_results_go(addon, local_prefs, scene):
    from test_addon_panels import draw

    text = "".join(draw(addon.panels.draw_main).texts().split())  # wrapped lines, joined again
    assert f"resultsgoto{addon.operators.output_base(scene)}" in text and "Savethe.blend" in text


def test_a_bad_python_path_stays_the_reason_shown(addon, local_prefs, scene, tmp_path, monkeypatch):
    local_prefs.python_path, local_prefs.data_dir = str(tmp_path / "no" / "python"), str(tmp_path / "data")
    monkeypatch.setattr(addon.server_status, "HEALTH_S", 0.0)  # health checks at every tick
    assert bpy.ops.edn.start_server() == {"FINISHED"}
    drive(addon, lambda: addon.session.state.server.code == "PYTHON_MISSING", 30, "the failed start")
    checked = addon.session.state.server.checked
    drive(addon, lambda: addon.session.state.server.checked > checked, 30, "a health check")
    status = addon.session.state.server
    assert status.code == "PYTHON_MISSING" and str(tmp_path / "no" / "python") in status.message, status
    assert "not running" not in status.message


def test_the_python_a_server_recorded_is_the_default(addon, local_prefs, scene, tmp_path, server_python):
    """A zip install finds no project .venv above itself: the Python that `edn serve` (or make setup)
    recorded in the data folder starts the server."""
    local_prefs.python_path, local_prefs.data_dir = "", str(tmp_path / "data")
    assert addon.preferences.detected_python() == "", "the installed extension has no project .venv above it"
    assert addon.preferences.server_settings(bpy.context).python == ""
    run_server_python(f"from edn_server.config import record_python; record_python({str(tmp_path / 'data')!r})")
    assert addon.preferences.server_settings(bpy.context).python == str(server_python)
    assert prefs().python_path == ""
