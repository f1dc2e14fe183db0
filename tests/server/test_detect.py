"""Keypoint extraction on real clips and real MediaPipe models: detection, tracking, gaps, cache, errors."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED_MODELS, shared_clip
from edn_server import cli, media
from edn_server.errors import (
    BAD_PARAMS,
    BAD_RANGE,
    CANCELLED,
    MEDIA_NOT_FOUND,
    MEDIA_UNREADABLE,
    NO_FRAMES,
    NO_PERSON,
    POSE_MODEL_INVALID,
    EdnError,
)
from edn_server.pose.detect import DetectOptions, choose_person, describe_gaps, extract_poses, pose_cache_path
from edn_server.pose.gaps import fill_short_gaps
from edn_server.pose.landmarks import HIPS
from edn_server.pose.sequence import PoseSequence

SUBJECT4 = "edn_subject4_train.mp4"
DANCER = "mediapipe_pose_segmentation_dance.mp4"
OTHER_CLIPS = ("mediapipe_pose_segmentation_dance.mp4", "musepose_dance.mp4", "tfjs_pose_squats_pexels.mp4",
               "ubcfashion_91-3003CN5S_target.mp4")


def model_file(variant: str) -> Path:
    path = SHARED_MODELS / f"pose_landmarker_{variant}.task"
    if not path.is_file():
        pytest.skip(f"pose model {path} not found (set EDN_SHARED_MODELS to the folder holding it)")
    return path


@pytest.fixture(scope="module")
def lite() -> Path:
    return model_file("lite")


def read_frames(path: Path, start: int, count: int) -> list[np.ndarray]:
    return list(media.iter_frames(media.probe(path), start, start + count, prefetch=0))


def write_clip(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    with media.VideoWriter(path, fps, (frames[0].shape[1], frames[0].shape[0])) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def hip_x(seq: PoseSequence) -> np.ndarray:
    return seq.keypoints[:, list(HIPS), 0].mean(axis=1)


# --- real clips -------------------------------------------------------------------------------------


def test_subject4_person_found_in_nearly_every_frame_with_pixel_coordinates():
    seq = extract_poses(shared_clip(SUBJECT4), model_path=model_file("full"), end=60)
    assert len(seq) == 60 and seq.size == (1024, 512) and seq.fps == 30.0 and seq.frame_start == 0
    assert seq.detected.mean() >= 0.95, describe_gaps(seq)
    found = seq.keypoints[seq.detected]
    # The man stands in the middle of a 1024x512 frame: pixels, not normalized coordinates.
    assert 200 < np.median(hip_x(seq)[seq.detected]) < 824
    assert found[..., 1].max() > 300 and found[..., 1].min() < 200
    assert 0.0 <= found[..., 3].min() and found[..., 3].max() <= 1.0


@pytest.mark.parametrize("name", OTHER_CLIPS)
def test_other_real_clips_report_their_detection_rate(name, lite):
    seq = extract_poses(shared_clip(name), model_path=lite, end=24)
    print(f"{name}: {describe_gaps(seq)}")
    assert seq.detected.any()


def test_image_folder_gives_the_same_keypoints_as_the_movie(tmp_path, lite):
    clip = shared_clip(SUBJECT4)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, rgb in enumerate(read_frames(clip, 0, 10)):
        cv2.imwrite(str(folder / f"frame_{i + 1}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    from_movie = extract_poses(clip, model_path=lite, end=10)
    from_images = extract_poses(folder, model_path=lite, fps=30.0)
    assert len(from_images) == 10 and from_images.size == from_movie.size
    np.testing.assert_array_equal(from_images.detected, from_movie.detected)
    np.testing.assert_allclose(from_images.keypoints, from_movie.keypoints, atol=1e-3)


def test_range_is_zero_based_start_inclusive_end_exclusive(lite):
    clip = shared_clip(SUBJECT4)
    whole = extract_poses(clip, model_path=lite, start=0, end=12, use_cache=False)
    part = extract_poses(clip, model_path=lite, start=4, end=12, use_cache=False)
    assert len(part) == 8 and part.frame_start == 4
    # The tracker starts afresh at frame 4, so the first frames may differ slightly; the person is the same.
    assert np.abs(hip_x(part) - hip_x(whole)[4:]).max() < 15


# --- several people -----------------------------------------------------------------------------------


def _two_people_clip(path: Path, hide_right: range = range(0)) -> Path:
    """The EDN man (left, 1024x512) beside the MediaPipe dancer (right, resized to 512x512);
    the dancer's half is plain grey in the frames `hide_right`."""
    left = read_frames(shared_clip(SUBJECT4), 0, 36)
    right = [cv2.resize(f, (512, 512), interpolation=cv2.INTER_AREA) for f in read_frames(shared_clip(DANCER), 0, 36)]
    frames = [np.hstack([a, np.full_like(b, 128) if i in hide_right else b]) for i, (a, b) in enumerate(zip(left, right, strict=True))]
    return write_clip(path, frames, fps=20.0)


