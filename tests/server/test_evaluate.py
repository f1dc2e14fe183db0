"""Evaluation on a real target clip with tiny (untrained) models: every metric present and in
range, a perfect reconstruction scoring perfectly, person SSIM inside the real person's mask,
scoring at a fixed size, the median and nearest-training-frame baselines, bad input, the CLI."""
from __future__ import annotations

import json
import math

import cv2
import pytest
from conftest import shared_clip
from edn_server import cli, media
from edn_server.errors import BAD_PARAMS, MEDIA_NOT_FOUND, MODEL_NOT_FOUND, EdnError
from edn_server.gan.evaluate import PSNR_CAP_DB, FrameScores, evaluate
from edn_server.gan.labels import model_keypoints
from edn_server.gan.metrics import ssim
from edn_server.gan.model_io import load_trained_model
from edn_server.pose.detect import extract_poses
from edn_server.pose.probe import PoseProbe
from transfer_helpers import TARGET_CLIP, save_tiny_model

METRIC_KEYS = ("body_ssim", "body_psnr", "person_ssim", "face_ssim", "pose_distance", "missed_detections")


@pytest.fixture(scope="module")
def target(pose_model_full):
    return shared_clip(TARGET_CLIP)


@pytest.fixture(scope="module")
def wide_model(target):
    """512x256: large enough for MediaPipe to find the real person in the resized frames."""
    save_tiny_model("eval-wide", height=256)
    return load_trained_model("eval-wide")


def check_ranges(scores: dict, frames: int) -> None:
    assert -1.0 <= scores["body_ssim"] <= 1.0 and -1.0 <= scores["face_ssim"] <= 1.0 and -1.0 <= scores["person_ssim"] <= 1.0
    assert 0.0 < scores["body_psnr"] <= PSNR_CAP_DB
    assert isinstance(scores["missed_detections"], int) and 0 <= scores["missed_detections"] <= frames
    assert scores["pose_distance"] is None or scores["pose_distance"] >= 0.0
    assert scores["body_ssim_frames"] == scores["face_ssim_frames"] == scores["person_ssim_frames"] == frames


def test_eval_writes_every_metric_in_range_and_the_median_baseline(wide_model, target, tmp_path):
    out = tmp_path / "metrics.json"
    result = evaluate(wide_model, target, out, end=12, baseline="median")
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))  # what was returned is what was written
    assert result["frames"] == result["frames_with_pose"] == 12 and result["resolution"] == [512, 256]
    check_ranges(result, 12)
    assert result["lpips"] is None and "weights" in result["lpips_unavailable_reason"]
    assert len(result["per_frame"]["body_ssim"]) == 12 and result["per_frame"]["frame"][0] == 0
    baseline = result["baseline"]
    assert baseline["kind"] == "median" and baseline["source"].startswith("evaluated clip")
    check_ranges(baseline, 12)
    # An untrained generator draws noise; the empty studio of the median frame is far closer.
    assert baseline["body_ssim"] > result["body_ssim"] + 0.2
    assert baseline["body_psnr"] > result["body_psnr"]


def test_the_median_baseline_comes_from_the_models_training_frames(target, tmp_path):
    from edn_server.gan.dataset import build_dataset

    data = build_dataset(target, (512, 256), face_side=128, end=12)
    save_tiny_model("eval-with-data", height=256, info={"dataset": {"folder": str(data.folder), "train_frames": 6}})
    from_data = evaluate("eval-with-data", target, tmp_path / "a.json", end=6, baseline="median", per_frame=False)
    assert from_data["baseline"]["source"].startswith("training frames")
    from_clip = evaluate("eval-wide", target, tmp_path / "b.json", end=6, baseline="median", per_frame=False)
    # the same 6 frames, resized the same way: the same median image, the same scores
    for key in ("body_ssim", "body_psnr", "face_ssim"):
        assert from_data["baseline"][key] == pytest.approx(from_clip["baseline"][key], abs=1e-9)
    assert "per_frame" not in from_data


def test_a_perfect_reconstruction_scores_perfectly(target, pose_model_full):
    info = media.probe(target)
    real = cv2.resize(next(media.iter_frames(info, 0, 1)), (512, 256), interpolation=cv2.INTER_AREA)
    poses = extract_poses(target, end=12)
    keypoints = model_keypoints(poses.keypoints[0], poses.size, (512, 256))
    with PoseProbe(pose_model_full, info.fps) as probe:
        real_pose = probe.detect(real)
    assert real_pose is not None
    scores = FrameScores()
    scores.add(real, real.copy(), keypoints, None, real_pose, real_pose)
    blurred = cv2.GaussianBlur(real, (9, 9), 3)
    scores.add(real, blurred, keypoints, None, real_pose, None)  # nobody found in this "generated" frame
    summary = scores.summary()
    assert scores.values["body_ssim"][0] == pytest.approx(1.0) and scores.values["face_ssim"][0] == pytest.approx(1.0)
    assert scores.values["body_psnr"][0] == PSNR_CAP_DB and scores.values["pose_distance"] == [0.0, None]
    assert 0.3 < scores.values["body_ssim"][1] < 0.99 and 20 < scores.values["body_psnr"][1] < PSNR_CAP_DB
    assert summary["missed_detections"] == 1 and summary["pose_distance"] == 0.0 and summary["pose_distance_frames"] == 1


