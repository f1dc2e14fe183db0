"""Poses as a job's media (kind `poses`: a rig's or an edited track's pose file) and keyframed
normalization: per-frame scale, offsets and smoothing, checked at submit and applied per frame."""
from __future__ import annotations

import json

import numpy as np
import pytest
from api_helpers import ServerProcess
from edn_server.errors import BAD_PARAMS, EdnError
from edn_server.pose.landmarks import HIPS
from edn_server.pose.normalize import NormalizeOptions, PoseStats, normalize_poses
from edn_server.pose.sequence import PoseSequence
from edn_server.pose.smooth import smooth_poses
from test_normalize import figure_sequence

FRAMES = 24


def dancer(frames: int = FRAMES, size=(640, 480)) -> PoseSequence:
    width, height = size
    floor = np.full(frames, 0.875 * height)
    centre = 0.47 * width + 20 * np.sin(np.arange(frames) / 4.0)
    return figure_sequence(floor, centre, np.full(frames, 0.625 * height), size=size)


def hips_x(seq: PoseSequence) -> np.ndarray:
    return seq.keypoints[:, list(HIPS), 0].mean(axis=1).astype(np.float64)


def test_keyframed_offset_x_moves_the_normalized_hips_linearly():
    source, target = dancer(), PoseStats.from_poses(dancer(size=(512, 512)), name="target")
    ramp = tuple(np.linspace(0.0, 100.0, FRAMES))
    still = normalize_poses(source, target, NormalizeOptions())
    moved = normalize_poses(source, target, NormalizeOptions(offset_x=ramp, offset_y=5.0))
    np.testing.assert_allclose(hips_x(moved) - hips_x(still), ramp, atol=1e-3)
    np.testing.assert_allclose(moved.keypoints[..., 1] - still.keypoints[..., 1], 5.0, atol=1e-3)


