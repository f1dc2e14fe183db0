"""The `make demo` Blender walkthrough end to end: a real `edn serve`, a tiny target trained here on
24 real frames, and demo_blender.py driving the real extension in headless Blender to a rendered
demo.mp4 and a demo.blend a user can open."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_clip
from edn_server.gan.train import train
from edn_server.media import VideoWriter, iter_frames, probe
from edn_server.names import COMPILE_STAGE, DETECT_STAGE, GENERATE_STAGE, NORMALIZE_STAGE

TARGET_CLIP = "edn_subject4_train.mp4"
SOURCE_CLIP = "mediapipe_pose_segmentation_dance.mp4"  # 102 frames; the demo uses the first FRAMES
FRAMES = 24
MODEL = "demo tiny"

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="needs bpy (Blender as a module) in this Python")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, pose_model_full):
    """A server data dir holding one tiny target trained on FRAMES real frames of the target clip."""
    folder = tmp_path_factory.mktemp("demo_server")
    saved = os.environ.get("EDN_HOME")
    os.environ["EDN_HOME"] = str(folder)  # the model is registered where the server will look
    try:
        train(shared_clip(TARGET_CLIP), MODEL, preset="tiny", steps=4, end=FRAMES)
    finally:
        if saved is None:
            os.environ.pop("EDN_HOME", None)
        else:
            os.environ["EDN_HOME"] = saved
    return folder


@pytest.fixture(scope="module")
def server(data_dir):
    """`edn serve` on the data dir, as `make demo` starts it; stopped (SIGTERM to its own pid) afterwards."""
    log = open(data_dir.parent / "serve.log", "wb")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen([sys.executable, "-m", "edn_server", "serve", "--port", "0", "--data-dir", str(data_dir)],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (data_dir / "server.json").is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"edn serve did not start: {(data_dir.parent / 'serve.log').read_text()[-2000:]}")
        time.sleep(0.1)
    yield json.loads((data_dir / "server.json").read_text())
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def blur(rgb: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(rgb.astype(np.float32), (5, 5), 0)


def demo_blender(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edn_server.demo.blender_walkthrough", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_walkthrough_renders_the_transferred_motion_and_saves_the_blend(server, data_dir, tmp_path):
    out = tmp_path / "out"
    started = time.monotonic()
    done = demo_blender("--source", str(shared_clip(SOURCE_CLIP)), "--model", MODEL, "--out", str(out),
                        "--data-dir", str(data_dir), "--frames", str(FRAMES))
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # progress lines as the job runs. Which ones show depends on how fast the job is against the poll
    # interval (a fast machine can go from Queued to Done between two polls), so assert their form and
    # order, and that the last one says Done.
    statuses = [line.removeprefix("[demo-blender] ") for line in done.stdout.splitlines()
                if line.startswith("[demo-blender] Transfer: ")]
    assert statuses and statuses[-1].startswith("Transfer: Done"), done.stdout[-3000:]
    stage_order = [DETECT_STAGE, NORMALIZE_STAGE, COMPILE_STAGE, GENERATE_STAGE]  # a transfer's stages, in order
    seen = []
    for line in [s for s in statuses if not s.startswith("Transfer: Done")]:
        running = re.fullmatch(rf"Transfer: Running, ({'|'.join(stage_order)}), (\d+)%(, .+ left)?", line)
        assert running or re.fullmatch(r"Transfer: (Submitting|Queued|Running, \d+%)", line), line
        if running:
            seen.append(stage_order.index(running.group(1)))
    assert seen == sorted(seen), statuses
    # the strip is named "source > model", the source's name shortened between words when long
    placed = re.fullmatch(rf"Transfer: Done, strip '(.+)… > {re.escape(MODEL)}' on channel 2", statuses[-1])
    assert placed and Path(SOURCE_CLIP).stem.startswith(placed.group(1)), statuses
    assert f"result strip '{placed.group(1)}… > {MODEL}' on channel 2, frames 1-{FRAMES}" in done.stdout

    model = json.loads((data_dir / "models" / MODEL / "model.json").read_text())
    movie = probe(out / "demo.mp4")
    size = tuple(model.get("output_size") or model["resolution"])  # a person-mode model composites at the target size
    assert (movie.frame_count, movie.size, movie.fps) == (FRAMES, size, 20.0)
    assert not list(out.glob(".demo*"))  # the partial render was renamed, not left behind
    # the movie shows the generated frames (the source strip is muted), not the source dancer
    frames_dir = next((out / "edn_output").iterdir())
    pngs = sorted(frames_dir.glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(FRAMES)]
    rendered = list(iter_frames(movie, 0, FRAMES))
    for k in (0, FRAMES - 1):  # compared blurred: H.264 halves the colour resolution of 128x64 noisy frames
        expected = cv2.cvtColor(cv2.imread(str(pngs[k])), cv2.COLOR_BGR2RGB)
        assert np.abs(blur(rendered[k]) - blur(expected)).mean() < 8, f"movie frame {k} is not {pngs[k].name}"

    # demo.blend opens in a fresh Blender with the muted source, the result strip and the movie output
    check = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os
        import bpy
        bpy.ops.wm.open_mainfile(filepath={str(out / "demo.blend")!r})
        scene = bpy.context.scene
        for s in scene.sequence_editor.strips_all:
            print("STRIP", s.type, s.channel, s.mute, s.frame_final_start, s.frame_final_duration,
                  os.path.realpath(bpy.path.abspath(s.filepath if s.type == "MOVIE" else s.directory)))
        print("OUTPUT", bpy.path.abspath(scene.render.filepath), scene.frame_start, scene.frame_end)
    """)], capture_output=True, text=True, timeout=120, env={**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "user")})
    assert check.returncode == 0, check.stderr[-2000:]
    strips = sorted(line.split(" ", 1)[1] for line in check.stdout.splitlines() if line.startswith("STRIP "))
    assert strips == [f"IMAGE 2 False 1 {FRAMES} {frames_dir.resolve()}", f"MOVIE 1 True 1 {FRAMES} {shared_clip(SOURCE_CLIP).resolve()}"]
    output = next(line.split()[1:] for line in check.stdout.splitlines() if line.startswith("OUTPUT "))
    assert output == [str(out / "demo.mp4"), "1", str(FRAMES)]
    print(f"demo_blender: {seconds:.1f} s for {FRAMES} frames")


