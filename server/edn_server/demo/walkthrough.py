"""`make demo`: the main job on the embedded sample dancers (or your own clips), end to end.

Steps: pose model → sample clips (shipped with edn, see shipped.py; rendered once and cached with
--quick) → a `preview` model of the target (the shipped one for the sample target; else, or with
--retrain, trained for a few minutes and reused on later runs) → the real Blender extension transferring the source
dancer's motion to it through the job server (`demo_blender`; with --no-blender the transfer runs
directly) → pictures in `out/`: side_by_side.mp4 (source | normalized pose | result) and contact_sheet.png.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import EdnError
from ..names import SECONDS, TRAIN_STAGE
from ..progress import TqdmProgress
from .shipped import ShippedDemo, install_model, shipped_demo

PANEL_HEIGHT = 256


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    width = max(2, int(round(w * height / h)) // 2 * 2)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)


def _read_rgb(path: Path) -> np.ndarray:
    from ..media import read_image

    return read_image(path)


def side_by_side_rows(source_path: Path, normalized, frames_dir: Path, start: int = 0):
    """Yield (source frame | normalized label | generated frame) images, one per source frame."""
    from ..media import iter_frames, probe
    from ..names import frame_name
    from ..pose.render import render_label

    info = probe(source_path)
    for offset, frame in enumerate(iter_frames(info, start, start + len(normalized))):
        label = (render_label(normalized.keypoints[offset], normalized.size) if normalized.usable[offset]
                 else np.zeros((normalized.size[1], normalized.size[0], 3), np.uint8))
        result = _read_rgb(frames_dir / frame_name(start + offset))
        yield np.concatenate([_fit_height(p, PANEL_HEIGHT) for p in (frame, label, result)], axis=1)


def write_side_by_side(rows, out_path: Path, fps: float, total: int, sheet_path: Path, sheet_rows: int = 6) -> None:
    """Stream the rows into an mp4 and keep a few evenly spaced ones for the contact sheet."""

    from ..atomic import atomic_file
    from ..media import VideoWriter, write_image

    picks = set(np.linspace(0, total - 1, min(sheet_rows, total)).round().astype(int).tolist())
    kept = []
    bar = TqdmProgress()
    writer = None
    try:
        for index, row in enumerate(rows):
            if writer is None:
                writer = VideoWriter(out_path, fps, (row.shape[1], row.shape[0]))
            writer.write(row)
            if index in picks:
                kept.append(row)
            bar(index + 1, total, "side-by-side video")
        writer.close()
        writer = None
    finally:
        bar.close()
        if writer is not None:
            writer.close(keep=False)
    with atomic_file(sheet_path, suffix=".png") as tmp:
        write_image(tmp, np.concatenate(kept, axis=0))


def model_name_for(target: Path, preset: str) -> str:
    """One demo model per target clip content and preset, so a later run reuses it."""
    from ..media import content_hash

    return f"demo-{target.stem[:40]}-{preset}-{content_hash(target)[:8]}"


def ensure_model(target: Path, preset: str, minutes: float, retrain: bool, shipped: ShippedDemo | None = None):
    """Train the target (or reuse the finished model of an earlier demo run; resume an interrupted one).
    With `shipped` (the sample target's shipped model) and no `retrain`, that model is installed instead
    of training, once its files pass their sha256 check."""
    from .. import config, registry
    from ..gan.model_io import load_trained_model
    from ..gan.train import train

    name = model_name_for(target, preset)
    folder = registry.models_dir(config.data_dir()) / name
    if retrain and folder.exists():
        registry.delete_model(config.data_dir(), name)
    if not retrain and shipped is not None and not (folder / registry.MODEL_FILE).is_file():
        if shipped.model_name != name:  # the clip is not the one the model was trained on
            print(f"The shipped demo model {shipped.model_name!r} is not a model of {target}; training one.", flush=True)
        elif install_model(shipped, folder.parent):
            print(f"Installed the shipped demo model {name!r} (trained by `edn train`: see {shipped.folder}/COMMAND.md; "
                  "make demo RETRAIN=1 trains your own).", flush=True)
            return load_trained_model(name)
    if (folder / registry.MODEL_FILE).is_file():
        print(f"Reusing the trained model {name!r} (make demo RETRAIN=1 trains it again).", flush=True)
        return load_trained_model(name)
    print(f"Training {name!r} ({preset}) for {minutes:g} minutes…", flush=True)
    bar = TqdmProgress(units={TRAIN_STAGE: SECONDS})  # a time budget: the bar counts its seconds
    try:
        return train(target, name, preset=preset, minutes=minutes, resume=(folder / "training").exists(), progress=bar)
    finally:
        bar.close()


@contextlib.contextmanager
def job_server(data_dir: Path, log_path: Path):
    """The job server for `data_dir`: a running one is reused, else one is started for the
    walkthrough and stopped after it (its log goes to `log_path`)."""
    from ..service.serve import read_discovery

    discovery = data_dir / "server.json"
    found = read_discovery(data_dir)
    if found and _pid_alive(int(found.get("pid", 0))):
        yield
        return
    discovery.unlink(missing_ok=True)  # stale: its server is gone
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "edn_server", "serve", "--data-dir", str(data_dir)],
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while not discovery.is_file():
                if server.poll() is not None or time.monotonic() > deadline:
                    raise EdnError("DEMO_FAILED", f"The job server did not start; see its log {log_path}.")
                time.sleep(0.2)
            yield
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return pid > 0


def run_blender_walkthrough(source: Path, model: str, out: Path, frames: int | None) -> bool:
    """The real extension in headless Blender: Transfer Motion through the job server, the result
    strip on the timeline, the Sequencer rendered to out/demo.mp4 and the scene saved to out/demo.blend."""
    from .. import config

    data_dir = config.data_dir()
    command = [sys.executable, "-m", "edn_server.demo.blender_walkthrough", "--source", str(source), "--model", model,
               "--out", str(out), "--data-dir", str(data_dir)]
    if frames:
        command += ["--frames", str(frames)]
    print("Running the Blender extension headless (Transfer Motion → result strip → Sequencer render)…", flush=True)
    with job_server(data_dir, out / "server.log"):
        return subprocess.run(command).returncode == 0


def run(out: Path, source: Path | None, target: Path | None, preset: str, minutes: float, retrain: bool,
        max_frames: int | None, quick: bool, blender: bool) -> None:
    from ..gan.infer import transfer
    from ..names import RESULT_POSES
    from ..pose.models import ensure_pose_model
    from ..pose.sequence import PoseSequence

    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    ensure_pose_model("full")
    shipped = None if quick else shipped_demo()
    if (source is None or target is None) and shipped is None:
        from .samples import render_samples

        print("Rendering the embedded sample dancers (once; cached for later runs)…", flush=True)
        bar = TqdmProgress()
        try:
            samples = render_samples(quick=quick, progress=bar)
        finally:
            bar.close()
        source = source or samples.source
        target = target or samples.target
    elif source is None or target is None:
        print(f"Using the sample dancers shipped with edn ({shipped.folder}).", flush=True)
        source = source or shipped.source
        target = target or shipped.target
    print(f"target: {target}\nsource: {source}", flush=True)

    sample_model = shipped is not None and target == shipped.target and preset == shipped.model_preset
    model = ensure_model(target, preset, minutes, retrain, shipped if sample_model else None)
    if blender:
        # The walkthrough's Transfer Motion job writes the frames; the pictures below reuse them.
        if not run_blender_walkthrough(source, model.name, out, max_frames):
            raise EdnError("DEMO_FAILED", "The Blender walkthrough failed (see its messages above). "
                                          "`make demo` with --no-blender runs the transfer without Blender.")
        frames_dir = newest_result_dir(out / "edn_output")
    else:
        frames_dir = out / "frames"
        bar = TqdmProgress()
        try:
            result = transfer(source, model, frames_dir, end=max_frames, progress=bar)
        finally:
            bar.close()
        print(f"transfer: {result.frames} frames at {result.fps_generated:.1f} frames/s (generation) → {frames_dir}",
              flush=True)

    normalized = PoseSequence.load(frames_dir / RESULT_POSES)
    rows = side_by_side_rows(source, normalized, frames_dir)
    write_side_by_side(rows, out / "side_by_side.mp4", normalized.fps, len(normalized), out / "contact_sheet.png")
    print(f"done in {time.monotonic() - started:.0f} s: see {out}/ (side_by_side.mp4, contact_sheet.png, "
          f"{'demo.mp4, demo.blend, ' if blender else ''}frames in {frames_dir})")


def newest_result_dir(folder: Path) -> Path:
    """The folder of the latest finished transfer under `folder` (each job writes its own subfolder,
    and writes its manifest last)."""
    from ..names import RESULT_MANIFEST

    manifests = sorted(folder.glob(f"*/{RESULT_MANIFEST}"), key=lambda path: path.stat().st_mtime)
    if not manifests:
        raise EdnError("DEMO_FAILED", f"The Blender walkthrough finished but left no transfer result in {folder}.")
    return manifests[-1].parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edn-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--source", type=Path, help="your source dancer clip (default: the embedded sample)")
    parser.add_argument("--target", type=Path, help="your target subject clip (default: the embedded sample)")
    parser.add_argument("--preset", choices=("preview", "paper", "tiny"), default="preview")
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget for the target (default 5)")
    parser.add_argument("--retrain", action="store_true",
                        help="train the target again even if a demo model exists (or is shipped, for the sample target)")
    parser.add_argument("--max-frames", type=int, default=None, help="transfer at most this many source frames")
    parser.add_argument("--quick", action="store_true", help="short, small samples (for tests)")
    parser.add_argument("--no-blender", action="store_true", help="skip the headless Blender walkthrough")
    parser.add_argument("--verbose", action="store_true", help="show MediaPipe's native logging (hidden by default)")
    args = parser.parse_args(argv)
    from ..pose.landmarker import quiet_native_logs

    try:
        with quiet_native_logs(not args.verbose):
            run(args.out, args.source, args.target, args.preset, args.minutes, args.retrain, args.max_frames,
                args.quick, not args.no_blender)
    except EdnError as exc:
        print(f"edn demo: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
