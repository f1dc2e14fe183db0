"""Job-state logic without Blender: display text, ETA, the media range a strip shows, where results go."""
from __future__ import annotations

import pytest
from addon_helpers import pure

js = pure("jobstate")


@pytest.mark.parametrize("seconds, text", [(None, ""), (-1, ""), (float("nan"), ""), (0, "0 s"), (8.4, "8 s"),
                                           (59.6, "1 min 00 s"), (125, "2 min 05 s"), (3600, "1 h 00 min"),
                                           (3 * 3600 + 4 * 60 + 59, "3 h 04 min")])
def test_eta_reads_like_a_person_would_say_it(seconds, text):
    assert js.format_eta(seconds) == text


def test_status_line_shows_stage_progress_and_eta_only_while_running():
    assert js.status_text("transfer", "running", 0.421, "detect poses", 70) == \
        "Transfer: Running, detect poses, 42%, 1 min 10 s left"
    assert js.status_text("preview_poses", "running", 0.0, "", None) == "Preview: Running, 0%"
    assert js.status_text("train", "queued", 0.0, "", None) == "Train: Queued"
    assert js.status_text("transfer", "interrupted", 0.5, "generate", 3) == "Transfer: Interrupted (server stopped)"
    assert js.status_text("transfer", "done", 1.0, "strip 'a' on channel 3", None) == "Transfer: Done, strip 'a' on channel 3"
    assert js.status_text("eval", "not_sent", 0, "", None) == "Eval: Not sent"


def test_final_and_active_states_partition_the_lifecycle():
    assert set(js.FINAL).isdisjoint(js.ACTIVE)
    assert all(js.is_final(s) for s in ("done", "failed", "cancelled", "interrupted", "not_sent"))
    assert not any(js.is_final(s) for s in ("submitting", "queued", "running"))


def test_visible_range_of_an_untrimmed_strip_is_the_whole_clip():
    shown = js.visible_media_range(frame_start=10, frame_final_start=10, frame_final_end=112, media_frames=102)
    assert (shown.first, shown.end, shown.timeline_start, shown.count) == (0, 102, 10, 102)


def test_visible_range_follows_trims_on_both_ends():
    # Blender: frame_start stays where media frame 0 would be; the trims move the final start/end.
    shown = js.visible_media_range(frame_start=10, frame_final_start=15, frame_final_end=105, media_frames=102)
    assert (shown.first, shown.end, shown.timeline_start) == (5, 95, 15)


def test_held_frames_past_the_media_are_cut_off():
    # Negative offsets extend a strip with still frames: there is no media to send for those.
    shown = js.visible_media_range(frame_start=10, frame_final_start=4, frame_final_end=120, media_frames=102)
    assert (shown.first, shown.end, shown.timeline_start) == (0, 102, 10)
    with pytest.raises(ValueError, match="none of its media"):
        js.visible_media_range(frame_start=10, frame_final_start=112, frame_final_end=120, media_frames=102)


def test_animation_offset_shifts_the_media():
    shown = js.visible_media_range(frame_start=1, frame_final_start=1, frame_final_end=11, media_frames=50,
                                   animation_offset_start=4)
    assert (shown.first, shown.end) == (4, 14)


def test_image_strip_range_maps_into_the_folder_in_server_order():
    folder = ["f10.png", "f9.png", "f8.png", "notes.txt", "f11.png", "f12.png"]
    strip_files = ["f9.png", "f10.png", "f11.png", "f12.png"]  # the strip starts at the folder's 2nd image
    shown = js.MediaRange(first=1, end=3, timeline_start=7)  # it shows f10 and f11
    mapped = js.image_folder_range(folder, strip_files, shown)
    assert (mapped.first, mapped.end, mapped.timeline_start) == (2, 4, 7)


