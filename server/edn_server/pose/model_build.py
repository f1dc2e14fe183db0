"""Build a PoseLandmarker bundle (.task) from registry packages, for machines that cannot reach
Google's model storage: the detector and landmark models ship inside the `mediapipe==0.10.21`
wheel (PyPI) and the `@mediapipe/pose` npm package; the Tasks API wants them zipped together,
with TFLite metadata on the landmark model."""
from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import types
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import POSE_MODEL_MISSING, EdnError
from ..names import BUILD_STAGE
from ..progress import Progress, no_progress

MEDIAPIPE_WHEEL_SPEC = "mediapipe==0.10.21"
NPM_POSE_SPEC = "@mediapipe/pose@0.5.1675469404"
WHEEL_DETECTOR = "mediapipe/modules/pose_detection/pose_detection.tflite"
WHEEL_LANDMARKS = "mediapipe/modules/pose_landmark/pose_landmark_{variant}.tflite"
NPM_LANDMARKS = "package/pose_landmark_{variant}.tflite"
# The bundle's member names are what PoseLandmarker's graph looks up.
BUNDLE_DETECTOR = "pose_detector.tflite"
BUNDLE_LANDMARKS = "pose_landmarks_detector.tflite"
LANDMARK_OUTPUTS = ("Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4")
FETCH_TIMEOUT_S = 900
STAGE = BUILD_STAGE

_NATIVE_VERSION_MODULE = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"


@dataclass(frozen=True)
class BuildSources:
    """Local copies of the registry packages; a missing one is fetched with pip / npm."""

    wheel: Path | None = None  # a mediapipe==0.10.21 wheel (any file holding the wheel's paths)
    npm_tgz: Path | None = None  # an `npm pack @mediapipe/pose@0.5.1675469404` tarball

    @classmethod
    def from_env(cls) -> BuildSources:
        wheel = os.environ.get("EDN_MEDIAPIPE_WHEEL")
        tgz = os.environ.get("EDN_MEDIAPIPE_POSE_NPM_TGZ")
        return cls(wheel=Path(wheel).expanduser() if wheel else None, npm_tgz=Path(tgz).expanduser() if tgz else None)


def _unavailable(message: str) -> EdnError:
    return EdnError(POSE_MODEL_MISSING, message)


def _run_fetch(command: list[str], cwd: Path, what: str) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _unavailable(f"could not fetch {what} ({exc})") from exc
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise _unavailable(f"could not fetch {what}: {last}")


def fetch_wheel(work: Path) -> Path:
    """pip-download the wheel for CPython 3.11 / manylinux x86_64, whatever this host is."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
               "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
               "--platform", "manylinux2014_x86_64", "--dest", str(work), MEDIAPIPE_WHEEL_SPEC]
    _run_fetch(command, work, f"{MEDIAPIPE_WHEEL_SPEC} with pip")
    wheels = sorted(work.glob("mediapipe-*.whl"))
    if not wheels:
        raise _unavailable(f"pip reported success but left no mediapipe wheel in {work}")
    return wheels[0]


def fetch_npm_tarball(work: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise _unavailable(f"the lite and heavy landmark models come from the npm package {NPM_POSE_SPEC}, and npm is not installed")
    _run_fetch([npm, "pack", NPM_POSE_SPEC], work, f"{NPM_POSE_SPEC} with npm")
    tarballs = sorted(work.glob("mediapipe-pose-*.tgz"))
    if not tarballs:
        raise _unavailable(f"npm pack reported success but left no tarball in {work}")
    return tarballs[0]


def _zip_member(archive: Path, member: str) -> bytes | None:
    try:
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member) if member in zf.namelist() else None
    except (OSError, zipfile.BadZipFile) as exc:
        raise _unavailable(f"{archive} is not a readable mediapipe wheel ({exc}); "
                           "delete it or point EDN_MEDIAPIPE_WHEEL elsewhere") from exc


def _tar_member(archive: Path, member: str) -> bytes | None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            try:
                handle = tf.extractfile(member)
            except KeyError:
                return None
            return handle.read() if handle is not None else None
    except (OSError, tarfile.TarError) as exc:
        raise _unavailable(f"{archive} is not a readable npm tarball ({exc}); "
                           "delete it or point EDN_MEDIAPIPE_POSE_NPM_TGZ elsewhere") from exc


@contextlib.contextmanager
def _metadata_writer_module() -> Iterator[types.ModuleType]:
    """mediapipe's metadata writer imports a native module that some wheels (1.2.3) do not ship,
    only to ask for a minimum parser version string. Stand in for it while building, then remove
    the stand-in and everything imported through it, so nothing else ever sees it."""
    before = set(sys.modules)
    stubbed = False
    try:
        importlib.import_module(_NATIVE_VERSION_MODULE)
    except ImportError:
        stubbed = True
        parts = _NATIVE_VERSION_MODULE.split(".")
        for depth in range(3, len(parts) + 1):
            name = ".".join(parts[:depth])
            if name not in sys.modules:
                module = types.ModuleType(name)
                module.__path__ = []
                sys.modules[name] = module
        sys.modules[_NATIVE_VERSION_MODULE].GetMinimumMetadataParserVersion = lambda metadata_buffer: "1.0.0"
    try:
        from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

        yield metadata_writer
    finally:
        if stubbed:
            _forget_modules([name for name in set(sys.modules) - before
                             if name.startswith(("mediapipe.tasks.cc", "mediapipe.tasks.python.metadata"))])


def _forget_modules(names: list[str]) -> None:
    """Drop modules from sys.modules and from their parent packages' attributes."""
    removed = {name: sys.modules.pop(name) for name in names}
    for name, module in removed.items():
        parent_name, _, child = name.rpartition(".")
        parent = sys.modules.get(parent_name)
        if parent is not None and getattr(parent, child, None) is module:
            delattr(parent, child)


