"""Global pose normalization: exact on constructed targets, robust on real clips, overrides, errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED_MODELS, shared_clip
from edn_server.errors import BAD_PARAMS, NO_ANKLES, EdnError
from edn_server.pose.landmarks import INDEX, MIRROR, NAMES
from edn_server.pose.normalize import NormalizeOptions, PoseStats, floor_line, mirror_keypoints, normalize_poses
from edn_server.pose.sequence import PoseSequence

# A standing figure in units of its height, feet on the floor at (0, 0), nose at (0, -1); left is +x.
TEMPLATE = {
    "nose": (0.0, -1.0), "eye_inner": (0.02, -1.02), "eye": (0.035, -1.02), "eye_outer": (0.05, -1.02),
    "ear": (0.07, -1.0), "mouth": (0.025, -0.96), "shoulder": (0.12, -0.82), "elbow": (0.26, -0.82),
    "wrist": (0.4, -0.82), "pinky": (0.44, -0.81), "index": (0.45, -0.82), "thumb": (0.43, -0.84),
    "hip": (0.08, -0.5), "knee": (0.08, -0.26), "ankle": (0.08, 0.0), "heel": (0.08, 0.01), "foot_index": (0.12, 0.02),
}


def template() -> np.ndarray:
    points = np.zeros((33, 2))
    for i, name in enumerate(NAMES):
        if name.startswith(("left_", "right_")):
            side, _, part = name.partition("_")
        else:  # nose, mouth_left, mouth_right
            part, _, side = name.partition("_")
        x, y = TEMPLATE[part]
        points[i] = ((x if side == "left" else -x), y)
    return points


def figure_sequence(floor_y: np.ndarray, centre_x: np.ndarray, height: np.ndarray, size=(600, 600), fps=30.0) -> PoseSequence:
    """A figure standing with its feet at floor_y, centred at centre_x, `height` pixels tall, waving its arms."""
    frames = len(floor_y)
    shape = np.repeat(template()[None], frames, axis=0)
    wave = 0.15 * np.sin(np.arange(frames) / 3.0)
    shape[:, [INDEX["left_wrist"], INDEX["left_index"], INDEX["left_pinky"], INDEX["left_thumb"]], 1] += wave[:, None]
    shape[:, INDEX["right_elbow"], 1] -= wave
    k = np.zeros((frames, 33, 4), np.float32)
    k[..., 0] = centre_x[:, None] + height[:, None] * shape[..., 0]
    k[..., 1] = floor_y[:, None] + height[:, None] * shape[..., 1]
    k[..., 2] = height[:, None] * 0.1 * shape[..., 0]
    k[..., 3] = 0.95
    return PoseSequence(k, np.ones(frames, bool), fps, size)


def walk_in_depth(far: float, close: float, far_height: float, close_height: float, size=(600, 600), stay=30, steps=4, sway=40.0):
    """Stand far, walk quickly to the close spot, stand there (heights follow perspective: linear in y),
    swaying `sway` pixels left and right."""
    u = np.concatenate([np.zeros(stay), np.arange(1, steps + 1) / (steps + 1), np.ones(stay)])
    floor = far + u * (close - far)
    height = far_height + u * (close_height - far_height)
    centre = size[0] / 2 + sway * np.sin(np.arange(len(u)) / 7.0)
    return figure_sequence(floor, centre, height, size), u


def affine(seq: PoseSequence, k: float, shift: tuple[float, float], size: tuple[int, int]) -> PoseSequence:
    out = seq.keypoints.copy()
    out[..., 0] = k * out[..., 0] + shift[0]
    out[..., 1] = k * out[..., 1] + shift[1]
    out[..., 2] *= k
    return seq.replace(keypoints=out, size=size)


def xy_error(a: PoseSequence, b: PoseSequence) -> float:
    return float(np.abs(a.keypoints[..., :3] - b.keypoints[..., :3]).max())


# --- exactness -----------------------------------------------------------------------------------

def test_scaled_and_shifted_target_is_reproduced_across_aspect_ratios():
    source, _ = walk_in_depth(far=900, close=1150, far_height=600, close_height=760, size=(720, 1280))  # portrait
    target = affine(source, 0.31, (180.0, 70.0), size=(1024, 512))  # landscape
    result = normalize_poses(source, PoseStats.from_poses(target, name="target"))
    assert result.size == (1024, 512)
    assert xy_error(result, target) < 0.5


def test_perspective_scale_interpolated_between_far_and_close():
    source, u = walk_in_depth(far=420, close=540, far_height=300, close_height=380, sway=0.0)
    # The target stands farther back and is relatively larger when near: its scale over the source
    # changes linearly with depth (0.8 far, 1.1 close), its floor spans 360..470 of a 1024x512 frame.
    k = (0.8 + u * (1.1 - 0.8))[:, None]
    t_floor = (360 + u * (470 - 360))[:, None]
    s_floor = source.keypoints[:, INDEX["left_ankle"], 1][:, None]
    target_kp = source.keypoints.copy()
    target_kp[..., 0] = 700 + k * (source.keypoints[..., 0] - 300)
    target_kp[..., 1] = t_floor + k * (source.keypoints[..., 1] - s_floor)
    target_kp[..., 2] *= k
    target = source.replace(keypoints=target_kp, size=(1024, 512))
    stats = PoseStats.from_poses(target)
    assert stats.has_depth and stats.ankle_far_y == pytest.approx(360) and stats.ankle_close_y == pytest.approx(470)
    assert stats.height_far == pytest.approx(0.8 * 300) and stats.height_close == pytest.approx(1.1 * 380)
    assert xy_error(normalize_poses(source, stats), target) < 0.5


def test_outlier_frames_do_not_move_the_extremes():
    seq, _ = walk_in_depth(far=420, close=540, far_height=300, close_height=380)
    glitchy = seq.keypoints.copy()
    glitchy[[5, 40, 50], INDEX["left_ankle"], 1] = [150.0, 590.0, 599.0]  # three wild ankles out of 64 frames
    stats = PoseStats.from_poses(seq.replace(keypoints=glitchy))
    assert stats.ankle_far_y == pytest.approx(420) and stats.ankle_close_y == pytest.approx(540)
    assert stats.height_far == pytest.approx(300) and stats.height_close == pytest.approx(380)


def test_dancing_in_place_falls_back_to_a_constant_scale():
    frames = 60
    rng = np.random.default_rng(0)
    for spread in (0.0, 1.5):  # exactly still feet, and feet wobbling by a pixel or two
        floor = 500 + rng.uniform(-spread, spread, frames)
        source = figure_sequence(floor, np.full(frames, 300.0), np.full(frames, 400.0))
        target, _ = walk_in_depth(far=380, close=450, far_height=280, close_height=330, size=(1024, 512))
        t_stats = PoseStats.from_poses(target)
        assert not PoseStats.from_poses(source).has_depth and t_stats.has_depth
        result = normalize_poses(source, t_stats)
        assert np.isfinite(result.keypoints).all()
        r_stats = PoseStats.from_poses(result)
        assert r_stats.ankle_y == pytest.approx(t_stats.ankle_y, abs=0.5)
        assert r_stats.standing_height == pytest.approx(t_stats.height_at(t_stats.ankle_y), rel=0.01)
        assert r_stats.hip_x == pytest.approx(t_stats.hip_x, abs=0.5)
        # the other way round: a target that never moves in depth
        back = normalize_poses(target, PoseStats.from_poses(source))
        assert np.isfinite(back.keypoints).all()
        assert PoseStats.from_poses(back).height_at(500) == pytest.approx(400, rel=0.02)


# --- overrides -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pair():
    source, _ = walk_in_depth(far=420, close=540, far_height=300, close_height=380)
    target, _ = walk_in_depth(far=380, close=450, far_height=280, close_height=330, size=(1024, 512))
    return source, PoseStats.from_poses(target, name="target")


def test_scale_override_grows_the_figure_about_its_feet(pair):
    source, stats = pair
    base = normalize_poses(source, stats)
    bigger = normalize_poses(source, stats, NormalizeOptions(scale=1.5))
    np.testing.assert_allclose(floor_line(bigger), floor_line(base), atol=1e-3)
    heights = lambda s: floor_line(s) - s.keypoints[:, INDEX["nose"], 1]  # noqa: E731
    np.testing.assert_allclose(heights(bigger), 1.5 * heights(base), rtol=1e-5)
    centre = np.median(base.keypoints[:, [23, 24], 0].mean(1))
    np.testing.assert_allclose(bigger.keypoints[..., 0] - centre, 1.5 * (base.keypoints[..., 0] - centre), atol=1e-3)


def test_offsets_shift_exactly_in_target_pixels(pair):
    source, stats = pair
    base = normalize_poses(source, stats)
    moved = normalize_poses(source, stats, NormalizeOptions(offset_x=-37.5, offset_y=12.0))
    np.testing.assert_allclose(moved.keypoints[..., 0] - base.keypoints[..., 0], -37.5, atol=1e-3)
    np.testing.assert_allclose(moved.keypoints[..., 1] - base.keypoints[..., 1], 12.0, atol=1e-3)
    np.testing.assert_array_equal(moved.keypoints[..., 3], base.keypoints[..., 3])


def test_mirror_swaps_left_and_right_and_twice_is_identity(pair):
    source, stats = pair
    base = normalize_poses(source, stats)
    mirrored = normalize_poses(source, stats, NormalizeOptions(mirror=True))
    lw, rw = INDEX["left_wrist"], INDEX["right_wrist"]
    # the left wrist now does what the right one did, reflected about the dancer's centre
    np.testing.assert_allclose(mirrored.keypoints[:, lw, 1], base.keypoints[:, rw, 1], atol=1e-3)
    np.testing.assert_allclose(mirrored.keypoints[:, lw, 0], 2 * stats.hip_x - base.keypoints[:, rw, 0], atol=1e-3)
    assert (mirrored.keypoints[:, lw, 1] != mirrored.keypoints[:, rw, 1]).any()
    # mirroring twice (no automatic mapping, same frame) gives the source back
    same_frame = PoseStats.from_poses(source)
    once = normalize_poses(source, same_frame, NormalizeOptions(auto=False, mirror=True))
    twice = normalize_poses(once, same_frame, NormalizeOptions(auto=False, mirror=True))
    assert xy_error(twice, source) < 1e-3
    np.testing.assert_allclose(mirror_keypoints(mirror_keypoints(source.keypoints, 123.0), 123.0), source.keypoints, atol=1e-4)
    assert NAMES[MIRROR[INDEX["left_ankle"]]] == "right_ankle"


def test_auto_off_fits_the_source_frame_into_the_target_frame():
    source, _ = walk_in_depth(far=900, close=1150, far_height=600, close_height=760, size=(720, 1280))
    target_stats = PoseStats.from_poses(affine(source, 0.4, (0, 0), (1024, 512)))
    out = normalize_poses(source, target_stats, NormalizeOptions(auto=False))
    factor, left = 512 / 1280, (1024 - 720 * 512 / 1280) / 2  # letterboxed: uniform scale, centred
    np.testing.assert_allclose(out.keypoints[..., 0], left + factor * source.keypoints[..., 0], atol=1e-3)
    np.testing.assert_allclose(out.keypoints[..., 1], factor * source.keypoints[..., 1], atol=1e-3)
    assert out.size == (1024, 512)


def test_masks_are_kept_and_empty_frames_stay_empty(pair):
    source, stats = pair
    detected = np.ones(len(source), bool)
    detected[10:14] = False
    interpolated = np.zeros(len(source), bool)
    interpolated[10:12] = True
    kp = source.keypoints.copy()
    kp[12:14] = 0
    holey = source.replace(keypoints=kp, detected=detected, interpolated=interpolated, frame_start=7)
    out = normalize_poses(holey, stats)
    np.testing.assert_array_equal(out.detected, detected)
    np.testing.assert_array_equal(out.interpolated, interpolated)
    assert not out.keypoints[12:14].any() and out.keypoints[10:12].any()
    assert (out.fps, out.frame_start, out.size) == (holey.fps, 7, stats.frame_size)


# --- errors and serialisation -------------------------------------------------------------------

def test_target_without_visible_ankles_is_refused_with_advice(pair):
    source, stats = pair
    for hide in ("visibility", "below the frame"):
        kp = source.keypoints.copy()
        if hide == "visibility":
            kp[:, [INDEX["left_ankle"], INDEX["right_ankle"]], 3] = 0.1
        else:
            kp[..., 1] += 200  # feet cut off by the bottom edge
        with pytest.raises(EdnError) as err:
            PoseStats.from_poses(source.replace(keypoints=kp), name="waist_up.mp4")
        assert err.value.code == NO_ANKLES
        assert "waist_up.mp4" in err.value.message and "feet" in err.value.message and "off" in err.value.message
    # a source without feet cannot be placed automatically either, but can be placed by hand
    kp = source.keypoints.copy()
    kp[:, [INDEX["left_ankle"], INDEX["right_ankle"]], 3] = 0.0
    no_feet = source.replace(keypoints=kp)
    with pytest.raises(EdnError) as err:
        normalize_poses(no_feet, stats, source_name="dancer.mp4")
    assert err.value.code == NO_ANKLES and "dancer.mp4" in err.value.message
    manual = normalize_poses(no_feet, stats, NormalizeOptions(auto=False, scale=0.5))
    assert np.isfinite(manual.keypoints).all() and manual.size == stats.frame_size


def test_bad_overrides_are_refused(pair):
    source, stats = pair
    for options in (NormalizeOptions(scale=0), NormalizeOptions(scale=float("nan")), NormalizeOptions(offset_x=float("inf"))):
        with pytest.raises(EdnError) as err:
            normalize_poses(source, stats, options)
        assert err.value.code == BAD_PARAMS


def test_stats_round_trip_through_json(pair):
    _, stats = pair
    again = PoseStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert again == stats
    with pytest.raises(EdnError) as err:
        PoseStats.from_dict({"name": "x"})
    assert err.value.code == BAD_PARAMS


# --- real clips ----------------------------------------------------------------------------------

def real_poses(clip: str, start: int, end: int) -> PoseSequence:
    from edn_server.pose.detect import extract_poses

    model = SHARED_MODELS / "pose_landmarker_lite.task"
    if not model.is_file():
        pytest.skip(f"pose model {model} not found (set EDN_SHARED_MODELS)")
    return extract_poses(shared_clip(clip), model="lite", model_path=model, start=start, end=end)


@pytest.fixture(scope="module")
def subject4_stats() -> PoseStats:
    return PoseStats.from_poses(real_poses("edn_subject4_train.mp4", 0, 90), name="subject4")  # walks across, 1024x512


@pytest.mark.parametrize("clip,end", [("mediapipe_pose_segmentation_dance.mp4", 90), ("tfjs_pose_squats_pexels.mp4", 65)])
def test_real_sources_land_on_the_target_floor_at_the_target_size(subject4_stats, clip, end):
    target = subject4_stats
    result = normalize_poses(real_poses(clip, 0, end), target, source_name=clip)
    assert result.size == target.frame_size
    got = PoseStats.from_poses(result)
    slack = 0.02 * target.standing_height
    assert target.ankle_far_y - slack <= got.ankle_far_y and got.ankle_close_y <= target.ankle_close_y + slack
    for depth in (got.ankle_far_y, got.ankle_close_y):
        assert got.height_at(depth) == pytest.approx(target.height_at(depth), rel=0.05)
    assert got.hip_x == pytest.approx(target.hip_x, abs=1.0)


def test_job_params_carry_the_normalization_options_as_one_value():
    """The HTTP field names and bounds are what they were; the value the job gets is NormalizeOptions itself."""
    import pydantic
    from edn_server.service.job_kinds.pose import PreviewParams
    from edn_server.service.job_kinds.transfer import TransferParams

    given = {"auto": False, "scale": 1.5, "offset_x": -3, "offset_y": 4, "mirror": True}
    for params in (TransferParams.model_validate({"model": "m", "normalization": given}),
                   PreviewParams.model_validate({"target_model": "m", "normalization": given})):
        assert params.normalization == NormalizeOptions(auto=False, scale=1.5, offset_x=-3.0, offset_y=4.0, mirror=True)
        assert params.model_dump(mode="json")["normalization"] == given
    for bad in ({"scale": 0}, {"scale": 10.5}, {"shift": 1}):
        with pytest.raises(pydantic.ValidationError) as err:
            TransferParams.model_validate({"model": "m", "normalization": bad})
        assert err.value.errors()[0]["loc"][0] == "normalization"