@pytest.fixture(scope="module")
def two_people(tmp_path_factory) -> Path:
    return _two_people_clip(tmp_path_factory.mktemp("composite") / "two_people.mp4")


def assert_one_side(seq: PoseSequence) -> None:
    x = hip_x(seq)[seq.detected]
    on_left = x < 1024  # the border between the two source clips
    assert on_left.all() or not on_left.any(), f"track switched people: hip x = {np.round(x)}"


@pytest.mark.parametrize("num_poses", [1, 2])
def test_track_stays_on_one_person_when_two_are_visible(two_people, lite, num_poses):
    seq = extract_poses(two_people, model_path=lite, options=DetectOptions(num_poses=num_poses))
    assert seq.detected.mean() >= 0.95, describe_gaps(seq)
    assert_one_side(seq)


def test_track_waits_for_its_person_through_an_occlusion_instead_of_switching(tmp_path, lite):
    clip = _two_people_clip(tmp_path / "occluded.mp4", hide_right=range(15, 18))
    seq = extract_poses(clip, model_path=lite, options=DetectOptions(num_poses=2))
    assert (hip_x(seq)[:15] > 1024).all(), "expected to start on the dancer, the only person found in frame 0"
    assert not seq.detected[15:18].any(), "while the dancer is hidden, the man must not take over the track"
    assert seq.detected[25:].all()
    assert_one_side(seq)


def _person(centre_x: float, height: float) -> np.ndarray:
    """A crude upright figure: 33 points spread over a box of the given height around centre_x."""
    rng = np.random.default_rng(int(centre_x))
    points = np.zeros((33, 4), dtype=np.float32)
    points[:, 0] = centre_x + rng.uniform(-height / 6, height / 6, 33)
    points[:, 1] = rng.uniform(100, 100 + height, 33)
    points[list(HIPS), 1] = 100 + height / 2
    points[:, 3] = 1.0
    return points


def test_choose_person_follows_history_whatever_the_detector_order():
    small_left, big_right = _person(200, 200), _person(700, 400)
    assert choose_person([small_left, big_right], None) is big_right  # no history: the largest person
    previous = small_left.copy()
    previous[:, 0] += 15  # the person moved a little since the last frame
    assert choose_person([small_left, big_right], previous) is small_left
    assert choose_person([big_right, small_left], previous) is small_left
    assert choose_person([big_right], previous, max_jump=1.0) is None  # someone else, far away
    assert choose_person([big_right], previous) is big_right


# --- gaps -----------------------------------------------------------------------------------------


def test_fill_short_gaps_interpolates_only_short_interior_gaps():
    detected = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0], dtype=bool)
    keypoints = np.zeros((12, 33, 4), dtype=np.float32)
    keypoints[:, :, 0] = np.arange(12)[:, None] * 10.0
    keypoints[~detected] = 0
    filled, interpolated = fill_short_gaps(keypoints, detected, max_gap=3)
    assert interpolated.tolist() == [False, False, True, True] + [False] * 8
    np.testing.assert_allclose(filled[2:4, 0, 0], [20.0, 30.0])
    assert not filled[5:10].any() and not filled[11].any()  # long gap and trailing gap stay empty
    assert not keypoints[2:4].any()  # the input is left alone


def test_gaps_interpolated_long_gaps_kept_and_few_detections_warned(tmp_path, lite):
    """5 frames with the man, 3 blank (0.1 s), 5 with him, 30 blank (1 s), 2 with him."""
    person = read_frames(shared_clip(SUBJECT4), 0, 12)
    blank = np.full_like(person[0], 128)
    frames = person[:5] + [blank] * 3 + person[5:10] + [blank] * 30 + person[10:12]
    clip = write_clip(tmp_path / "gappy.mp4", frames, fps=30.0)
    seq = extract_poses(clip, model_path=lite, options=DetectOptions(max_gap_s=0.2))
    assert seq.detected[:5].all() and seq.detected[8:13].all() and not seq.detected[5:8].any()
    assert seq.interpolated[5:8].all() and not seq.interpolated[13:43].any() and not seq.detected[13:43].any()
    assert seq.interpolated.sum() == 3
    text = describe_gaps(seq)
    print(text)
    assert "3 interpolated (frames 5-7)" in text
    assert "30 without a person (frames 13-42)" in text
    assert "warning" in text and "27%" in text