def add_landmark_metadata(model: bytes, variant: str) -> bytes:
    """Give the landmark model the input normalisation and output names the Tasks graph expects
    (existing metadata is replaced)."""
    with _metadata_writer_module() as writer_module:
        writer = writer_module.MetadataWriter.create(bytearray(model))
        writer.add_general_info(f"pose_landmark_{variant}", f"BlazePose GHUM 3D {variant}")
        writer.add_image_input(norm_mean=[0], norm_std=[255])
        for name in LANDMARK_OUTPUTS:
            writer.add_feature_output(name=name)
        try:
            content, _ = writer.populate()
        except ValueError as exc:
            raise _unavailable(f"could not add metadata to pose_landmark_{variant}.tflite ({exc})") from exc
        del writer  # its __del__ needs the module alive; run it now, not at interpreter exit
    return bytes(content)


def _landmark_model(variant: str, wheel: Path, sources: BuildSources, work: Path) -> bytes:
    model = _zip_member(wheel, WHEEL_LANDMARKS.format(variant=variant))
    if model is not None:
        return model
    tarball = sources.npm_tgz or fetch_npm_tarball(work)
    model = _tar_member(tarball, NPM_LANDMARKS.format(variant=variant))
    if model is None:
        raise _unavailable(f"neither {wheel.name} nor {tarball.name} holds pose_landmark_{variant}.tflite")
    return model


def build_pose_model(variant: str, output: Path, sources: BuildSources | None = None, progress: Progress | None = None) -> Path:
    """Write a PoseLandmarker bundle for `variant` to `output` (the caller validates and commits it).
    Raises POSE_MODEL_MISSING when a package cannot be fetched or lacks the model."""
    from mediapipe.tasks.python.metadata.metadata_writers.model_asset_bundle_utils import create_model_asset_bundle

    sources = sources or BuildSources.from_env()
    progress = progress or no_progress
    with tempfile.TemporaryDirectory(prefix="edn-pose-build-") as tmp:
        work = Path(tmp)
        progress(0, 3, STAGE)
        wheel = sources.wheel or fetch_wheel(work)
        detector = _zip_member(wheel, WHEEL_DETECTOR)
        if detector is None:
            raise _unavailable(f"{wheel.name} does not hold {WHEEL_DETECTOR}; use the {MEDIAPIPE_WHEEL_SPEC} wheel")
        landmarks = _landmark_model(variant, wheel, sources, work)
        progress(1, 3, STAGE)
        landmarks = add_landmark_metadata(landmarks, variant)
        progress(2, 3, STAGE)
        create_model_asset_bundle({BUNDLE_DETECTOR: detector, BUNDLE_LANDMARKS: landmarks}, str(output))
        progress(3, 3, STAGE)
    return output
