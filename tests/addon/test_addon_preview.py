"""Preview Poses end to end: a real movie strip, the real server, the poller driven by hand, the
result strip on the timeline, and Blender's render of it compared with the server's frames."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from addon_helpers import (
    CLIP_FRAMES,
    add_movie_strip,
    blender_pixels,
    drive,
    finished,
    poll_message,
    render_frame,
    run_server_python,
)

bpy = pytest.importorskip("bpy")


def _run_preview(addon, scene, clip, target_model, **settings):
    for key, value in settings.items():
        setattr(scene.edn, key, value)
    assert bpy.ops.edn.refresh_models() == {"FINISHED"}
    drive(addon, lambda: addon.session.state.models_loaded, 30, "the model list")
    scene.edn.target_model_choice = target_model["name"]  # the sidebar's drop-down, filled from the server's list
    assert scene.edn.target_model == target_model["name"]
    assert bpy.ops.edn.preview_poses() == {"FINISHED"}
    record = scene.edn.jobs[-1]
    drive(addon, lambda: record.placed or record.state in ("failed", "cancelled", "interrupted", "not_sent"), 180)
    assert record.state == "done" and record.placed, (record.state, record.error_code, record.error_message)
    return record


def test_preview_poses_adds_a_strip_that_renders_the_server_frames(addon, local_prefs, scene, clip24, target_model, tmp_path):
    # The source sits at frame 11 on channel 2 with 3 frames trimmed at its start and 5 at its end,
    # and a strip occupies channel 3 there: the result must skip to channel 4, start at frame 14
    # and cover exactly the 16 visible frames (media frames 3..18).
    source = add_movie_strip(addon, scene, clip24, channel=2, frame_start=11)
    source.frame_offset_start, source.frame_offset_end = 3, 5
    blocker = addon.strips.add_movie(scene, "blocker", str(clip24), 3, 20)
    scene.sequence_editor.active_strip = source
    scene.edn.output_dir = str(tmp_path / "out")
    # Strips are fitted to the output size when added: make it the frames' size first, so the
    # render below must equal the server's PNGs pixel for pixel.
    width, height = target_model["stats"]["frame_size"]
    scene.render.resolution_x, scene.render.resolution_y = width, height

    record = _run_preview(addon, scene, clip24, target_model)

    strip = addon.strips.find_strip(scene, record.result_strip)
    # the source stays the active strip, so the next Preview Poses or Transfer Motion reads the footage again
    assert strip.type == "IMAGE" and not strip.select and scene.sequence_editor.active_strip == source
    assert strip.channel == 4 and blocker.channel == 3
    assert (strip.frame_final_start, strip.frame_final_duration) == (14, CLIP_FRAMES - 8)
    folder = Path(bpy.path.abspath(strip.directory))
    assert folder.is_relative_to(tmp_path / "out"), folder
    names = [e.filename for e in strip.elements]
    assert names == [f"{i:06d}.png" for i in range(3, CLIP_FRAMES - 5)]  # numbered by source frame
    assert all((folder / n).is_file() for n in names)
    assert record.stage.startswith("strip ")

    # Render two timeline frames through Blender's pipeline: over nothing, the result is the server's frames.
    blocker.mute = source.mute = True
    for frame, name in ((14, names[0]), (25, names[11])):
        rendered, expected = render_frame(scene, frame, tmp_path / f"render_{frame}.png"), blender_pixels(folder / name)
        assert rendered.shape == expected.shape == (height, width, 3)
        assert expected.max() > 0.5, "the label frame should show a stick figure"
        assert abs(rendered - expected).max() < 2.5 / 255, f"frame {frame} differs from {name}"
    # Over the footage, the stick figures are screened onto it: the footage shows where they are black
    # (so the sliders can be judged against the real dancer), and every pixel is at least the figure's.
    assert strip.blend_type == "SCREEN"
    source.mute = False
    overlaid, label = render_frame(scene, 14, tmp_path / "overlaid.png"), blender_pixels(folder / names[0])
    background = label.max(axis=2) < 0.02
    assert background.any() and overlaid[background].mean() > 0.1, "the footage shows through the label's black"
    assert (overlaid >= label - 2.5 / 255).all()

    # edn's own strips are never a source: the poll says why, and what to click instead
    scene.sequence_editor.active_strip = strip
    for operator in (bpy.ops.edn.preview_poses, bpy.ops.edn.transfer_motion, bpy.ops.edn.train_target):
        message = poll_message(operator)
        assert "made by Preview Poses" in message and "source strip" in message, message


def test_preview_with_a_saved_target_needs_no_model_list(addon, local_prefs, scene, clip24, target_model, edn_server,
                                                        tmp_path):
    """A reopened file remembers its target: Preview Poses names it to the server, which reads the
    model's statistics itself, so nobody has to press Refresh Models first."""
    source = add_movie_strip(addon, scene, clip24)
    source.frame_final_end = 1 + 4
    scene.edn.output_dir = str(tmp_path / "out")
    scene.edn.target_model = target_model["name"]
    scene.edn.pose_model = "lite"  # the sidebar's Pose Model goes with the job
    assert not addon.session.state.models_loaded and addon.session.state.models == []
    assert bpy.ops.edn.preview_poses() == {"FINISHED"}
    record = scene.edn.jobs[-1]
    drive(addon, lambda: finished(record), 180)
    assert (record.state, record.placed, record.error_message) == ("done", True, "")
    params = addon.client.EdnClient(edn_server["url"], edn_server["token"]).job(record.job_id)["params"]
    assert params["target_model"] == target_model["name"] and params.get("target_stats") is None
    assert params["model"] == "lite"


