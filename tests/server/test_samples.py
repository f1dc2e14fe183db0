"""The embedded sample dancers: rendered by real Blender (bpy), checked by the real pose detector."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED_MODELS
from edn_server.demo.samples import render_samples, sample_clip, samples_cache_dir
from edn_server.demo.samples.choreography import choreograph
from edn_server.demo.samples.render import BPY_PYTHON_ENV, render_stills
from edn_server.demo.samples.spec import source_spec, target_spec
from edn_server.errors import BAD_PARAMS, CANCELLED, RENDERER_MISSING, EdnError
from edn_server.media import iter_frames, probe

NOSE, L_HIP, R_HIP, L_ANKLE, R_ANKLE = 0, 23, 24, 27, 28

pytest.importorskip("bpy", reason="bpy (Blender as a Python module) renders the samples; install bpy==5.0.1")


@pytest.fixture(scope="session")
def pose_model(request) -> Path:
    shared = SHARED_MODELS / "pose_landmarker_full.task"
    return shared if shared.is_file() else request.getfixturevalue("pose_model_full")


@pytest.fixture(scope="session")
def quick_samples():
    """Rendered once per session into the user cache, exactly as `edn samples --quick` does."""
    started = time.monotonic()
    paths = render_samples(quick=True)
    return paths, time.monotonic() - started


def detect(path: Path, model: Path) -> tuple[np.ndarray, np.ndarray]:
    """A bare PoseLandmarker loop in VIDEO mode: (found (T,), keypoints (T, 33, 2) px, NaN where missing)."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    info = probe(path)
    w, h = info.size
    options = vision.PoseLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(model)),
                                           running_mode=vision.RunningMode.VIDEO)
    found = np.zeros(info.frame_count, bool)
    points = np.full((info.frame_count, 33, 2), np.nan)
    with vision.PoseLandmarker.create_from_options(options) as landmarker:
        for i, frame in enumerate(iter_frames(info)):
            result = landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=frame), int(i * 1000 / info.fps))
            if result.pose_landmarks:
                found[i] = True
                points[i] = [(p.x * w, p.y * h) for p in result.pose_landmarks[0]]
    return found, points


def test_quick_clips_are_short_small_and_complete(quick_samples):
    paths, _ = quick_samples
    for clip in (paths.target, paths.source):
        info = probe(clip)
        assert info.size == (256, 256)
        assert 30 <= info.frame_count <= 90 and info.fps == pytest.approx(30.0)
        assert (clip.parent / "render.json").is_file()
        assert not list(clip.parent.glob(".*part*")), "a temporary file was left beside the clip"
    assert paths.target.parent != paths.source.parent


def test_detector_finds_both_dancers_and_tells_them_apart(quick_samples, pose_model):
    paths, _ = quick_samples
    target_found, target_points = detect(paths.target, pose_model)
    source_found, source_points = detect(paths.source, pose_model)
    assert target_found.mean() >= 0.95, f"person found in only {target_found.mean():.0%} of target frames"
    assert source_found.mean() >= 0.95, f"person found in only {source_found.mean():.0%} of source frames"

    def body_px(points):  # nose to the mean ankle, per frame
        return np.nanmedian(points[:, [L_ANKLE, R_ANKLE], 1].mean(axis=1) - points[:, NOSE, 1])

    def hip_x(points):
        return np.nanmedian(points[:, [L_HIP, R_HIP], 0].mean(axis=1))

    ratio = body_px(source_points) / body_px(target_points)
    assert abs(ratio - 1) > 0.15, f"source and target are about as tall in pixels (ratio {ratio:.2f})"
    assert abs(hip_x(source_points) - hip_x(target_points)) > 0.08 * 256, "source stands where the target stands"


def test_cache_is_reused_without_rendering_again(quick_samples, monkeypatch):
    paths, _ = quick_samples
    mtimes = (paths.target.stat().st_mtime_ns, paths.source.stat().st_mtime_ns)

    def no_render(*args, **kwargs):
        raise AssertionError("the cached samples were rendered again")

    monkeypatch.setattr(subprocess, "Popen", no_render)  # Blender renders in a subprocess
    again = render_samples(quick=True)
    assert again == paths
    assert (again.target.stat().st_mtime_ns, again.source.stat().st_mtime_ns) == mtimes


