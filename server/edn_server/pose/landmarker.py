"""The one place a MediaPipe PoseLandmarker is created, run and closed.

MediaPipe's native code logs to the process's stderr (file descriptor 2) about 50 lines while a
landmarker is created, runs its first frames and closes (`Sparsity tensors may not yet be fully
supported`, `Created TensorFlow Lite XNNPACK delegate`, ...); environment variables do not stop
it. With `quiet_native_logs()` on (the CLI turns it on unless --verbose), fd 2 points at a temp
file around those calls, and what was written there is replayed only when the call fails. The
server leaves it off: fd 2 is process-wide, and its other threads' log lines must not vanish.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import POSE_MODEL_INVALID, EdnError

_quiet = False


@contextlib.contextmanager
def quiet_native_logs(on: bool = True) -> Iterator[None]:
    """Within this block, landmarkers keep MediaPipe's native logging off stderr (when `on`)."""
    global _quiet
    before, _quiet = _quiet, on
    try:
        yield
    finally:
        _quiet = before


@contextlib.contextmanager
def _native_stderr_hidden() -> Iterator[None]:
    if not _quiet:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            os.write(2, sink.read())  # the native side's own words on what went wrong
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def to_mp_image(rgb: np.ndarray):
    """An RGB uint8 frame as a MediaPipe image (a copy; safe to build in another thread)."""
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))


class Landmarker:
    """A PoseLandmarker in VIDEO mode (it tracks the person from frame to frame; timestamps must grow)
    or IMAGE mode (each frame on its own). Use as a context manager so the native side is closed.

    Raises POSE_MODEL_INVALID, naming `label` (default: the file), when MediaPipe cannot load the model.
    """

    def __init__(self, model_file: str | os.PathLike, video: bool = True, num_poses: int = 1,
                 min_detection_confidence: float = 0.5, min_presence_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, label: str | None = None, segmentation: bool = False):
        from mediapipe.tasks.python import BaseOptions, vision

        self.label = label or str(model_file)
        settings = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_file)),
            running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
            num_poses=num_poses,
            min_pose_detection_confidence=min_detection_confidence,
            min_pose_presence_confidence=min_presence_confidence,
            min_tracking_confidence=min_tracking_confidence,
            output_segmentation_masks=segmentation,  # the person layer's masks; the landmark pass is shared
        )
        try:
            with _native_stderr_hidden():
                self._native = vision.PoseLandmarker.create_from_options(settings)
        except (RuntimeError, ValueError, OSError) as exc:
            raise invalid_model(self.label, "load", exc) from exc
        self._video = video
        self.last_masks: list[np.ndarray] = []  # with segmentation: one (H, W) float32 0..1 mask per person of the last detect
        # MediaPipe logs while it builds its graph on the first frames, until it first finds someone.
        self._found_anyone = False

    def detect(self, image, timestamp_ms: int | None = None) -> list[np.ndarray]:
        """Everyone found in `image` (an RGB array or to_mp_image's result): (33, 4) float32 arrays of
        [x_px, y_px, z, visibility] in the image's pixels. VIDEO mode needs `timestamp_ms`.
        With `segmentation`, `last_masks` holds their person masks in the same order."""
        if isinstance(image, np.ndarray):
            image = to_mp_image(image)
        hide = _native_stderr_hidden() if not self._found_anyone else contextlib.nullcontext()
        with hide:
            result = self._native.detect_for_video(image, timestamp_ms) if self._video else self._native.detect(image)
        self._found_anyone = self._found_anyone or bool(result.pose_landmarks)
        self.last_masks = [np.array(np.squeeze(mask.numpy_view())) for mask in (result.segmentation_masks or [])]
        scale = np.array([image.width, image.height, 1.0, 1.0], dtype=np.float32)
        return [np.array([(p.x, p.y, p.z, p.visibility or 0.0) for p in person], dtype=np.float32) * scale
                for person in result.pose_landmarks]

    def close(self) -> None:
        """mediapipe 1.2.3's close() re-raises the graph's earlier error and leaves the object half-open;
        its __del__ then calls into a shut-down dispatcher later (a hang inside pytest, a TypeError at
        exit), so a failed close is finished by hand."""
        native = self._native
        with _native_stderr_hidden():
            try:
                native.close()
            except RuntimeError:
                native._handle = None
                native._dispatcher.close()
                native._lib.close()

    def __enter__(self) -> Landmarker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def invalid_model(label: str, action: str, exc: Exception) -> EdnError:
    reason = " ".join(str(exc).split())[:200] or type(exc).__name__
    return EdnError(POSE_MODEL_INVALID, f"MediaPipe cannot {action} the pose model {label} ({reason}); delete or replace it: "
                                        "`edn pose model` fetches a good copy, or pass a valid PoseLandmarker .task file.")


def check_loads(path: Path, label: str) -> None:
    """Raise POSE_MODEL_INVALID unless MediaPipe can load and run the bundle at `path`. Creating the
    graph does not look inside the detector; one run on a blank frame does (~20 ms)."""
    with Landmarker(path, video=False, label=label) as landmarker:
        try:
            landmarker.detect(np.zeros((64, 64, 3), np.uint8))
        except (RuntimeError, ValueError) as exc:
            raise invalid_model(label, "run", exc) from exc
