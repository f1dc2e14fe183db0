"""Temporal smoothing: exact behaviour on synthetic signals, and jitter versus peak speed on real clips."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED_MODELS, shared_clip
from edn_server.errors import BAD_PARAMS, EdnError
from edn_server.pose.sequence import PoseSequence
from edn_server.pose.smooth import smooth_poses, stretches

LEFT_WRIST, RIGHT_WRIST = 15, 16


def still_body(frames: int) -> np.ndarray:
    """Keypoints of a motionless figure: torso 100 px (shoulders y=200, hips y=300), all visible."""
    k = np.zeros((frames, 33, 4), np.float32)
    k[:, :, 0], k[:, :, 1], k[:, :, 3] = 500.0, 250.0, 1.0
    k[:, [11, 12], 1] = 200.0
    k[:, [23, 24], 1] = 300.0
    return k


def sequence(keypoints: np.ndarray, fps: float = 30.0, detected: np.ndarray | None = None) -> PoseSequence:
    detected = np.ones(len(keypoints), bool) if detected is None else detected
    return PoseSequence(keypoints, detected, fps, (1024, 512))


def mean_abs_acceleration(xy: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(xy, 2, axis=0), axis=-1).mean())


# --- synthetic signals: exact expectations -------------------------------------------------------

def test_noise_on_a_still_figure_drops_sharply():
    rng = np.random.default_rng(0)
    raw = still_body(90)
    raw[:, :, :2] += rng.normal(0.0, 1.0, raw[:, :, :2].shape)
    smooth = smooth_poses(sequence(raw)).keypoints
    assert mean_abs_acceleration(smooth[:, :, :2]) < mean_abs_acceleration(raw[:, :, :2]) / 10
    assert smooth[:, :, :2].std(axis=0).mean() < 0.5 * raw[:, :, :2].std(axis=0).mean()
    # more strength, smoother; the mean position does not move
    stronger = smooth_poses(sequence(raw), strength=2.0).keypoints
    assert mean_abs_acceleration(stronger[:, :, :2]) < mean_abs_acceleration(smooth[:, :, :2])
    assert np.abs(smooth[:, :, :2].mean(axis=0) - raw[:, :, :2].mean(axis=0)).max() < 0.2


def test_fast_sine_keeps_its_amplitude_and_peak_frames():
    t = np.arange(90)
    raw = still_body(90)
    raw[:, LEFT_WRIST, 0] = 500 + 100 * np.cos(2 * np.pi * (t - 3) / 12)  # 2.5 Hz, peaks on frames 3, 15, ...
    smooth = smooth_poses(sequence(raw)).keypoints[:, LEFT_WRIST, 0]
    assert smooth.max() - 500 > 99.0 and 500 - smooth.min() > 99.0
    peaks = [15 + 12 * n for n in range(6)]
    for peak in peaks:
        window = slice(peak - 5, peak + 6)
        assert np.argmax(smooth[window]) == 5, f"peak at frame {peak} moved"


def test_slow_motion_under_noise_has_no_lag_and_keeps_its_amplitude():
    rng = np.random.default_rng(1)
    t = np.arange(90)
    truth = 500 + 50 * np.cos(2 * np.pi * (t - 45) / 60)
    raw = still_body(90)
    raw[:, LEFT_WRIST, 0] = truth
    raw[:, :, :2] += rng.normal(0.0, 1.0, raw[:, :, :2].shape)
    smooth = smooth_poses(sequence(raw)).keypoints[:, LEFT_WRIST, 0]
    assert abs(int(np.argmax(smooth)) - 45) <= 1
    assert abs((smooth.max() - 500) - 50) < 2.0
    assert np.sqrt(np.mean((smooth - truth) ** 2)) < np.sqrt(np.mean((raw[:, LEFT_WRIST, 0] - truth) ** 2))


def test_step_and_pulse_keep_their_shape():
    t = np.arange(90)
    raw = still_body(90)
    raw[:, LEFT_WRIST, 0] = 500 + 100 * (t >= 45)
    raw[:, RIGHT_WRIST, 1] = 250 - 80 * np.exp(-0.5 * ((t - 40) / 2.0) ** 2)  # a quick flick up and back
    smooth = smooth_poses(sequence(raw)).keypoints
    assert np.abs(smooth[:, LEFT_WRIST, 0] - raw[:, LEFT_WRIST, 0]).max() < 1.0
    assert int(np.argmin(smooth[:, RIGHT_WRIST, 1])) == 40
    assert 250 - smooth[:, RIGHT_WRIST, 1].min() > 0.95 * 80


def test_never_smooths_across_a_long_gap_and_leaves_missing_frames_alone():
    raw = still_body(60)
    raw[30:, :, 0] += 200  # the person reappears elsewhere after the gap
    detected = np.ones(60, bool)
    detected[24:30] = False
    raw[24:30] = 0.0
    seq = sequence(raw, detected=detected)
    smooth = smooth_poses(seq)
    np.testing.assert_allclose(smooth.keypoints[:24, :, :2], raw[:24, :, :2], atol=1e-3)
    np.testing.assert_allclose(smooth.keypoints[30:, :, :2], raw[30:, :, :2], atol=1e-3)
    assert not smooth.keypoints[24:30].any()
    assert stretches(detected, max_gap=2) == [(0, 24), (30, 60)]
    assert stretches(detected, max_gap=6) == [(0, 60)]
    np.testing.assert_array_equal(smooth.detected, seq.detected)
    np.testing.assert_array_equal(smooth.interpolated, seq.interpolated)


def test_low_visibility_outliers_are_trusted_less():
    def outlier_left(visibility: float) -> float:
        raw = still_body(60)
        raw[30, LEFT_WRIST, 0] += 40.0
        raw[30, LEFT_WRIST, 3] = visibility
        return float(smooth_poses(sequence(raw)).keypoints[30, LEFT_WRIST, 0] - 500)

    assert outlier_left(0.05) < 0.5 * outlier_left(1.0)


def test_strength_zero_is_identity_and_bad_strength_is_refused():
    rng = np.random.default_rng(2)
    raw = still_body(30)
    raw[:, :, :2] += rng.normal(0, 1, raw[:, :, :2].shape)
    np.testing.assert_array_equal(smooth_poses(sequence(raw), strength=0).keypoints, raw)
    for bad in (-1.0, float("nan")):
        with pytest.raises(EdnError) as err:
            smooth_poses(sequence(raw), strength=bad)
        assert err.value.code == BAD_PARAMS and "strength" in err.value.message


def test_long_clips_done_in_blocks_match_one_pass(monkeypatch):
    from edn_server.pose import smooth

    rng = np.random.default_rng(3)
    t = np.arange(300)
    raw = still_body(300)
    raw[:, LEFT_WRIST, 0] += 80 * np.sin(t / 4.0) * (t > 150)  # still, then fast
    raw[:, :, :3] += rng.normal(0, 1, raw[:, :, :3].shape)
    raw[:, :, 3] = rng.uniform(0.2, 1.0, raw.shape[:2])
    detected = np.ones(300, bool)
    detected[[100, 101, 200]] = False
    seq = sequence(raw, detected=detected)
    whole = smooth_poses(seq, strength=2.0).keypoints
    monkeypatch.setattr(smooth, "_BLOCK_FRAMES", 37)
    np.testing.assert_allclose(smooth_poses(seq, strength=2.0).keypoints, whole, atol=1e-3)


# --- real clips: jitter of still joints drops, fast joints keep their peaks ------------------------

def real_poses(clip: str, start: int, end: int) -> PoseSequence:
    from edn_server.pose.detect import extract_poses

    model = SHARED_MODELS / "pose_landmarker_lite.task"
    if not model.is_file():
        pytest.skip(f"pose model {model} not found (set EDN_SHARED_MODELS)")
    return extract_poses(shared_clip(clip), model="lite", model_path=model, start=start, end=end)


def still_joint_frames(seq: PoseSequence, threshold: float = 0.3, radius: int = 5) -> np.ndarray:
    """(frames-2, joints) mask of joints moving slower than `threshold` torso lengths per second
    throughout ±radius frames (judged on a heavily smoothed track, so jitter does not count as motion)."""
    xy = seq.keypoints[:, :, :2].astype(np.float64)
    torso = np.median(np.linalg.norm(xy[:, [11, 12]].mean(1) - xy[:, [23, 24]].mean(1), axis=1))
    kernel = np.exp(-0.5 * (np.arange(-12, 13) / 4.0) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([np.repeat(xy[:1], 12, 0), xy, np.repeat(xy[-1:], 12, 0)])
    track = sum(w * padded[i:i + len(xy)] for i, w in enumerate(kernel))
    speed = np.linalg.norm(np.gradient(track, axis=0), axis=-1) * seq.fps / torso
    padded_speed = np.concatenate([np.repeat(speed[:1], radius, 0), speed, np.repeat(speed[-1:], radius, 0)])
    slowest = np.max([padded_speed[i:i + len(speed)] for i in range(2 * radius + 1)], axis=0)
    return (slowest < threshold)[1:-1]


def jitter_factor(raw: PoseSequence, smooth: PoseSequence) -> float:
    still = still_joint_frames(raw)
    assert still.sum() > 50, "the clip range should hold still joints"
    acc = lambda s: np.linalg.norm(np.diff(s.keypoints[:, :, :2], 2, axis=0), axis=-1)[still].mean()  # noqa: E731
    return float(acc(raw) / acc(smooth))


def peak_speed(seq: PoseSequence, joint: int, span: int = 2) -> float:
    """The joint's fastest travel over `span` frames, per frame. Over one frame the raw track's peak is
    mostly that frame's jitter (which differs between CPUs' builds of the detector), not the motion."""
    points = seq.keypoints[:, joint, :2]
    return float(np.linalg.norm(points[span:] - points[:-span], axis=-1).max() / span)


@pytest.fixture(scope="module")
def tpose_hold() -> PoseSequence:
    return real_poses("edn_subject4_train.mp4", 220, 310)  # subject 4 raises his arms and holds a T-pose


@pytest.fixture(scope="module")
def dance() -> PoseSequence:
    return real_poses("mediapipe_pose_segmentation_dance.mp4", 0, 90)


def test_real_still_pose_loses_most_jitter(tpose_hold):
    assert jitter_factor(tpose_hold, smooth_poses(tpose_hold)) > 3.0  # measured 4.1 (lite model)


def test_real_dance_keeps_wrist_peaks_and_loses_jitter(dance):
    smooth = smooth_poses(dance)
    assert jitter_factor(dance, smooth) > 2.0  # measured 2.8
    ratios = [peak_speed(smooth, j) / peak_speed(dance, j) for j in (LEFT_WRIST, RIGHT_WRIST)]
    assert min(ratios) > 0.85, ratios  # measured 0.98 and 1.00
    assert smooth.keypoints.dtype == np.float32 and np.isfinite(smooth.keypoints).all()