def test_a_preview_for_a_model_the_server_lacks_is_not_sent(addon, local_prefs, scene, clip24, target_model):
    add_movie_strip(addon, scene, clip24)
    scene.edn.target_model = "nobody trained this"
    assert bpy.ops.edn.preview_poses() == {"FINISHED"}
    record = scene.edn.jobs[-1]
    drive(addon, lambda: finished(record), 60)
    assert (record.state, record.error_code) == ("not_sent", "MODEL_NOT_FOUND")
    assert "nobody trained this" in record.error_message and scene.edn.last_error == record.error_message


def test_result_renders_to_a_movie(addon, local_prefs, scene, clip24, target_model, tmp_path):
    add_movie_strip(addon, scene, clip24, channel=1, frame_start=1)
    source = scene.sequence_editor.active_strip
    source.frame_final_end = 1 + 8  # a short range keeps the encode quick
    scene.edn.output_dir = str(tmp_path / "out")
    width, height = target_model["stats"]["frame_size"]
    scene.render.resolution_x, scene.render.resolution_y = width, height
    record = _run_preview(addon, scene, clip24, target_model, mirror=True, scale=0.8)
    strip = addon.strips.find_strip(scene, record.result_strip)
    assert (strip.channel, strip.frame_final_start, strip.frame_final_duration) == (2, 1, 8)

    scene.frame_start, scene.frame_end = 1, 8
    movie = tmp_path / "result.mp4"
    addon.strips.set_ffmpeg_output(scene, str(movie))
    bpy.ops.render.render(animation=True)
    assert movie.is_file() and movie.stat().st_size > 1000
    check = addon.strips.add_movie(scene, "check", str(movie), 5, 1)
    assert check.frame_duration == 8
    assert (check.elements[0].orig_width, check.elements[0].orig_height) == (width, height)
    os.remove(movie)