def test_walkthrough_fails_clearly_without_a_server_an_unknown_model_or_a_failed_job(server, data_dir, tmp_path):
    done = demo_blender("--source", str(shared_clip(SOURCE_CLIP)), "--model", "nobody", "--out", str(tmp_path / "a"),
                        "--data-dir", str(data_dir))
    assert done.returncode == 2 and "'nobody' is not on the server" in done.stderr and MODEL in done.stderr
    empty = tmp_path / "no-server"
    done = demo_blender("--source", str(shared_clip(SOURCE_CLIP)), "--model", MODEL, "--out", str(tmp_path / "b"),
                        "--data-dir", str(empty))
    assert done.returncode == 3 and f"edn serve --data-dir {empty}" in done.stderr
    nobody = tmp_path / "empty_room.mp4"  # a real movie without a person: the server's job fails
    with VideoWriter(nobody, 20, (320, 240)) as writer:
        for _ in range(6):
            writer.write(np.full((240, 320, 3), 40, np.uint8))
    done = demo_blender("--source", str(nobody), "--model", MODEL, "--out", str(tmp_path / "c"), "--data-dir", str(data_dir))
    assert done.returncode == 4 and "ended failed: NO_PERSON: No person was found" in done.stderr
    assert not any((tmp_path / name).exists() for name in "abc")  # nothing half-made
