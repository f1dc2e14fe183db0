"""`make demo`'s path with a tiny budget: samples → training → transfer → side-by-side and contact sheet."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

cv2 = pytest.importorskip("cv2")


def _frame_count(path) -> int:
    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()


def test_demo_trains_transfers_and_writes_pictures(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, EDN_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "edn_server.demo.walkthrough", "--out", str(out), "--quick", "--preset", "tiny",
               "--minutes", "0.15", "--no-blender"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]

    manifest = json.loads((out / "frames" / "edn_result.json").read_text())
    frames = sorted((out / "frames").glob("[0-9]*.png"))
    assert len(frames) == len(manifest["frames"]) > 0
    assert _frame_count(out / "side_by_side.mp4") == len(frames)
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > sheet.shape[1]  # rows of (source | pose | result)

    # A second run reuses the trained model instead of training again.
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Reusing the trained model" in again.stdout


def test_demo_uses_the_shipped_model_for_the_sample_target(tmp_path):
    """No rendering, no training: the shipped clips and model (sums checked), frames at the sample's full size."""
    out = tmp_path / "out"
    env = dict(os.environ, EDN_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "edn_server.demo.walkthrough", "--out", str(out), "--max-frames", "6", "--no-blender"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Installed the shipped demo model" in run.stdout and "Training" not in run.stdout
    frames = sorted((out / "frames").glob("[0-9]*.png"))
    assert len(frames) == 6
    assert cv2.imread(str(frames[0])).shape == (384, 512, 3)
