"""Fixtures for the add-on tests (see addon_helpers.py for what they share)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from addon_helpers import (
    ADDON_MODULE,
    CLIP_FRAMES,
    ROOT,
    SERVER_PYTHON,
    SHARED_DATA,
    TARGET_MODEL,
    TINY_MODEL,
    build_extension,
    prefs,
    pure,
    run_server_python,
    wait_idle,
)


@pytest.fixture(scope="session")
def server_python() -> Path:
    if not SERVER_PYTHON.is_file():
        pytest.skip(f"the server's Python {SERVER_PYTHON} is missing (run make setup, or set EDN_SERVER_PYTHON)")
    return SERVER_PYTHON


@pytest.fixture(scope="session")
def edn_server(server_python, tmp_path_factory):
    """One real server for the session, started by the add-on's own launcher, with the test-only job
    kinds (test_sleep...) loaded. Yields {url, token, data_dir, log}."""
    launcher = pure("launcher")
    data_dir = tmp_path_factory.mktemp("edn_server_data")
    log = data_dir.parent / "edn-server.log"
    saved = {key: os.environ.get(key) for key in ("EDN_JOB_KIND_MODULES", "PYTHONPATH", "OMP_NUM_THREADS")}
    os.environ["EDN_JOB_KIND_MODULES"] = "edn_test_job_kinds"
    os.environ["OMP_NUM_THREADS"] = "1"  # torch threads spinning on a small shared CPU slow training steps several-fold
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests" / "server"), saved["PYTHONPATH"]]))
    try:
        client = launcher.start_server(launcher.LocalServer(python=str(server_python), data_dir=str(data_dir), log_path=str(log)))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    yield {"url": client.url, "token": client.token, "data_dir": data_dir, "log": log}
    launcher.stop_server(data_dir)


@pytest.fixture(scope="session")
def clip24(server_python, tmp_path_factory) -> Path:
    """The first 24 frames of a real dance clip (600x600, 20 fps), as a movie file."""
    source = SHARED_DATA / "mediapipe_pose_segmentation_dance.mp4"
    if not source.is_file():
        pytest.skip(f"real clip {source.name} not found in {SHARED_DATA} (set EDN_SHARED_DATA)")
    out = tmp_path_factory.mktemp("clips") / "dance24.mp4"
    run_server_python(f"""
        from edn_server.media import VideoWriter, iter_frames, probe
        info = probe({str(source)!r})
        with VideoWriter({str(out)!r}, info.fps, info.size) as writer:
            for frame in iter_frames(info, 0, {CLIP_FRAMES}):
                writer.write(frame)
    """)
    return out


@pytest.fixture(scope="session")
def target_model(edn_server) -> dict:
    """A registered target carrying real statistics (PoseStats of 24 frames of EDN subject 4), which
    is what Preview Poses needs from a model. No weights: Transfer Motion needs a trained one."""
    source = SHARED_DATA / "edn_subject4_train.mp4"
    if not source.is_file():
        pytest.skip(f"real clip {source.name} not found in {SHARED_DATA}")
    folder = edn_server["data_dir"] / "models" / TARGET_MODEL
    folder.mkdir(parents=True, exist_ok=True)
    stats = json.loads(run_server_python(f"""
        import json, os
        os.environ["EDN_HOME"] = {str(edn_server["data_dir"])!r}
        from edn_server.pose.detect import extract_poses
        from edn_server.pose.normalize import PoseStats
        print(json.dumps(PoseStats.from_poses(extract_poses({str(source)!r}, model="lite", start=0, end=24)).to_dict()))
    """).strip().splitlines()[-1])
    (folder / "model.json").write_text(json.dumps({"name": TARGET_MODEL, "stats": stats, "resolution": stats["frame_size"]}))
    return {"name": TARGET_MODEL, "stats": stats}


@pytest.fixture(scope="session")
def tiny_target(edn_server, clip24) -> dict:
    """A trained 'tiny' target (tests only: useless images, quick) on clip24, trained through the
    server's API; for the tests that need weights but are not about training."""
    client = pure("client").EdnClient(edn_server["url"], edn_server["token"], timeout=60.0)
    job_id = client.submit("train", {"name": TINY_MODEL, "preset": "tiny", "steps": 4}, {"path": str(clip24)})["id"]
    deadline = time.monotonic() + 180
    while (job := client.job(job_id))["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert job["state"] == "done", job
    return job["result"]


# -- Blender ------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory) -> Path:
    pytest.importorskip("bpy")
    return build_extension(tmp_path_factory.mktemp("extension"))


@pytest.fixture(scope="session")
def addon(extension_zip):
    """The installed, enabled extension's package module."""
    import addon_utils
    import bpy

    result = bpy.ops.extensions.package_install_files(filepath=str(extension_zip), repo="user_default", enable_on_install=True)
    assert result == {"FINISHED"}
    if not addon_utils.check(ADDON_MODULE)[1]:
        addon_utils.enable(ADDON_MODULE, default_set=True)
    assert addon_utils.check(ADDON_MODULE) == (True, True)
    return sys.modules[ADDON_MODULE]


@pytest.fixture
def local_prefs(addon, edn_server, server_python):
    """Preferences pointing at the session's server; the poller's cached state starts fresh."""
    p = prefs()
    p.mode, p.python_path, p.data_dir = "LOCAL", str(server_python), str(edn_server["data_dir"])
    p.remote_url, p.remote_token = "", ""
    addon.poller.reset()
    yield p
    wait_idle(addon)
    p.mode = "LOCAL"
    addon.poller.reset()


@pytest.fixture
def scene(addon):
    """A fresh, empty file whose scene has a sequence editor, shown by the Sequencer (5.x: the
    workspace's sequencer_scene)."""
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    sc = bpy.context.scene
    sc.sequence_editor_create()
    workspace = getattr(bpy.context, "workspace", None)
    if workspace is not None and hasattr(workspace, "sequencer_scene"):
        workspace.sequencer_scene = sc
    sc.render.fps, sc.render.fps_base = 20, 1.0
    sc.render.resolution_percentage = 100
    sc.view_settings.view_transform = "Standard"
    return sc




def pytest_sessionfinish(session, exitstatus):
    session.config.edn_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """End the process with pytest's status once its report is printed.

    The bpy module sometimes crashes while the interpreter tears Blender down (seen with bpy 4.2:
    a segfault after every test had passed), which would turn a green run red for no fault of
    the add-on. Nothing is left to run at this point: fixtures are finalised and the summary written.
    """
    status = getattr(config, "edn_exitstatus", None)
    if status is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