def test_remote_server_gets_an_upload_and_the_frames_are_downloaded(addon, local_prefs, scene, clip24, target_model,
                                                                    edn_server, tmp_path):
    # A loopback URL in Remote mode takes the remote path (upload the movie, download the archive)
    # without needing Blender's online access.
    local_prefs.mode, local_prefs.remote_url, local_prefs.remote_token = "REMOTE", edn_server["url"], edn_server["token"]
    uploads_before = _uploads(edn_server)
    source = add_movie_strip(addon, scene, clip24, channel=1, frame_start=5)
    source.frame_final_end = 5 + 6
    scene.edn.output_dir = str(tmp_path / "out")
    record = _run_preview(addon, scene, clip24, target_model)
    assert record.remote
    strip = addon.strips.find_strip(scene, record.result_strip)
    assert (strip.channel, strip.frame_final_start, strip.frame_final_duration) == (2, 5, 6)
    folder = Path(bpy.path.abspath(strip.directory))
    assert folder.parent.parent == tmp_path / "out" and folder.name == "frames"  # unpacked locally, not the server's folder
    assert [e.filename for e in strip.elements] == [f"{i:06d}.png" for i in range(6)]
    assert not list(folder.parent.glob("*.zip*"))  # the archive is removed once unpacked
    _assert_server_released(addon, edn_server, record.job_id, uploads_before)


def _uploads(edn_server) -> set[str]:
    return {p.name for p in (Path(edn_server["data_dir"]) / "uploads").glob("[0-9a-f]*")}


def _assert_server_released(addon, edn_server, job_id, uploads_before: set[str]):
    """Once the frames are here the server's copies go: the job, its files and the uploaded media."""
    with pytest.raises(addon.client.ServerError) as missing:
        addon.client.EdnClient(edn_server["url"], edn_server["token"]).job(job_id)
    assert missing.value.code == "NOT_FOUND"
    assert not (Path(edn_server["data_dir"]) / "jobs" / job_id).exists()
    assert _uploads(edn_server) == uploads_before


def _add_shots(addon, scene, name: str, folder: Path, numbers: range, channel: int, frame_start: int):
    """An image strip of folder/shot_<n>.png for n in numbers."""
    strip = addon.strips.new_strip(addon.strips.top_level(scene.sequence_editor), "new_image", name,
                                   str(folder / f"shot_{numbers[0]}.png"), channel, frame_start, "FIT")
    for number in numbers[1:]:
        strip.elements.append(f"shot_{number}.png")
    return strip


def _image_strip(addon, scene, clip24, folder: Path):
    """An image strip over shot_8 .. shot_17 showing shot_10 .. shot_17 from timeline frame 3. Numbers
    that sort differently as text (shot_10 < shot_8) check that the add-on and the server agree on order."""
    folder.mkdir()
    run_server_python(f"""
        import cv2
        from edn_server.media import iter_frames, probe
        for index, frame in enumerate(iter_frames(probe({str(clip24)!r}), 0, 10)):
            cv2.imwrite({str(folder)!r} + f"/shot_{{index + 8}}.png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    """)
    strip = _add_shots(addon, scene, "shot", folder, range(8, 18), channel=1, frame_start=1)
    strip.frame_offset_start = 2  # shows shot_10 .. shot_17
    scene.sequence_editor.active_strip = strip
    return strip


def test_image_sequence_strip_as_source(addon, local_prefs, scene, clip24, target_model, edn_server, tmp_path):
    folder = tmp_path / "shot"
    _image_strip(addon, scene, clip24, folder)
    scene.edn.output_dir = str(tmp_path / "out")
    record = _run_preview(addon, scene, clip24, target_model)
    result = addon.strips.find_strip(scene, record.result_strip)
    assert (result.channel, result.frame_final_start, result.frame_final_duration) == (2, 3, 8)
    media = addon.client.EdnClient(edn_server["url"], edn_server["token"]).job(record.job_id)["input"]["media"]
    assert (media["path"], media["frame_start"], media["frame_end"], media["fps"]) == (str(folder), 2, 10, 20.0)


