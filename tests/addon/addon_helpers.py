"""Helpers for the add-on tests, which run under every supported Blender (bpy 5.0 in .venv, bpy 4.2
in .venv-bpy42) against ONE real edn server per session, started from the project's .venv.

The add-on is tested as users get it: built into the extension zip with Blender's own tool,
installed into a temporary user repository and enabled. Modules that need no bpy are also loaded
on their own (`pure(...)`), without running the package's __init__.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADDON_DIR = ROOT / "edn_blender_addon"
MANIFEST = ROOT / "blender_manifest.toml"
SERVER_PYTHON = Path(os.environ.get("EDN_SERVER_PYTHON", ROOT / ".venv" / "bin" / "python"))
SHARED_DATA = Path(os.environ.get("EDN_SHARED_DATA", ROOT.parent / "shared" / "data"))
EXTENSION_ID = "edn_motion_transfer"
ADDON_MODULE = f"bl_ext.user_default.{EXTENSION_ID}"
TARGET_MODEL = "subject4 stats"
TINY_MODEL = "tiny dancer"
CLIP_FRAMES = 24

# Blender reads this when bpy is first imported: keep its preferences and extensions out of ~.
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="edn-blender-user-"))

_PURE_PACKAGE = "edn_addon_pure"


def addon_module(name: str):
    """An add-on module imported on its own, without the package's __init__ (which registers classes)."""
    if _PURE_PACKAGE not in sys.modules:
        package = types.ModuleType(_PURE_PACKAGE)
        package.__path__ = [str(ADDON_DIR)]
        sys.modules[_PURE_PACKAGE] = package
    return importlib.import_module(f"{_PURE_PACKAGE}.{name}")


def pure(name: str):
    """An add-on module that must not need bpy, imported without the package's __init__ (which does)."""
    module = addon_module(name)
    assert "bpy" not in getattr(module, "__dict__", {}), f"{name} imports bpy"
    return module


def run_server_python(code: str, timeout: float = 300) -> str:
    """Run code in the server's venv (cv2, mediapipe, edn_server): the add-on's venvs have none of them."""
    result = subprocess.run([str(SERVER_PYTHON), "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def blender_ext_tool() -> Path:
    import bpy

    tool = Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    if not tool.is_file():
        pytest.skip(f"this bpy build lacks Blender's extension tool ({tool})")
    return tool


def build_extension(out_dir: Path) -> Path:
    """What `make extension` does, with the running Blender's own tool: stage, build, validate."""
    import tomllib

    version = tomllib.loads(MANIFEST.read_text())["version"]
    stage = out_dir / "stage"
    stage.mkdir(parents=True)
    (stage / MANIFEST.name).write_bytes(MANIFEST.read_bytes())
    for source in ADDON_DIR.glob("*.py"):
        (stage / source.name).write_bytes(source.read_bytes())
    archive = out_dir / f"{EXTENSION_ID}-{version}.zip"
    tool = blender_ext_tool()
    for args in (["build", "--source-dir", str(stage), "--output-filepath", str(archive)], ["validate", str(archive)]):
        result = subprocess.run([sys.executable, str(tool), *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"blender_ext {args[0]} failed:\n{result.stdout}\n{result.stderr}"
    return archive


def prefs():
    import bpy

    return bpy.context.preferences.addons[ADDON_MODULE].preferences


def add_movie_strip(addon, sc, path: Path, channel: int = 1, frame_start: int = 1, name: str = "dance"):
    strip = addon.strips.add_movie(sc, name, str(path), channel, frame_start)
    sc.sequence_editor.active_strip = strip
    return strip


def drive(addon, done, timeout: float = 120.0, what: str = "the job"):
    """Run the poller's timer function by hand (timers never fire in background mode) until done()."""
    deadline = time.monotonic() + timeout
    while True:
        addon.poller.tick()
        if done():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not finish within {timeout} s")
        time.sleep(0.05)


def wait_idle(addon, timeout: float = 30.0) -> None:
    """Let background work started by a test finish, so the next test starts clean."""
    drive(addon, lambda: not addon.session.state.busy(), timeout, "background work")

FINAL = ("done", "failed", "cancelled", "interrupted", "not_sent")


def submit_raw_job(addon, scene, kind: str, params: dict, media: dict | None = None):
    """A job of any kind (e.g. the server's test-only kinds) sent as an operator sends one."""
    import uuid

    record = scene.edn.jobs.add()
    record.uid, record.kind, record.state, record.source_strip = uuid.uuid4().hex, kind, "submitting", "test"
    addon.job_sync.submit(addon.poller.settings_from_prefs(), record.uid, kind, params, media, None)
    return record


def finished(record) -> bool:
    return record.state in FINAL and (record.placed or record.state != "done")


def poll_message(op) -> str:
    """The reason an operator is unavailable, as Blender reports it when the poll fails."""
    with pytest.raises(RuntimeError) as info:
        op()
    return str(info.value)


def blender_pixels(path: Path):
    """RGB float pixels (rows bottom-up, as Blender stores them), read by Blender itself."""
    import bpy
    import numpy as np

    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        image.colorspace_settings.name = "sRGB"
        w, h = image.size
        values = np.empty(w * h * 4, np.float32)
        image.pixels.foreach_get(values)
        return values.reshape(h, w, 4)[..., :3]
    finally:
        bpy.data.images.remove(image)


def render_frame(scene, frame: int, path: Path):
    """Blender's render of one timeline frame (the Sequencer's output), as blender_pixels."""
    import bpy

    scene.render.image_settings.file_format = "PNG"
    scene.frame_set(frame)
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return blender_pixels(path)