def test_out_dir_gets_copies_of_the_cached_clips(quick_samples, tmp_path):
    paths, _ = quick_samples
    copies = render_samples(out_dir=tmp_path / "clips", quick=True)
    assert copies.target == tmp_path / "clips" / "target.mp4"
    assert copies.target.read_bytes() == paths.target.read_bytes()
    assert copies.source.read_bytes() == paths.source.read_bytes()


def _changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels that changed by more than codec noise (any channel off by > 40 levels)."""
    return float((np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > 40).mean())


def test_same_seed_renders_the_same_frames_and_another_seed_does_not(quick_samples, tmp_path):
    paths, _ = quick_samples
    clip_frames = list(iter_frames(probe(paths.target)))
    same = render_stills(target_spec(0, quick=True), [1, 40], tmp_path / "seed0")
    other = render_stills(target_spec(1, quick=True), [40], tmp_path / "seed1")
    rgb = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in (*same, *other)]
    # The clip went through a lossy mp4 encoder; a fresh render of the same seed differs only by that.
    assert _changed_fraction(rgb[0], clip_frames[0]) < 0.0005
    assert _changed_fraction(rgb[1], clip_frames[39]) < 0.0005
    assert _changed_fraction(rgb[2], clip_frames[39]) > 0.005, "seed 1 put the dancer in the same pose and place as seed 0"


def test_choreography_is_seeded_and_covers_what_training_needs():
    full = choreograph(target_spec(0))
    assert choreograph(target_spec(0)) == full
    assert choreograph(target_spec(1)) != full
    assert choreograph(target_spec(0, quick=True)) == full[: len(choreograph(target_spec(0, quick=True)))]
    assert full[-1].frame >= 900
    facing = {round(((k.yaw + 180) % 360 - 180) / 90) % 4 for k in full}  # 0 front, 1/3 sides, 2 back
    assert facing == {0, 1, 2, 3}
    assert max(k.y for k in full) - min(k.y for k in full) > 1.0, "no steps toward and away from the camera"
    assert max(k.drop for k in full) > 0.2, "no crouch"
    assert any(k.pose["upper_arm.L"][2] > 80 and k.pose["upper_arm.R"][2] < -80 for k in full), "no T-pose"
    dance = choreograph(source_spec(0))
    stage = source_spec(0).stage
    assert all(abs(k.x - stage.center_x) <= stage.half_width + 1e-6 for k in dance)


def _blender_children() -> list[int]:
    """Our own child processes that run the Blender scene script."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"edn_server.demo.samples.blender_scene" in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="child processes are listed from /proc")
def test_cancelling_stops_blender_and_keeps_no_clip():
    spec = dataclasses.replace(target_spec(0, quick=True), seed=90210)  # never rendered elsewhere
    clip = samples_cache_dir() / spec.cache_key() / "target.mp4"
    frames_seen = []

    def progress(done, total, stage):
        frames_seen.append(done)

    with pytest.raises(EdnError) as err:
        sample_clip(spec, progress=progress, cancelled=lambda: max(frames_seen, default=0) >= 1)
    assert err.value.code == CANCELLED
    assert not clip.exists()
    assert _blender_children() == []


def test_missing_bpy_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(BPY_PYTHON_ENV, f"{sys.executable} -S")  # same Python without site-packages: no bpy
    spec = dataclasses.replace(source_spec(0, quick=True), seed=90211)
    with pytest.raises(EdnError) as err:
        sample_clip(spec)
    assert err.value.code == RENDERER_MISSING
    assert "bpy" in err.value.message and BPY_PYTHON_ENV in err.value.message
    assert not (samples_cache_dir() / spec.cache_key() / "source.mp4").exists()


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(EdnError) as err:
        render_samples(seed=-1, quick=True)
    assert err.value.code == BAD_PARAMS
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("x")
    with pytest.raises(EdnError) as err:
        render_samples(out_dir=a_file, quick=True)
    assert err.value.code == BAD_PARAMS and str(a_file) in err.value.message