def test_image_strip_whose_frames_are_not_consecutive_is_refused():
    with pytest.raises(ValueError, match="not consecutive"):
        js.image_folder_range(["a1.png", "a2.png", "a3.png"], ["a1.png", "a3.png"], js.MediaRange(0, 2, 1))
    with pytest.raises(ValueError, match="not in the strip's folder"):
        js.image_folder_range(["a1.png"], ["gone.png"], js.MediaRange(0, 1, 1))


def test_first_free_channel_skips_only_channels_busy_in_the_range():
    occupied = [(1, 1, 100), (2, 1, 20), (3, 50, 60), (4, 10, 30)]
    assert js.first_free_channel(occupied, above=1, start=20, end=50) == 2  # touching ends do not overlap
    assert js.first_free_channel(occupied, above=1, start=10, end=55) == 5
    assert js.first_free_channel(occupied, above=3, start=1, end=5) == 4
    with pytest.raises(ValueError, match="every channel"):
        js.first_free_channel([(c, 0, 10) for c in range(1, 129)], above=1, start=0, end=10)


def test_names_fit_blender_and_file_systems():
    folder = js.output_folder_name("my clip/../x:y", "transfer", when=0)
    assert "/" not in folder and ":" not in folder and folder.startswith("my_clip_.._x_y-transfer-")
    assert js.frame_files(["10.png", "9.png", ".hidden.png", "a.txt", "11.JPG"]) == ["9.png", "10.png", "11.JPG"]


def test_request_bodies_carry_the_sidebar_settings():
    settings = js.MotionSettings(auto_normalize=False, scale=1.5, offset_x=-3, offset_y=4, mirror=True, smoothing=0.5,
                                 face_refinement=False)
    shown = js.MediaRange(first=3, end=19, timeline_start=14)
    assert js.media_ref("/clips/a.mp4", shown, None) == {"path": "/clips/a.mp4", "frame_start": 3, "frame_end": 19}
    assert js.media_ref(None, shown, 24.0, upload_id="u1") == {"upload_id": "u1", "frame_start": 3, "frame_end": 19, "fps": 24.0}
    normalization = {"auto": False, "scale": 1.5, "offset_x": -3, "offset_y": 4, "mirror": True}
    assert js.preview_params(settings, "anna", "/out") == {"target_model": "anna", "normalization": normalization,
                                                           "smooth": 0.5, "model": "full", "output_dir": "/out"}
    assert js.transfer_params(settings, "anna", None) == {"model": "anna", "normalization": normalization, "smooth": 0.5,
                                                          "face": False, "pose_model": "full", "output": "composite",
                                                          "output_height": "target"}
    alpha = js.MotionSettings(output=js.PERSON_ALPHA, output_height="720")
    assert {k: js.transfer_params(alpha, "anna", None)[k] for k in ("output", "output_height")} == \
        {"output": "person-alpha", "output_height": 720}
    assert js.train_params("anna", "paper", 12) == {"name": "anna", "preset": "paper", "minutes": 12.0, "pose_model": "full"}
    # the sidebar's Pose Model goes with every job, under each kind's own parameter name
    heavy = js.MotionSettings(pose_model="heavy")
    assert js.preview_params(heavy, "anna", None)["model"] == js.transfer_params(heavy, "anna", None)["pose_model"] == "heavy"
    assert js.train_params("anna", "preview", 5, "lite", resume=True) == {"name": "anna", "preset": "preview", "minutes": 5.0,
                                                                         "pose_model": "lite", "resume": True}


def test_bytes_on_their_way_read_in_megabytes():
    assert js.transfer_text("uploading", 12_345_678, 80_000_000) == "uploading 12.3 of 80.0 MB"
    assert js.transfer_text("downloading frames", 2_000_000, 0) == "downloading frames 2.0 MB"
    assert js.status_text("transfer", "submitting", 0.1, "uploading 8.0 of 80.0 MB", None) == \
        "Transfer: Submitting, uploading 8.0 of 80.0 MB"
    assert js.status_text("transfer", "submitting", 0.0, "", None) == "Transfer: Submitting"