def test_describe_gaps_uses_source_frame_numbers_and_stays_short():
    detected = np.ones(100, dtype=bool)
    detected[1:100:3] = False  # 33 separate one-frame gaps
    seq = PoseSequence(np.zeros((100, 33, 4)), detected, fps=30, size=(64, 64), frame_start=500)
    text = describe_gaps(seq)
    assert text.startswith("frames 500-599: person found in 67/100")
    assert "frames 501, 504," in text and "and 27 more" in text
    assert "warning" not in text and len(text.splitlines()) == 1


# --- progress, cancel, cache -----------------------------------------------------------------------


def test_progress_every_frame_and_cancel_writes_no_cache(lite):
    clip = shared_clip(SUBJECT4)
    calls = []
    extract_poses(clip, model_path=lite, start=100, end=106, use_cache=False,
                  progress=lambda done, total, stage: calls.append((done, total, stage)))
    assert calls == [(i, 6, "detect poses") for i in range(1, 7)]

    seen = []
    with pytest.raises(EdnError) as err:
        extract_poses(clip, model_path=lite, start=200, end=230, progress=lambda d, t, s: seen.append(d),
                      cancelled=lambda: len(seen) >= 3)
    assert err.value.code == CANCELLED and len(seen) == 3
    info = media.probe(clip)
    assert not pose_cache_path(info, 200, 230, model_path=lite).exists()


def test_stopping_near_the_end_of_a_range_does_not_wait_on_the_decode_thread():
    """Regression: the decode thread used to block on a full queue when the reader stopped within the
    last `prefetch` frames (a cancel near the end), holding the caller for its 5 s join timeout."""
    decoded = []
    frames = media.iter_frames(media.probe(shared_clip(DANCER)), 0, 5, prefetch=4,
                               transform=lambda frame: decoded.append(1) or frame)
    next(frames)
    deadline = time.monotonic() + 30
    while len(decoded) < 5 and time.monotonic() < deadline:  # the thread has decoded every frame and
        time.sleep(0.01)                                     # is now offering to a full queue
    assert len(decoded) == 5
    closer = threading.Thread(target=frames.close)
    closer.start()
    closer.join(2.5)  # well under the 5 s join a regression would wait for
    assert not closer.is_alive(), "closing the reader waited on the decode thread"


def test_second_call_reads_the_cache_instead_of_detecting(lite):
    clip = shared_clip(SUBJECT4)
    first = extract_poses(clip, model_path=lite, start=300, end=310)
    cache_file = pose_cache_path(media.probe(clip), 300, 310, model_path=lite)
    assert cache_file.is_file()
    # Plant a recognisable entry: only a cache read can return it.
    first.replace(keypoints=first.keypoints + 1000.0).save(cache_file)
    again = extract_poses(clip, model_path=lite, start=300, end=310)
    np.testing.assert_allclose(again.keypoints, first.keypoints + 1000.0)
    fresh = extract_poses(clip, model_path=lite, start=300, end=310, use_cache=False)
    np.testing.assert_allclose(fresh.keypoints, first.keypoints, atol=1e-3)
    # A different range or model setting is a different entry.
    assert pose_cache_path(media.probe(clip), 300, 311, model_path=lite) != cache_file
    assert pose_cache_path(media.probe(clip), 300, 310, model_path=lite, options=DetectOptions(num_poses=2)) != cache_file
    # A damaged entry is detected again, not served or fatal.
    cache_file.write_bytes(b"not a zip")
    np.testing.assert_allclose(extract_poses(clip, model_path=lite, start=300, end=310).keypoints, first.keypoints, atol=1e-3)


# --- CLI ----------------------------------------------------------------------------------------------


def test_cli_hides_mediapipes_native_logging_unless_verbose(tmp_path, lite, capfd):
    """MediaPipe prints ~50 lines on stderr's file descriptor while a landmarker starts; the command line
    shows them only with --verbose, and its own report still reaches the user."""
    args = ["pose", "extract", str(shared_clip(SUBJECT4)), "-o", str(tmp_path / "x.npz"), "--end", "3",
            "--model-path", str(lite), "--no-cache"]
    assert cli.main(args) == 0
    quiet = capfd.readouterr()
    assert "person found in" in quiet.out and "Sparsity" not in quiet.err and "XNNPACK" not in quiet.err, quiet.err
    assert cli.main(["--verbose", *args]) == 0
    assert "Sparsity tensors" in capfd.readouterr().err