def test_keyframed_scale_is_applied_per_frame_and_a_constant_list_equals_one_number():
    source, target = dancer(), PoseStats.from_poses(dancer(size=(512, 512)), name="target")
    assert np.array_equal(normalize_poses(source, target, NormalizeOptions(scale=(1.5,) * FRAMES)).keypoints,
                          normalize_poses(source, target, NormalizeOptions(scale=1.5)).keypoints)
    scales = np.where(np.arange(FRAMES) < FRAMES // 2, 1.0, 2.0)
    stepped = normalize_poses(source, target, NormalizeOptions(scale=tuple(scales)))
    plain = normalize_poses(source, target, NormalizeOptions())
    heights = lambda seq: np.ptp(seq.keypoints[..., 1], axis=1)  # noqa: E731
    np.testing.assert_allclose(heights(stepped) / heights(plain), scales, rtol=1e-4)


def test_per_frame_values_must_match_the_range_and_stay_in_bounds():
    source, target = dancer(), PoseStats.from_poses(dancer(), name="target")
    with pytest.raises(EdnError, match="3 per-frame values but the range has 24 frames") as caught:
        normalize_poses(source, target, NormalizeOptions(offset_y=(0.0, 1.0, 2.0)))
    assert caught.value.code == BAD_PARAMS
    with pytest.raises(EdnError, match="scale -1.0 is invalid"):
        NormalizeOptions(scale=(1.0, -1.0)).validate()


def test_keyframed_smoothing_takes_each_frame_from_its_own_strength():
    noisy = dancer()
    noisy.keypoints[..., :2] += np.random.default_rng(3).normal(0, 4, noisy.keypoints[..., :2].shape)
    strengths = np.where(np.arange(FRAMES) < FRAMES // 2, 0.0, 2.0)
    mixed = smooth_poses(noisy, tuple(strengths))
    assert np.array_equal(mixed.keypoints[:FRAMES // 2], noisy.keypoints[:FRAMES // 2])
    assert np.array_equal(mixed.keypoints[FRAMES // 2:], smooth_poses(noisy, 2.0).keypoints[FRAMES // 2:])
    assert np.array_equal(smooth_poses(noisy, (1.0,) * FRAMES).keypoints, smooth_poses(noisy, 1.0).keypoints)


# -- through the server --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One real server for this module's jobs, and a client of it."""
    process = ServerProcess(tmp_path_factory.mktemp("poses") / "data")
    client = process.client()
    yield process, client
    client.close()
    process.stop()


@pytest.fixture(scope="module")
def stats() -> dict:
    return PoseStats.from_poses(dancer(size=(256, 256)), name="target").to_dict()


def test_a_pose_file_is_previewed_like_detected_poses_with_keyframed_settings(served, stats, tmp_path):
    client = served[1]
    poses = dancer().replace(frame_start=40)
    path = poses.save(tmp_path / "rig.npz")
    ramp = list(np.linspace(0.0, 100.0, 10))
    job = client.wait(client.submit("preview_poses", {"target_stats": stats, "smooth": [0.0] * 10,
                                                      "normalization": {"offset_x": ramp}, "output_dir": str(tmp_path / "out")},
                                    {"kind": "poses", "path": str(path), "frame_start": 4, "frame_end": 14}))
    assert job["state"] == "done", job
    assert job["result"]["frame_count"] == 10 and job["result"]["first_frame"] == 44
    assert job["input"]["media"]["kind"] == "poses"
    written = PoseSequence.load(job["result"]["poses"])
    expected = normalize_poses(PoseSequence.load(path).replace(
        keypoints=poses.keypoints[4:14], detected=poses.detected[4:14], interpolated=poses.interpolated[4:14]),
        PoseStats.from_dict(stats), NormalizeOptions(offset_x=tuple(ramp)))
    np.testing.assert_allclose(written.keypoints, expected.keypoints, atol=1e-3)
    assert sorted(p.name for p in (tmp_path / "out" / "labels").glob("*.png"))[0] == "000044.png"

    extract = client.wait(client.submit("extract_poses", {"smooth": 1.0}, {"kind": "poses", "path": str(path)}))
    assert extract["state"] == "done", extract
    np.testing.assert_allclose(PoseSequence.load(extract["result"]["poses"]).keypoints, smooth_poses(poses, 1.0).keypoints,
                               atol=1e-4)


def test_an_uploaded_pose_file_is_a_source_too(served, stats, tmp_path):
    client = served[1]
    body = dancer(8).save(tmp_path / "rig.npz").read_bytes()
    status, _, data = client.request("POST", "/v1/uploads?filename=rig.npz", body=body)
    assert status == 201
    job = client.wait(client.submit("preview_poses", {"target_stats": stats, "video": False},
                                    {"kind": "poses", "upload_id": json.loads(data)["upload_id"]}))
    assert job["state"] == "done" and job["result"]["frame_count"] == 8, job


def test_bad_pose_files_and_keyframes_are_refused_at_submit(served, stats, tmp_path):
    client = served[1]
    def _refused(media: dict, params: dict | None = None) -> dict:
        body = {"kind": "preview_poses", "params": params or {"target_stats": stats}, "input": {"media": media}}
        status, reply = client.json("POST", "/v1/jobs", body)
        assert status in (400, 404, 422), reply
        return reply["error"]

    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    error = _refused({"kind": "poses", "path": str(tmp_path / "junk.npz")})
    assert error["code"] == "BAD_POSE_FILE" and error["field"] == "input.media.path" and "junk.npz" in error["message"]

    np.savez(tmp_path / "partial.npz", keypoints=np.zeros((3, 33, 4)), detected=np.ones(3, bool))
    error = _refused({"kind": "poses", "path": str(tmp_path / "partial.npz")})
    assert error["code"] == "BAD_POSE_FILE" and "lacks fps, size" in error["message"]

    broken = dancer(4)
    broken.keypoints[2, 5, 0] = np.nan
    error = _refused({"kind": "poses", "path": str(broken.save(tmp_path / "nan.npz"))})
    assert error["code"] == "BAD_POSE_FILE" and "not finite" in error["message"]

    nobody = dancer(6).replace(detected=np.zeros(6, bool))
    error = _refused({"kind": "poses", "path": str(nobody.save(tmp_path / "behind.npz"))})
    assert error["code"] == "NO_PERSON" and "Aim the camera" in error["message"]

    good = str(dancer(6).save(tmp_path / "good.npz"))
    error = _refused({"kind": "poses", "path": good, "frame_end": 9})
    assert error["code"] == "BAD_RANGE" and error["field"] == "input.media.frame_end"
    error = _refused({"kind": "poses", "path": good}, {"target_stats": stats, "normalization": {"scale": [1.0] * 5}})
    assert error["code"] == "BAD_PARAMS" and error["field"] == "params.normalization" and "6 frames" in error["message"]
    error = _refused({"kind": "poses", "path": good}, {"target_stats": stats, "smooth": [1.0, 11.0]})
    assert error["code"] == "BAD_PARAMS" and error["field"].startswith("params.smooth")


def test_a_transfer_from_a_pose_file_generates_the_frames_it_holds(pose_model_full, tmp_path):
    """The rig's poses are generated like detected ones: normalized to the target, frames numbered on
    from the file's frame_start; nothing is detected."""
    from edn_server.gan.infer import transfer
    from edn_server.gan.model_io import load_trained_model
    from transfer_helpers import save_tiny_model

    save_tiny_model("tiny-from-poses")
    model = load_trained_model("tiny-from-poses")
    poses = dancer(6).replace(frame_start=30)
    path = poses.save(tmp_path / "rig.npz")
    result = transfer(path, model, tmp_path / "out", smoothing=0.0, source_poses=poses, write_video=False)
    assert sorted(p.name for p in (tmp_path / "out").glob("[0-9]*.png")) == [f"{i:06d}.png" for i in range(30, 36)]
    expected = normalize_poses(poses, model.stats, NormalizeOptions())
    np.testing.assert_allclose(PoseSequence.load(result.normalized_poses_path).keypoints, expected.keypoints, atol=1e-3)


def test_a_transfer_job_on_a_pose_file(served, pose_model_full, monkeypatch, tmp_path):
    server, client = served
    from transfer_helpers import save_tiny_model

    monkeypatch.setenv("EDN_HOME", str(server.data_dir))  # register the model where the server looks
    save_tiny_model("tiny-job-poses")
    path = dancer(5).save(tmp_path / "rig.npz")
    job = client.wait(client.submit("transfer", {"model": "tiny-job-poses", "video": False, "smooth": [0.0, 0.5, 1.0, 1.5, 2.0],
                                                 "normalization": {"offset_x": [0, 10, 20, 30, 40]}},
                                    {"kind": "poses", "path": str(path)}), timeout=180)
    assert job["state"] == "done", job
    assert job["result"]["frame_count"] == 5 and len(list((server.data_dir / "jobs" / job["id"] / "frames").glob("0*.png"))) == 5