def test_image_sequence_strip_on_a_remote_server_is_sent_as_its_frames(addon, local_prefs, scene, clip24, target_model,
                                                                       edn_server, tmp_path):
    local_prefs.mode, local_prefs.remote_url, local_prefs.remote_token = "REMOTE", edn_server["url"], edn_server["token"]
    uploads_before = _uploads(edn_server)
    _image_strip(addon, scene, clip24, tmp_path / "shot")
    scene.edn.output_dir = str(tmp_path / "out")
    remote = _run_preview(addon, scene, clip24, target_model)
    assert remote.remote
    result = addon.strips.find_strip(scene, remote.result_strip)
    assert (result.channel, result.frame_final_start, result.frame_final_duration) == (2, 3, 8)
    assert [e.filename for e in result.elements] == [f"{i:06d}.png" for i in range(8)]
    assert not list((tmp_path / "out").rglob("*.zip"))  # the add-on's zip is gone from the output folder
    _assert_server_released(addon, edn_server, remote.job_id, uploads_before)
    # and the server's frames equal a local run on a folder holding just those images (detection
    # depends on where in a clip it starts, so the local strip must start at the same image)
    remote_frames = Path(bpy.path.abspath(result.directory))
    visible = tmp_path / "visible"
    visible.mkdir()
    for number in range(10, 18):
        shutil.copy(tmp_path / "shot" / f"shot_{number}.png", visible)
    scene.sequence_editor.active_strip = _add_shots(addon, scene, "visible", visible, range(10, 18), channel=5,
                                                    frame_start=3)
    local_prefs.mode = "LOCAL"
    again = _run_preview(addon, scene, clip24, target_model)
    local_frames = Path(bpy.path.abspath(addon.strips.find_strip(scene, again.result_strip).directory))
    for k in range(8):
        same = blender_pixels(remote_frames / f"{k:06d}.png") == blender_pixels(local_frames / f"{k:06d}.png")
        assert same.all(), f"frame {k}"


def test_a_remote_job_the_server_refuses_leaves_no_upload_behind(addon, local_prefs, scene, clip24, edn_server):
    local_prefs.mode, local_prefs.remote_url, local_prefs.remote_token = "REMOTE", edn_server["url"], edn_server["token"]
    uploads_before = _uploads(edn_server)
    add_movie_strip(addon, scene, clip24)
    scene.edn.target_model = "nobody trained this"
    assert bpy.ops.edn.transfer_motion() == {"FINISHED"}
    record = scene.edn.jobs[-1]
    drive(addon, lambda: record.state == "not_sent", 60)
    assert record.error_code == "MODEL_NOT_FOUND" and "nobody trained this" in record.error_message
    assert _uploads(edn_server) == uploads_before


def test_a_remote_job_that_fails_releases_its_upload(addon, local_prefs, scene, target_model, edn_server, tmp_path):
    empty = tmp_path / "empty_room.mp4"
    run_server_python(f"""
        import numpy as np
        from edn_server.media import VideoWriter
        writer = VideoWriter({str(empty)!r}, 20.0, (160, 120))
        for _ in range(6):
            writer.write(np.full((120, 160, 3), 90, np.uint8))
        writer.close()
    """)
    local_prefs.mode, local_prefs.remote_url, local_prefs.remote_token = "REMOTE", edn_server["url"], edn_server["token"]
    uploads_before = _uploads(edn_server)
    add_movie_strip(addon, scene, empty)
    assert bpy.ops.edn.refresh_models() == {"FINISHED"}
    drive(addon, lambda: addon.session.state.models_loaded, 30, "the model list")
    scene.edn.target_model_choice = target_model["name"]
    assert bpy.ops.edn.preview_poses() == {"FINISHED"}
    record = scene.edn.jobs[-1]
    drive(addon, lambda: record.state == "failed" and _uploads(edn_server) == uploads_before, 60)
    assert record.error_code == "NO_PERSON", record.error_message
    # said in Blender's words: the timeline frames of the strip, and the sidebar's Pose Model
    assert "timeline frames 1-6 of strip 'dance'" in record.error_message, record.error_message
    assert "Pose Model to Heavy" in record.error_message and "[" not in record.error_message
