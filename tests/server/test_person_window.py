"""The person window on subject 4's real poses (walking, turning, a T-pose): it holds every
visible keypoint in every frame and moves far more smoothly than the keypoints themselves; cut,
paste and re-cut are consistent with each other."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED_MODELS, shared_clip
from edn_server.person.window import WindowTrack, cut_window, paste_window, person_windows, recut_window

FRAME = (1024, 512)


@pytest.fixture(scope="module")
def subject4_keypoints() -> np.ndarray:
    from edn_server.pose.detect import extract_poses

    model = SHARED_MODELS / "pose_landmarker_lite.task"
    if not model.is_file():
        pytest.skip(f"pose model {model} not found (set EDN_SHARED_MODELS)")
    # he walks in, turns, raises his arms and holds a T-pose
    return extract_poses(shared_clip("edn_subject4_train.mp4"), model="lite", model_path=model, start=120, end=420).keypoints


def outside(keypoints: np.ndarray, track: WindowTrack) -> int:
    """Visible keypoints inside the frame that the window misses."""
    x, y, seen = keypoints[:, :, 0], keypoints[:, :, 1], keypoints[:, :, 3] >= 0.5
    b = track.boxes[:, None, :]
    inside = (x >= b[..., 0]) & (x <= b[..., 0] + b[..., 2]) & (y >= b[..., 1]) & (y <= b[..., 1] + b[..., 3])
    in_frame = (x >= 0) & (x < FRAME[0]) & (y >= 0) & (y < FRAME[1])
    return int((seen & in_frame & ~inside).sum())


@pytest.mark.parametrize("aspect", [0.5, 1.0, 2.0])
def test_window_holds_every_keypoint_and_moves_smoothly(subject4_keypoints, aspect):
    track = person_windows(subject4_keypoints, FRAME, aspect, fps=30.0)
    assert len(track) == len(subject4_keypoints) and outside(subject4_keypoints, track) == 0
    assert np.allclose(track.boxes[:, 2] / track.boxes[:, 3], aspect, rtol=1e-4)
    centre_acceleration = np.linalg.norm(np.diff(track.centres, 2, axis=0), axis=1)
    raw = subject4_keypoints[:, :, :2].mean(axis=1)
    raw_acceleration = np.linalg.norm(np.diff(raw, 2, axis=0), axis=1)
    # well under a pixel per frame² for a window ~500 px high: no jitter, no jumps
    assert np.percentile(centre_acceleration, 99) < 0.5 and centre_acceleration.max() < 0.01 * track.boxes[:, 3].min()
    assert np.percentile(centre_acceleration, 99) < 0.25 * np.percentile(raw_acceleration, 99)
    assert np.abs(np.diff(track.boxes[:, 3])).max() < 0.01 * track.boxes[:, 3].min()  # no sudden zoom


def test_arms_have_room_before_they_go_out(subject4_keypoints):
    """Sized for outstretched arms from the start: while he walks with his arms down the window is
    already as wide as his later T-pose, so it need not zoom out when they rise."""
    track = person_windows(subject4_keypoints, FRAME, 1.0, fps=30.0)
    wrists = subject4_keypoints[:, 15:17, 0]
    t_pose_span = np.abs(wrists[:, 0] - wrists[:, 1]).max()
    assert t_pose_span > 300  # the clip range does hold the T-pose
    assert track.boxes[:60, 2].min() > t_pose_span


def test_nobody_in_the_clip_gives_the_whole_frame():
    track = person_windows(np.zeros((5, 33, 4), np.float32), FRAME, 2.0, fps=30.0)
    assert np.allclose(track.boxes, [0, 0, 1024, 512])


def test_cut_paste_and_recut_agree():
    rng = np.random.default_rng(0)
    frame = cv2_blur(rng.integers(0, 256, (512, 1024, 3), dtype=np.uint8))
    box = np.array([300.25, 40.5, 400.0, 400.0], np.float32)
    window = cut_window(frame, box, (256, 256))
    assert window.shape == (256, 256, 3) and window.dtype == np.uint8
    pasted = paste_window(window.astype(np.float32), box, FRAME)
    inner = pasted.full(FRAME)[60:420, 320:680]
    assert np.abs(inner - frame[60:420, 320:680]).mean() < 6  # resampled twice, through a smaller window
    assert pasted.full(FRAME)[:, :290].max() == 0  # nothing outside the window
    moved = box + np.array([12.5, -7.0, 0, 0], np.float32)
    direct, recut = cut_window(frame, moved, (256, 256)), recut_window(window, box, moved)
    assert np.abs(direct.astype(int) - recut.astype(int))[16:-16, 16:-16].mean() < 2


def cv2_blur(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(image, (0, 0), 4)