def test_cli_extract_writes_a_pose_file_with_the_documented_keys(tmp_path, lite, capsys, monkeypatch):
    monkeypatch.setenv("EDN_POSE_MODELS", str(lite.parent))  # the named variant found the way a user's setup would
    out = tmp_path / "x.npz"
    code = cli.main(["pose", "extract", str(shared_clip(SUBJECT4)), "-o", str(out), "--start", "10", "--end", "30",
                     "--model", "lite"])
    assert code == 0
    assert "person found in 20/20" in capsys.readouterr().out
    with np.load(out) as data:
        assert set(data.files) == {"keypoints", "detected", "fps", "size", "interpolated", "frame_start"}
        assert data["keypoints"].shape == (20, 33, 4) and int(data["frame_start"]) == 10
    assert PoseSequence.load(out).detected.all()


# --- bad input -----------------------------------------------------------------------------------------


def _grey_clip(path: Path) -> Path:
    rng = np.random.default_rng(0)
    frames = [np.clip(128 + rng.normal(0, 20, (240, 320, 3)), 0, 255).astype(np.uint8) for _ in range(8)]
    return write_clip(path, frames, fps=25.0)


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, list[str], str, str]]:
    """name -> (media, extra CLI arguments, error code, what the message must name)."""
    real = shared_clip(SUBJECT4)
    (tmp / "random.mp4").write_bytes(np.random.default_rng(1).bytes(200_000))
    data = real.read_bytes()
    (tmp / "truncated.mp4").write_bytes(data[: len(data) // 5])
    (tmp / "empty.mp4").write_bytes(b"")
    (tmp / "no_images").mkdir()
    (tmp / "no_images" / "notes.txt").write_text("not a frame")
    broken = tmp / "broken_sequence"
    broken.mkdir()
    for i, rgb in enumerate(read_frames(real, 0, 4)):
        cv2.imwrite(str(broken / f"{i:04d}.png"), rgb)
    (broken / "0004.png").write_bytes(b"\x89PNG but not really")
    return {
        "missing": (tmp / "nope.mp4", [], MEDIA_NOT_FOUND, "nope.mp4"),
        "random bytes": (tmp / "random.mp4", [], MEDIA_UNREADABLE, "random.mp4"),
        "truncated": (tmp / "truncated.mp4", [], MEDIA_UNREADABLE, "truncated.mp4"),
        "empty file": (tmp / "empty.mp4", [], NO_FRAMES, "empty.mp4"),
        "empty folder": (tmp / "no_images", [], NO_FRAMES, "no_images"),
        "corrupt frame in a sequence": (broken, [], MEDIA_UNREADABLE, "0004.png"),
        "end past the clip": (real, ["--start", "790", "--end", "801"], BAD_RANGE, SUBJECT4),
        "start after end": (real, ["--start", "20", "--end", "10"], BAD_RANGE, SUBJECT4),
        "negative start": (real, ["--start", "-1", "--end", "10"], BAD_RANGE, SUBJECT4),
        "no person": (_grey_clip(tmp / "grey.mp4"), [], NO_PERSON, "grey.mp4"),
        "bad model file": (real, ["--end", "2", "--model-path", str(tmp / "random.mp4")], POSE_MODEL_INVALID, "random.mp4"),
        "bad num_poses": (real, ["--end", "2", "--num-poses", "0"], BAD_PARAMS, "num_poses"),
    }


def test_bad_input_gives_a_clear_error_and_writes_nothing(tmp_path, lite, capsys):
    for name, (path, extra, code, named) in _bad_inputs(tmp_path).items():
        out = tmp_path / "out" / f"{name}.npz"
        args = ["pose", "extract", str(path), "-o", str(out), "--model-path", str(lite), *extra]
        assert cli.main(args) == 2, name
        err = capsys.readouterr().err
        assert f"error: {code}:" in err, f"{name}: {err}"
        assert named in err, f"{name}: the message should name {named}: {err}"
        assert not out.exists() and not (out.parent.exists() and os.listdir(out.parent)), name
    assert not list(tmp_path.glob("out/*"))


def test_no_person_error_says_what_to_do(tmp_path, lite):
    with pytest.raises(EdnError) as err:
        extract_poses(_grey_clip(tmp_path / "grey.mp4"), model_path=lite)
    assert err.value.code == NO_PERSON
    assert "grey.mp4" in err.value.message and "Choose a clip" in err.value.message