def test_person_ssim_scores_only_the_real_persons_pixels(target, pose_model_full):
    """A prediction that gets the background exactly right but the person wrong keeps a high
    whole-frame SSIM and a low person SSIM; the real frame's own mask decides which pixels count."""
    info = media.probe(target)
    real = cv2.resize(next(media.iter_frames(info, 0, 1)), (512, 256), interpolation=cv2.INTER_AREA)
    keypoints = model_keypoints(extract_poses(target, end=12).keypoints[0], info.size, (512, 256))
    with PoseProbe(pose_model_full, info.fps, segmentation=True) as probe:
        real_pose = probe.detect(real)
        mask = probe.mask
    assert real_pose is not None and mask is not None and mask.shape == real.shape[:2]
    assert 0.01 < mask.mean() < 0.5  # a person, not the whole frame
    wrong_person = real.copy()
    wrong_person[mask] = 128  # the person painted flat grey, the stage untouched
    scores = FrameScores()
    scores.add(real, real.copy(), keypoints, None, real_pose, real_pose, person_mask=mask)
    scores.add(real, wrong_person, keypoints, None, real_pose, None, person_mask=mask)
    assert scores.values["person_ssim"][0] == pytest.approx(1.0)
    assert scores.values["person_ssim"][1] < 0.5 < ssim(real, wrong_person)


def test_scoring_at_a_fixed_size_and_the_nearest_training_frame(target, tmp_path):
    """--size scores at that size whatever the model's resolution; on frames the model was trained
    on, the nearest training frame is the frame itself, so it scores perfectly."""
    from edn_server.gan.dataset import build_dataset

    data = build_dataset(target, (512, 256), face_side=128, end=12)
    save_tiny_model("eval-nearest", height=256, info={"dataset": {"folder": str(data.folder), "train_frames": 6}})
    result = evaluate("eval-nearest", target, tmp_path / "n.json", end=6, baseline="median,nearest", per_frame=False,
                      size=(256, 128))
    assert result["resolution"] == [512, 256] and result["score_size"] == [256, 128]
    check_ranges(result, 6)
    nearest = result["nearest_baseline"]
    assert nearest["kind"] == "nearest" and nearest["source"].startswith("training frames")
    assert nearest["body_ssim"] > 0.98 and nearest["person_ssim"] > 0.98  # resized 1024->512->256, not at once
    assert result["baseline"]["kind"] == "median" and result["baseline"]["body_ssim"] < nearest["body_ssim"]
    without_data = evaluate("eval-wide", target, tmp_path / "w.json", end=2, baseline="nearest", per_frame=False)
    assert without_data["baseline"] is None and "dataset cache" in without_data["nearest_baseline"]["unavailable_reason"]


def test_the_baselines_come_from_the_models_own_training_clip(target, tmp_path):
    """A model that names its training clip (every model since the person layer; a person model's
    cache holds windows, not frames) gets both baselines from that clip at the scoring size, its
    held-out tail excluded: scored on its own first frames, the nearest copy is exact."""
    info = {"target": {"video": str(target), "start": 0, "end": 12}, "dataset": {"train_frames": 6}}
    save_tiny_model("eval-own-clip", height=256, info=info)
    result = evaluate("eval-own-clip", target, tmp_path / "c.json", end=6, baseline="median,nearest", per_frame=False,
                      size=(256, 128))
    nearest, median = result["nearest_baseline"], result["baseline"]
    assert nearest["source"].startswith("training frames [0, 6) of") and median["source"] == nearest["source"]
    assert nearest["body_ssim"] == pytest.approx(1.0) and nearest["person_ssim"] == pytest.approx(1.0)
    from_clip = evaluate("eval-wide", target, tmp_path / "m.json", end=6, baseline="median", per_frame=False, size=(256, 128))
    assert median["body_ssim"] == pytest.approx(from_clip["baseline"]["body_ssim"], abs=1e-9)  # the same six frames
    # frames [6, 12) were held out: the nearest copy of frame 8 is another frame, no longer exact
    later = evaluate("eval-own-clip", target, tmp_path / "l.json", start=8, end=10, baseline="nearest", per_frame=False,
                     size=(256, 128))
    assert later["nearest_baseline"]["body_ssim"] < 0.999


@pytest.mark.parametrize("case", ["model", "video", "baseline", "size"])
def test_bad_input_fails_clearly_and_writes_nothing(wide_model, target, tmp_path, case):
    out = tmp_path / "metrics.json"
    kwargs = dict(model=wide_model, video=target, out_json=out, end=4)
    if case == "model":
        kwargs["model"] = "no-such-target"
    elif case == "video":
        kwargs["video"] = tmp_path / "missing.mp4"
    elif case == "baseline":
        kwargs["baseline"] = "mean"
    else:
        kwargs["size"] = (512, 4)
    with pytest.raises(EdnError) as error:
        evaluate(**kwargs)
    assert error.value.code == {"model": MODEL_NOT_FOUND, "video": MEDIA_NOT_FOUND, "baseline": BAD_PARAMS, "size": BAD_PARAMS}[case]
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_eval(wide_model, target, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert cli.main(["eval", "--model", "eval-wide", "--video", str(target), "-o", str(out), "--start", "2", "--end", "6",
                     "--device", "cpu", "--size", "256x128"]) == 0
    printed = capsys.readouterr().out
    assert "body_ssim" in printed and "person_ssim" in printed and "scored at 256x128" in printed and str(out) in printed
    data = json.loads(out.read_text())
    assert data["range"] == [2, 6] and all(key in data for key in METRIC_KEYS) and data["score_size"] == [256, 128]
    assert not math.isnan(data["body_ssim"])
    assert cli.main(["eval", "--model", "eval-wide", "--video", str(target), "-o", str(out), "--size", "256by128"]) == 2
    assert "--size '256by128'" in capsys.readouterr().err
