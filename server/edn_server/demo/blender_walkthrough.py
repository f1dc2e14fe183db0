"""The demo's Blender walkthrough: the real extension in headless Blender, used as a user would.

    <python with bpy> -m edn_server.demo.blender_walkthrough --source CLIP --model NAME --out OUT --data-dir DIR [--frames N]

Builds the extension zip from edn_blender_addon/ with Blender's own tool and installs it into a
throw-away user folder, points its preferences (Local mode) at the edn server already running on
DIR (`edn serve --data-dir DIR`; with --start-server the add-on's own launcher starts one when none
runs), puts CLIP on a Sequencer scene with the clip's fps, picks the target NAME, runs Transfer
Motion and turns the poller by hand (timers never fire headless) until the result strip is on the
timeline, then renders the Sequencer to OUT/demo.mp4 with the source muted and saves OUT/demo.blend.

Exit codes: 0 done; 2 bad input (clip, model, options); 3 no server; 4 the job failed or was
cancelled; 5 the result could not be placed or rendered; 6 the job ran past --timeout.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ADDON_DIR = ROOT / "edn_blender_addon"
MANIFEST = ROOT / "blender_manifest.toml"
ADDON_MODULE = "bl_ext.user_default.edn_motion_transfer"
BAD_INPUT, NO_SERVER, JOB_FAILED, RESULT_FAILED, TIMED_OUT = 2, 3, 4, 5, 6


class DemoFailure(Exception):
    def __init__(self, exit_code: int, message: str):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class DemoOptions:
    source: Path
    model: str
    out: Path
    data_dir: Path
    frames: int | None = None
    start_server: bool = False
    server_python: str = sys.executable
    timeout_s: float = 3600.0


def say(message: str) -> None:
    print(f"[demo-blender] {message}", flush=True)


# -- the add-on, installed as users install it ---------------------------------------------------------

def install_extension(work: Path):
    """Stage manifest + package, build and validate the zip with Blender's tool, install and enable it."""
    import addon_utils
    import bpy

    tool = Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    if not tool.is_file() or not ADDON_DIR.is_dir():
        raise DemoFailure(BAD_INPUT, f"Cannot build the extension: need Blender's tool {tool} and the add-on "
                                     f"sources {ADDON_DIR} (run from the project checkout).")
    stage = work / "stage"
    stage.mkdir(parents=True)
    shutil.copy2(MANIFEST, stage / MANIFEST.name)
    for source in ADDON_DIR.glob("*.py"):
        shutil.copy2(source, stage / source.name)
    archive = work / f"edn_motion_transfer-{tomllib.loads(MANIFEST.read_text())['version']}.zip"
    for args in (["build", "--source-dir", str(stage), "--output-filepath", str(archive)], ["validate", str(archive)]):
        done = subprocess.run([sys.executable, str(tool), *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise DemoFailure(BAD_INPUT, f"blender_ext {args[0]} failed:\n{done.stdout}{done.stderr}")
    bpy.ops.extensions.package_install_files(filepath=str(archive), repo="user_default", enable_on_install=True)
    if not addon_utils.check(ADDON_MODULE)[1]:
        addon_utils.enable(ADDON_MODULE, default_set=True)
    if ADDON_MODULE not in sys.modules:
        raise DemoFailure(BAD_INPUT, f"The extension {archive.name} installed but {ADDON_MODULE} did not enable.")
    say(f"extension {archive.name} installed and enabled")
    return sys.modules[ADDON_MODULE]


def drive(addon, done, timeout_s: float, what: str, on_tick=None) -> None:
    """Turn the add-on's poller by hand until done() (Blender runs no timers in background mode)."""
    deadline = time.monotonic() + timeout_s
    while True:
        addon.poller.tick()
        if on_tick is not None:
            on_tick()
        if done():
            return
        if time.monotonic() > deadline:
            raise DemoFailure(TIMED_OUT, f"{what} did not finish within {timeout_s:g} s.")
        time.sleep(0.1)


def connect(addon, options: DemoOptions) -> dict:
    """Local-mode preferences for DIR's server; the target model's entry from the server's list."""
    import bpy

    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.mode, prefs.python_path, prefs.data_dir = "LOCAL", options.server_python, str(options.data_dir)
    addon.poller.reset()
    client = addon.launcher.running_client(str(options.data_dir))
    if client is None and not options.start_server:
        raise DemoFailure(NO_SERVER, f"No edn server is running on {options.data_dir}: start one with "
                                     f"`edn serve --data-dir {options.data_dir}`, or pass --start-server.")
    if client is None:
        say("no server running: the add-on starts one")
    if bpy.ops.edn.refresh_models() != {"FINISHED"}:
        raise DemoFailure(NO_SERVER, f"Refresh Models failed: {bpy.context.scene.edn.last_error}")
    state = addon.poller.state
    drive(addon, lambda: state.models_loaded or bool(state.models_error), 120, "Fetching the model list")
    if state.models_error:
        raise DemoFailure(NO_SERVER, f"The server did not list its models: {state.models_error}")
    model = next((m for m in state.models if m.get("name") == options.model), None)
    if model is None:
        names = ", ".join(m.get("name", "?") for m in state.models) or "none"
        raise DemoFailure(BAD_INPUT, f"Model {options.model!r} is not on the server for {options.data_dir} (it has: "
                                     f"{names}). Train it first (edn train ... --name {options.model!r}).")
    say(f"server {addon.launcher.running_client(str(options.data_dir)).url}, target model {options.model!r}")
    return model


# -- the scene -------------------------------------------------------------------------------------------

def sequencer_scene(addon, options: DemoOptions, resolution: tuple[int, int]):
    """An empty file whose scene shows the clip from frame 1, at the clip's fps, output at the result's size."""
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.sequence_editor_create()
    workspace = getattr(bpy.context, "workspace", None)
    if workspace is not None and hasattr(workspace, "sequencer_scene"):
        workspace.sequencer_scene = scene  # 5.x: the Sequencer shows the workspace's scene
    # Strips are fitted to the output size when added: set it to the result's before any is.
    scene.render.resolution_x, scene.render.resolution_y = resolution
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"
    strip = addon.strips.add_movie(scene, options.source.stem, str(options.source.resolve()), 1, 1)
    if strip.frame_duration < 1 or not strip.fps:
        raise DemoFailure(BAD_INPUT, f"Blender cannot read {options.source} as a movie; convert it to H.264 mp4.")
    fps = float(strip.fps)
    scene.render.fps = max(1, round(fps))
    scene.render.fps_base = scene.render.fps / fps
    if options.frames is not None:
        strip.frame_final_duration = max(1, min(options.frames, strip.frame_duration))
    scene.frame_start, scene.frame_end = strip.frame_final_start, strip.frame_final_end - 1
    scene.sequence_editor.active_strip = strip
    scene.edn.output_dir = str(options.out / "edn_output")
    scene.edn.target_model_choice = options.model
    say(f"scene: '{strip.name}' on channel {strip.channel}, frames {scene.frame_start}-{scene.frame_end} at {fps:g} fps")
    return scene, strip


def transfer(addon, scene, timeout_s: float):
    """Transfer Motion on the active strip; prints progress until the result strip is placed."""
    import bpy

    if bpy.ops.edn.transfer_motion() != {"FINISHED"}:
        raise DemoFailure(NO_SERVER, f"Transfer Motion did not start: {scene.edn.last_error or 'see the messages above'}")
    uid = scene.edn.jobs[-1].uid
    jobstate, shown = addon.jobstate, {"line": "", "at": 0.0}

    def record():
        return addon.poller.find_record(uid)[1]

    def report() -> None:
        r = record()
        line = jobstate.status_text(r.kind, r.state, r.progress, r.stage, r.eta_s if r.eta_s >= 0 else None)
        now = time.monotonic()
        if line != shown["line"] and (now - shown["at"] >= 1.0 or r.state != jobstate.RUNNING or r.stage not in shown["line"]):
            say(line)
            shown.update(line=line, at=now)

    def finished() -> bool:  # a done job whose frames could not be placed keeps its error, not a new state
        r = record()
        return jobstate.is_final(r.state) and (r.placed or r.state != jobstate.DONE or bool(r.error_code))

    drive(addon, finished, timeout_s, "The transfer job", on_tick=report)
    r = record()
    if r.state == jobstate.DONE and not r.placed:
        raise DemoFailure(RESULT_FAILED, f"The transfer job {r.job_id} finished but its frames were not placed: "
                                         f"{r.error_code}: {r.error_message}")
    if r.state != jobstate.DONE:
        code = JOB_FAILED if r.state in (jobstate.FAILED, jobstate.CANCELLED, jobstate.INTERRUPTED) else NO_SERVER
        raise DemoFailure(code, f"The transfer job {r.job_id or '(not sent)'} ended {r.state}: "
                                f"{r.error_code or 'no code'}: {r.error_message or 'no message'}")
    return r


def check_placement(addon, scene, source, record):
    """The result strip: first free channel above the source, same start and length."""
    strip = addon.strips.find_strip(scene, record.result_strip)
    if strip is None:
        raise DemoFailure(RESULT_FAILED, f"The job finished but its strip '{record.result_strip}' is not on the timeline.")
    others = [o for o in addon.strips.occupied(scene.sequence_editor) if o != (strip.channel, strip.frame_final_start,
                                                                               strip.frame_final_end)]
    expected = addon.jobstate.first_free_channel(others, source.channel, source.frame_final_start, source.frame_final_end)
    placed = (strip.channel, strip.frame_final_start, strip.frame_final_duration)
    if placed != (expected, source.frame_final_start, source.frame_final_duration):
        raise DemoFailure(RESULT_FAILED, f"Result strip at channel/start/length {placed}; expected "
                                         f"{(expected, source.frame_final_start, source.frame_final_duration)}.")
    say(f"result strip '{strip.name}' on channel {strip.channel}, frames {strip.frame_final_start}-{strip.frame_final_end - 1}")
    return strip


def render_movie(addon, scene, source, strip, out: Path) -> Path:
    """The Sequencer through Blender's render pipeline: only the result shows (the source is muted)."""
    import bpy

    first = bpy.data.images.load(os.path.join(bpy.path.abspath(strip.directory), strip.elements[0].filename))
    size = tuple(first.size)
    bpy.data.images.remove(first)
    if size != (scene.render.resolution_x, scene.render.resolution_y):
        raise DemoFailure(RESULT_FAILED, f"The result frames are {size[0]}x{size[1]} but the model said "
                                         f"{scene.render.resolution_x}x{scene.render.resolution_y}.")
    source.mute = True
    out.mkdir(parents=True, exist_ok=True)
    scene.frame_start, scene.frame_end = strip.frame_final_start, strip.frame_final_end - 1
    movie, partial = out / "demo.mp4", out / ".demo.part.mp4"
    codecs = {item.identifier for item in scene.render.ffmpeg.bl_rna.properties["codec"].enum_items}
    for codec in [c for c in ("H264", "MPEG4") if c in codecs]:
        addon.strips.set_ffmpeg_output(scene, str(partial), codec)
        if codec == "H264":
            scene.render.ffmpeg.constant_rate_factor = "PERC_LOSSLESS"  # small frames: keep the GAN's detail
        try:
            bpy.ops.render.render(animation=True)
        except RuntimeError as error:
            say(f"{codec} render failed ({error}); trying the next codec")
            continue
        if partial.is_file() and partial.stat().st_size > 0:
            os.replace(partial, movie)
            scene.render.filepath = str(movie)  # a re-render from the saved file writes the same movie
            say(f"rendered {scene.frame_end - scene.frame_start + 1} frames ({size[0]}x{size[1]}, {codec}) to {movie}")
            return movie
    partial.unlink(missing_ok=True)
    raise DemoFailure(RESULT_FAILED, f"Blender could not render {movie} with H.264 or MPEG-4 (see the messages above).")


def run(options: DemoOptions) -> int:
    # Blender reads this when bpy is first imported: the user's own preferences and extensions stay untouched.
    work = Path(tempfile.mkdtemp(prefix="edn-demo-blender-"))
    os.environ["BLENDER_USER_RESOURCES"] = str(work / "user")
    try:
        if not options.source.is_file():
            raise DemoFailure(BAD_INPUT, f"The source clip {options.source} does not exist; pass a movie file with --source.")
        import bpy

        addon = install_extension(work)
        model = connect(addon, options)
        info = model.get("info") or {}
        # a person-mode model writes frames at the target's own size; older models at their resolution
        width, height = (int(v) for v in info.get("output_size") or info.get("resolution") or (0, 0))
        if width <= 0 or height <= 0:
            raise DemoFailure(BAD_INPUT, f"Model {options.model!r} has no resolution in its model.json; train it again.")
        scene, source = sequencer_scene(addon, options, (width, height))
        record = transfer(addon, scene, options.timeout_s)
        strip = check_placement(addon, scene, source, record)
        render_movie(addon, scene, source, strip, options.out)
        blend = options.out / "demo.blend"
        bpy.ops.wm.save_as_mainfile(filepath=str(blend), check_existing=False)
        say(f"saved {blend}")
        return 0
    except DemoFailure as failure:
        print(f"demo-blender: error: {failure}", file=sys.stderr, flush=True)
        return failure.exit_code
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parse_args(argv: list[str] | None) -> DemoOptions:
    parser = argparse.ArgumentParser(prog="python -m edn_server.demo.blender_walkthrough", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="the source dancer's movie file")
    parser.add_argument("--model", required=True, help="the trained target's name on the server")
    parser.add_argument("--out", type=Path, required=True, help="folder for demo.mp4, demo.blend and the frames")
    parser.add_argument("--data-dir", type=Path, required=True, help="the data dir of the running edn server")
    parser.add_argument("--frames", type=int, default=None, help="use only the clip's first N frames")
    parser.add_argument("--start-server", action="store_true", help="let the add-on start a server when none runs")
    parser.add_argument("--server-python", default=sys.executable, help="Python with edn_server (for --start-server)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the job (default 3600)")
    args = parser.parse_args(argv)
    if args.frames is not None and args.frames < 1:
        parser.error("--frames must be at least 1")
    return DemoOptions(source=args.source, model=args.model, out=args.out.resolve(), data_dir=args.data_dir.resolve(),
                       frames=args.frames, start_server=args.start_server, server_python=args.server_python,
                       timeout_s=args.timeout)


def main(argv: list[str] | None = None) -> int:
    code = run(parse_args(argv))
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave without Blender's interpreter teardown, which can crash after all work is done (seen
    # with bpy 4.2) and would turn a finished demo into a failure; the server's threads are daemons.
    os._exit(code)


if __name__ == "__main__":
    main()
