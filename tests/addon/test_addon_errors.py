"""What users see when something is wrong: no strip, the wrong kind of strip, a missing file, a
server that is down or refuses the token, a remote server while Blender is offline. Every case
gives a clear message, adds no half-made job, and crashes nothing."""
from __future__ import annotations

import shutil
import socket
import wave

import pytest
from addon_helpers import add_movie_strip, drive, finished, poll_message, prefs

bpy = pytest.importorskip("bpy")

STRIP_OPERATORS = ("transfer_motion", "preview_poses", "train_target")


def _op(name):
    return getattr(bpy.ops.edn, name)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("name", STRIP_OPERATORS)
def test_no_active_strip_says_what_to_select(addon, local_prefs, scene, name):
    scene.edn.target_model = "anyone"
    assert not _op(name).poll()
    assert "Select a movie or image strip" in poll_message(_op(name))
    assert len(scene.edn.jobs) == 0


def _strip_of_kind(scene, kind, tmp_path):
    strips = scene.sequence_editor.strips if hasattr(scene.sequence_editor, "strips") else scene.sequence_editor.sequences
    if kind == "color":
        length = {"length": 10} if bpy.app.version >= (4, 3) else {"frame_end": 11}
        return strips.new_effect(name="fill", type="COLOR", channel=1, frame_start=1, **length)
    if kind == "scene":
        return strips.new_scene(name="shot", scene=bpy.data.scenes.new("other"), channel=1, frame_start=1)
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 8000)
    try:
        return strips.new_sound(name="tone", filepath=str(path), channel=1, frame_start=1)
    except RuntimeError as exc:  # the bpy 4.2 module is built without audio
        pytest.skip(f"this Blender cannot make sound strips: {exc}")


@pytest.mark.parametrize("kind", ["sound", "color", "scene"])
def test_unsupported_strip_kinds_are_named(addon, local_prefs, scene, kind, tmp_path):
    strip = _strip_of_kind(scene, kind, tmp_path)
    scene.sequence_editor.active_strip = strip
    scene.edn.target_model = "anyone"
    for name in STRIP_OPERATORS:
        message = poll_message(_op(name))
        if kind == "scene" and name != "train_target":  # a scene's rig is a motion source: the poll says what it lacks
            assert "Scene 'other' has no active camera and no armature" in message
            continue
        accepted = "movie or image strip" if name == "train_target" else "movie, image or scene strip"
        assert f"'{strip.name}' is a {strip.type.lower()} strip" in message and accepted in message
    assert len(scene.edn.jobs) == 0


def test_missing_movie_file_is_reported_with_its_path(addon, local_prefs, scene, clip24, tmp_path):
    moved = tmp_path / "soon_gone.mp4"
    shutil.copy(clip24, moved)
    add_movie_strip(addon, scene, moved)
    moved.unlink()
    scene.edn.target_model = "anyone"
    with pytest.raises(RuntimeError) as info:
        bpy.ops.edn.train_target()
    assert "missing" in str(info.value) and str(moved) in str(info.value) and "Relink" in str(info.value)
    assert len(scene.edn.jobs) == 0 and str(moved) in scene.edn.last_error


def test_transfer_needs_a_target_model(addon, local_prefs, scene, clip24):
    add_movie_strip(addon, scene, clip24)
    assert "Choose a target model" in poll_message(bpy.ops.edn.transfer_motion)
    assert bpy.ops.edn.train_target.poll()  # training makes the model, so it needs none


def test_server_down_ends_the_job_as_not_sent_with_the_reason(addon, local_prefs, scene, clip24):
    port = _free_port()
    local_prefs.mode, local_prefs.remote_url, local_prefs.remote_token = "REMOTE", f"http://127.0.0.1:{port}", "t"
    add_movie_strip(addon, scene, clip24)
    assert bpy.ops.edn.train_target() == {"FINISHED"}  # the HTTP happens off the main thread
    record = scene.edn.jobs[-1]
    assert record.state == "submitting"
    drive(addon, lambda: finished(record), 30)
    assert (record.state, record.error_code) == ("not_sent", "UNREACHABLE")
    assert f"127.0.0.1:{port}" in record.error_message and scene.edn.last_error == record.error_message


def test_wrong_token_is_explained_and_then_blocks_new_jobs(addon, local_prefs, scene, clip24, edn_server):
    local_prefs.mode, local_prefs.remote_url, local_prefs.remote_token = "REMOTE", edn_server["url"], "wrong"
    add_movie_strip(addon, scene, clip24)
    assert bpy.ops.edn.train_target() == {"FINISHED"}
    record = scene.edn.jobs[-1]
    drive(addon, lambda: finished(record) and addon.session.state.server.code != "UNKNOWN", 30)
    assert (record.state, record.error_code) == ("not_sent", "UNAUTHORIZED")
    assert "rejected the token" in record.error_message and "preferences" in record.error_message
    assert addon.session.state.server.code == "UNAUTHORIZED"  # the health check saw it too
    with pytest.raises(RuntimeError, match="rejected the token"):
        bpy.ops.edn.train_target()  # known bad: refused at once, no job added
    assert len(scene.edn.jobs) == 1


def test_remote_server_while_offline_is_refused_before_any_network(addon, local_prefs, scene, clip24):
    if bpy.app.online_access:
        pytest.skip("Blender's online access is on in this session")
    local_prefs.mode, local_prefs.remote_url, local_prefs.remote_token = "REMOTE", "http://gpu-box.example:8765", "t"
    add_movie_strip(addon, scene, clip24)
    with pytest.raises(RuntimeError, match="online access is off"):
        bpy.ops.edn.train_target()
    with pytest.raises(RuntimeError, match="Allow Online Access"):
        bpy.ops.edn.test_connection()
    with pytest.raises(RuntimeError, match="online access is off"):
        bpy.ops.edn.refresh_models()
    assert len(scene.edn.jobs) == 0 and "online access" in scene.edn.last_error
    assert addon.session.state.server.code == "OFFLINE" and not addon.session.state.busy()


def test_test_connection_reports_into_the_status(addon, local_prefs, scene, tmp_path):
    assert bpy.ops.edn.test_connection() == {"FINISHED"}
    drive(addon, lambda: addon.session.state.server.code not in ("UNKNOWN",), 15)
    status = addon.session.state.server
    assert status.ok and status.version and "Connected to http://127.0.0.1:" in status.message
    prefs().data_dir = str(tmp_path / "no-server-here")
    bpy.ops.edn.test_connection()
    drive(addon, lambda: addon.session.state.server.code not in ("UNKNOWN",), 15)
    assert addon.session.state.server.code == "NOT_RUNNING"
