"""Run the Blender child, follow its progress, and encode its PNG frames into an mp4.

The edn process never imports bpy (it pins numpy and is heavy): `blender_scene.py` runs in a
subprocess of `sys.executable`, or of the command in EDN_BPY_PYTHON (for bpy in another venv).
"""
from __future__ import annotations

import collections
import os
import queue
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ...errors import CANCELLED, RENDER_FAILED, RENDERER_MISSING, EdnError
from ...progress import Progress, no_progress
from .blender_scene import ERROR_PREFIX, EXIT_NO_BPY, PROGRESS_PREFIX
from .spec import ClipSpec

BPY_PYTHON_ENV = "EDN_BPY_PYTHON"
_POLL_S = 0.2  # how often a waiting render checks for cancellation


def bpy_python() -> list[str]:
    """The command that starts a Python able to import bpy."""
    custom = os.environ.get(BPY_PYTHON_ENV, "").strip()
    return shlex.split(custom) if custom else [sys.executable]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[3])  # so any Python finds edn_server
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_blender(spec: ClipSpec, out_dir: Path, frames: list[int] | None = None, progress: Progress = no_progress,
                cancelled: Callable[[], bool] | None = None, stage: str = "render") -> float:
    """Render `frames` (1-based; default all) of `spec` into out_dir/NNNNN.png; returns seconds spent."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_file = out_dir / "spec.json"
    spec_file.write_text(spec.to_json())
    command = [*bpy_python(), "-m", "edn_server.demo.samples.blender_scene", "--spec", str(spec_file), "--out", str(out_dir)]
    if frames is not None:
        command += ["--frames", ",".join(str(f) for f in frames)]
    total = len(frames) if frames is not None else spec.frame_count
    progress(0, total, stage)
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as stderr:
        try:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=_child_env())
        except OSError as exc:
            raise EdnError(RENDERER_MISSING, f"Cannot start {command[0]} to render the samples ({exc}). "
                                             f"Set {BPY_PYTHON_ENV} to a Python that has bpy.") from exc
        lines: queue.Queue = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
        reader.start()
        recent: collections.deque[str] = collections.deque(maxlen=15)
        try:
            while True:
                if cancelled is not None and cancelled():
                    _stop(proc)
                    raise EdnError(CANCELLED, "Rendering the sample clips was cancelled; no clip was kept.")
                try:
                    line = lines.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if line is None:
                    break
                if line.startswith(PROGRESS_PREFIX):
                    done, _ = line.split()[1:3]
                    progress(int(done), total, stage)
                elif line.strip():
                    recent.append(line.rstrip())
            proc.wait()
        finally:
            _stop(proc)  # on cancel, Ctrl-C or any error the child must not outlive us
            reader.join(timeout=2)
        stderr.seek(0)
        errors = stderr.read()
    _check_exit(proc.returncode, errors, recent)
    return time.monotonic() - started


def _check_exit(code: int, errors: str, recent) -> None:
    if code == 0:
        return
    if code == EXIT_NO_BPY:
        detail = next((line.split(" ", 2)[2] for line in errors.splitlines() if line.startswith(ERROR_PREFIX)), "bpy not found")
        raise EdnError(RENDERER_MISSING, f"Rendering the sample clips needs Blender's Python module bpy, which "
                                         f"`{shlex.join(bpy_python())}` cannot import ({detail}). Install it with "
                                         f"`{sys.executable} -m pip install bpy==5.0.1` (needs Python 3.11), or set "
                                         f"{BPY_PYTHON_ENV} to a Python that has it.")
    tail = "\n".join([*recent, *errors.strip().splitlines()[-15:]])
    raise EdnError(RENDER_FAILED, f"Blender stopped with exit code {code} while rendering the sample clips; "
                                  f"no clip was kept. Its last output:\n{tail}")


def encode_frames(frames_dir: Path, path: Path, spec: ClipSpec, progress: Progress = no_progress,
                  cancelled: Callable[[], bool] | None = None, stage: str = "encode") -> None:
    """Write the PNG frames as an mp4 (atomically: an interrupted encode leaves no clip)."""
    from ...media import VideoWriter, read_image
    from ...progress import check_cancelled

    files = sorted(frames_dir.glob("*.png"))
    if len(files) != spec.frame_count:
        raise EdnError(RENDER_FAILED, f"Blender wrote {len(files)} of {spec.frame_count} frames into {frames_dir}; "
                                      "no clip was kept. Run `edn samples` again.")
    with VideoWriter(path, spec.fps, spec.size) as writer:
        for done, file in enumerate(files, start=1):
            check_cancelled(cancelled)
            writer.write(read_image(file))
            if done % 30 == 0 or done == len(files):
                progress(done, len(files), stage)


def render_clip(spec: ClipSpec, path: Path, progress: Progress = no_progress,
                cancelled: Callable[[], bool] | None = None) -> float:
    """Render the whole clip of `spec` to the mp4 `path`; returns Blender's seconds."""
    with tempfile.TemporaryDirectory(prefix=f"edn-{spec.role}-") as tmp:
        frames_dir = Path(tmp)
        seconds = run_blender(spec, frames_dir, None, progress, cancelled, stage=f"render {spec.role}")
        encode_frames(frames_dir, path, spec, progress, cancelled, stage=f"encode {spec.role}")
    return seconds


def render_stills(spec: ClipSpec, frames: list[int], out_dir: Path,
                  cancelled: Callable[[], bool] | None = None) -> list[Path]:
    """Single frames of a clip as PNGs, without rendering the rest (same pixels as in the clip)."""
    run_blender(spec, out_dir, frames, cancelled=cancelled, stage=f"stills {spec.role}")
    return [out_dir / f"{frame:05d}.png" for frame in frames]
