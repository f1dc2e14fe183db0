"""End-to-end transfer speed of a preview model, before and after the person layer: frames per second
of the generation loop (labels, generator, face, composite, PNG and video writing; the source's
poses are cached first, as a second transfer of the same clip finds them) on a real source clip.

    PYTHONPATH=server .venv/bin/python bench/transfer_speed.py [--frames 90] [--threads 1,2]

Variants, each in its own process with N torch threads:
- full-frame: the preview preset as every model before the person layer: 256x128 frames.
- person composite: the person-mode preview model (176x176 window) composited over the plate at
  the target's native 1024x512 (the issue's figure: at least 8 frames/s on 2 cores).
- person-alpha: the same, written as RGBA PNGs (no mp4).
- person composite, compiled: through torch.compile (compiled before the timed loop).
Untrained networks (speed does not depend on the weights). Writes bench/results/transfer.json and
transfer.png; nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from worker_process import run_worker  # bench/worker_process.py

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SHARED_DATA = Path(os.environ.get("EDN_SHARED_DATA", ROOT.parent / "shared" / "data"))
SHARED_MODELS = Path(os.environ.get("EDN_SHARED_MODELS", ROOT.parent / "shared" / "models"))
SOURCE_CLIP, TARGET_CLIP = "mediapipe_pose_segmentation_dance.mp4", "edn_subject4_train.mp4"
VARIANTS = {  # name: (person mode, output kind, compile)
    "full-frame 256x128": (False, "composite", "off"),
    "person composite 1024x512": (True, "composite", "off"),
    "person-alpha 1024x512": (True, "person-alpha", "off"),
    "person composite 1024x512 compiled": (True, "composite", "on"),
}
TARGET_FPS = 8.0


def make_model(name: str, person: bool) -> None:
    """An untrained preview model of subject 4's proportions; in person mode with a plate (the median
    of 30 frames: the speed does not depend on what the plate shows)."""
    import numpy as np
    import torch
    from edn_server import media
    from edn_server.config import data_dir
    from edn_server.gan.frame_writer import write_png
    from edn_server.gan.model_io import save_trained_model
    from edn_server.gan.networks import define_face_generator, define_generator
    from edn_server.gan.train_config import person_config, preset_config
    from edn_server.pose.detect import extract_poses
    from edn_server.pose.normalize import PoseStats
    from edn_server.registry import models_dir

    target = SHARED_DATA / TARGET_CLIP
    info = media.probe(target)
    config = preset_config("preview", info.size)
    extra = {}
    folder = models_dir(data_dir()) / name
    if person:
        config = person_config(config)
        folder.mkdir(parents=True, exist_ok=True)
        write_png(folder / "plate.png", np.median(np.stack(list(media.iter_frames(info, 0, 30))), axis=0).astype(np.uint8))
        extra = {"mode": "person", "output_size": list(info.size)}
    torch.manual_seed(0)
    stats = PoseStats.from_poses(extract_poses(target, end=30), name=TARGET_CLIP)
    save_trained_model(folder, config, stats, define_generator(config.generator), define_face_generator(config.face_generator),
                       {"steps": 0, **extra})


def worker(variant: str, frames: int, threads: int) -> dict:
    import torch
    from edn_server.gan.infer import transfer
    from edn_server.pose.detect import extract_poses
    from edn_server.pose.models import ensure_pose_model

    torch.set_num_threads(threads)
    person, output, compile_mode = VARIANTS[variant]
    ensure_pose_model("full", from_dir=SHARED_MODELS if SHARED_MODELS.is_dir() else None)
    make_model("bench-transfer", person)
    clip = SHARED_DATA / SOURCE_CLIP
    extract_poses(clip, end=frames)
    best = None
    with tempfile.TemporaryDirectory() as out:
        for _ in range(2):  # the better of two runs: other processes only ever slow a run down
            result = transfer(clip, "bench-transfer", out, end=frames, output=output, compile=compile_mode)
            if best is None or result.fps_generated > best.fps_generated:
                best = result
    return {"variant": variant, "threads": threads, "frames": frames, "size": list(best.size),
            "fps_generated": best.fps_generated, "ms_per_frame": 1000.0 / best.fps_generated, "compiled": best.compiled}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    labels = [f"{r['variant']}\n{r['threads']} thread{'s' if r['threads'] > 1 else ''}" for r in rows]
    ax.barh(labels, [r["fps_generated"] for r in rows], color=["tab:grey" if "full" in r["variant"] else "tab:blue" for r in rows])
    ax.axvline(TARGET_FPS, color="tab:red", ls=":", label=f"{TARGET_FPS:g} frames/s target at 1024x512")
    ax.set_xlabel("frames/s (generation loop, poses cached)")
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.frames, args.worker_threads)))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="edn-bench-") as home:
        env = {**os.environ, "EDN_HOME": home}  # the bench's models and caches stay out of the user's data folder
        for variant in args.variants.split(","):
            for threads in (int(t) for t in args.threads.split(",")):
                command = [sys.executable, __file__, "--worker", variant, "--worker-threads", str(threads), "--frames", str(args.frames)]
                row = run_worker(command, env={**env, "OMP_NUM_THREADS": str(threads)})
                rows.append(row)
                print(f"{variant:38s} {threads} thr: {row['fps_generated']:.1f} frames/s ({row['ms_per_frame']:.0f} ms) "
                      f"at {row['size'][0]}x{row['size'][1]}", flush=True)
    report = {"command": "PYTHONPATH=server .venv/bin/python bench/transfer_speed.py " + " ".join(sys.argv[1:]),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}",
              "target_fps": TARGET_FPS, "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "transfer.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(rows, RESULTS / "transfer.png")
    print(f"wrote {RESULTS / 'transfer.json'} and {RESULTS / 'transfer.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
