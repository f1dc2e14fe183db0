"""The rig path against the real detector: the sample dancer's rig projected by the add-on's rig_poses
lands where MediaPipe's PoseLandmarker finds the rendered figure (bench/rig_accuracy.py's figure, on a
shorter stretch of the dance)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("bpy", reason="bpy renders the sample dancer; install bpy==5.0.1")
pytest.importorskip("mediapipe")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import rig_accuracy  # noqa: E402


def test_projected_limbs_are_within_three_percent_of_body_height_of_the_detected(tmp_path):
    result = rig_accuracy.measure_accuracy(rig_accuracy.Measure(first=1, last=90, step=3), tmp_path)
    shares = result["median_share_of_height"]
    assert result["frames_compared"] >= 0.9 * result["frames"], result
    assert shares["limbs"] < 0.03, shares
    assert shares["torso"] < 0.05 and shares["face"] < 0.05, shares  # looser: hip and face points are the detector's own
