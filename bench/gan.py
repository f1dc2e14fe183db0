"""GAN benchmark: per preset, training seconds per step and inference milliseconds per frame, the
generator's GFLOP per frame and the GFLOP/s it reaches as a fraction of a large fp32 matrix
multiply measured in the same run, edn's inference path against plain eager fp32 of the same
network (speed ratio, max abs difference of the outputs) and through torch.compile (compile time,
speed, difference), peak memory, and end-to-end transfer frames/s of the preview preset at 256x128
on a real clip, eager and compiled.

    .venv/bin/python bench/gan.py [--quick] [--device cpu|cuda] [--threads N]

Writes bench/results/gan.json and gan.png (with --device cuda: gan_cuda.json / gan_cuda.png).
Numbers only; nothing here asserts a time. Every preset runs in its own process, so its peak
memory (max RSS on the CPU, torch's max allocated on CUDA) is its own. Timings alternate between
the variants compared and keep the best of several repeats: other processes on a shared machine
only ever slow a run down. Networks are untrained (speed does not depend on the weights); the
training step is train.py's own BodyStep / FaceStep on random batches at the preset's sizes
(bench/gan_training.py, which also compares ways to make the step cheaper).
The VGG perceptual loss is included only where its weights are already on disk (never downloaded here).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from gan_training import TARGET_SIZE, _sync, best_seconds, training  # noqa: F401  (bench/gan_training.py; gpu_check uses them)
from worker_process import run_worker  # bench/worker_process.py

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SHARED_DATA = Path(os.environ.get("EDN_SHARED_DATA", ROOT.parent / "shared" / "data"))
SHARED_MODELS = Path(os.environ.get("EDN_SHARED_MODELS", ROOT.parent / "shared" / "models"))
SOURCE_CLIP = "mediapipe_pose_segmentation_dance.mp4"
TARGET_CLIP = "edn_subject4_train.mp4"
TARGET_FPS = 8.0
# Generator shapes tried at 256x128 when the preview preset misses TARGET_FPS.
PREVIEW_ALTERNATIVES = ((16, 3, 4), (16, 3, 2), (12, 3, 4), (12, 3, 2), (8, 3, 4), (8, 3, 2), (16, 4, 4), (16, 4, 2))


def matmul_gflops(device, quick: bool) -> dict:
    import torch

    n = 8192 if device.type == "cuda" else (1536 if quick else 2048)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 reference, as the CPU's
    seconds = best_seconds({"mm": lambda: a @ b}, 3 if quick else 5, device)["mm"]
    return {"n": n, "gflops_per_s": 2 * n**3 / seconds / 1e9}


def inference(preset: str, device, repeats: int) -> dict:
    """Generator (and face generator) ms/frame: edn's path vs plain eager fp32, plus GFLOP."""
    import torch
    from edn_server.gan.compiled import CompiledOrEager
    from edn_server.gan.networks import define_face_generator, define_generator, generator_gflops
    from edn_server.gan.sequence_generator import memory_format, precision
    from edn_server.gan.train_config import preset_config

    config = preset_config(preset, TARGET_SIZE)
    width, height = config.output_size
    torch.manual_seed(0)
    layout = memory_format(device)  # what SequenceGenerator uses: channels_last on CUDA only
    eager = define_generator(config.generator).to(device).eval()
    ours = copy.deepcopy(eager).to(memory_format=layout)
    label = torch.rand(1, 3, height, width, device=device) * 2 - 1
    previous = torch.rand(1, 3, height, width, device=device) * 2 - 1
    label_cl, previous_cl = (t.contiguous(memory_format=layout) for t in (label, previous))
    # channels_last measured against the same path, to keep the CPU choice honest
    ours_nhwc = copy.deepcopy(eager).to(memory_format=torch.channels_last)
    label_nhwc, previous_nhwc = (t.contiguous(memory_format=torch.channels_last) for t in (label, previous))

    def run_ours():
        with torch.inference_mode(), precision(device):
            return ours(label_cl, previous_cl)

    def run_eager():
        with torch.no_grad():
            return eager(label, previous)

    def run_nhwc():
        with torch.inference_mode(), precision(device):
            return ours_nhwc(label_nhwc, previous_nhwc)

    compiled = CompiledOrEager(copy.deepcopy(eager).to(memory_format=layout))

    def run_compiled():
        with torch.inference_mode(), precision(device):
            return compiled(label_cl, previous_cl)

    started = time.perf_counter()
    run_compiled()  # the one-off compile (inductor's on-disk cache makes a rerun's cheaper)
    _sync(device)
    compile_s = time.perf_counter() - started
    times = best_seconds({"ours": run_ours, "eager": run_eager, "channels_last": run_nhwc, "compiled": run_compiled},
                         repeats, device)
    difference = float((run_ours().float() - run_eager()).abs().max())
    compiled_difference = float((run_compiled().float() - run_eager()).abs().max())
    gflop = generator_gflops(eager, (1, config.generator.label_channels, height, width))
    side = config.face_side  # the crop the trained face stage refines
    face = define_face_generator(config.face_generator).to(device).eval().to(memory_format=layout)
    crop = torch.rand(1, 3, side, side, device=device).contiguous(memory_format=layout) * 2 - 1

    def run_face():
        with torch.inference_mode(), precision(device):
            return face(crop, crop)

    face_s = best_seconds({"face": run_face}, repeats, device)["face"]
    return {
        "resolution": [width, height], "generator": config.generator.to_dict(),
        "gflop_per_frame": gflop, "ours_ms": 1000 * times["ours"], "eager_fp32_ms": 1000 * times["eager"],
        "speedup_vs_eager": times["eager"] / times["ours"], "max_abs_difference": difference,
        "memory_format": "channels_last" if layout == torch.channels_last else "contiguous",
        "channels_last_ms": 1000 * times["channels_last"],
        "gflops_per_s": gflop / times["ours"], "face_side": side, "face_ms": 1000 * face_s,
        "face_gflop": generator_gflops(face.net, (1, 3, side, side)),
        "compiled": {"ok": not compiled.fell_back, "compile_s": compile_s, "ms": 1000 * times["compiled"],
                     "speedup_vs_ours": times["ours"] / times["compiled"], "max_abs_difference": compiled_difference,
                     "gflops_per_s": gflop / times["compiled"]},
    }


def transfer_speed(frames: int, device) -> dict:
    """End-to-end transfer of the preview preset (256x128) on a real clip, poses cached."""
    import torch
    from edn_server.config import data_dir
    from edn_server.gan.infer import transfer
    from edn_server.gan.model_io import save_trained_model
    from edn_server.gan.networks import define_face_generator, define_generator
    from edn_server.gan.train_config import preset_config
    from edn_server.pose.detect import extract_poses
    from edn_server.pose.models import ensure_pose_model
    from edn_server.pose.normalize import PoseStats
    from edn_server.registry import models_dir

    clip, target = SHARED_DATA / SOURCE_CLIP, SHARED_DATA / TARGET_CLIP
    if not (clip.is_file() and target.is_file()):
        return {"skipped": f"{clip.name} or {target.name} not found in {SHARED_DATA}"}
    ensure_pose_model("full", from_dir=SHARED_MODELS if SHARED_MODELS.is_dir() else None)
    config = preset_config("preview", TARGET_SIZE)
    stats = PoseStats.from_poses(extract_poses(target, end=30), name=TARGET_CLIP)
    torch.manual_seed(0)
    save_trained_model(models_dir(data_dir()) / "bench-preview", config, stats, define_generator(config.generator),
                       define_face_generator(config.face_generator), {"steps": 0})
    started = time.perf_counter()
    extract_poses(clip, end=frames)
    detect_s = time.perf_counter() - started
    best = {}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(2):
            for mode in ("off", "on"):  # eager, and compiled (the compile happens before the timed loop)
                result = transfer(clip, "bench-preview", out, end=frames, device=device, compile=mode)
                if mode not in best or result.fps_generated > best[mode].fps_generated:
                    best[mode] = result
    eager, compiled = best["off"], best["on"]
    return {"frames": frames, "resolution": list(config.output_size), "fps_generated": eager.fps_generated,
            "seconds_with_cached_poses": eager.seconds, "pose_detection_fps": frames / detect_s, "target_fps": TARGET_FPS,
            "meets_target": eager.fps_generated >= TARGET_FPS, "fps_generated_compiled": compiled.fps_generated,
            "compiled": compiled.compiled}


def preview_alternatives(device, repeats: int) -> list[dict]:
    """Generator ms/frame at 256x128 for a few narrower or shallower shapes (edn's inference path)."""
    import torch
    from edn_server.gan.configs import GeneratorConfig
    from edn_server.gan.networks import define_generator, generator_gflops
    from edn_server.gan.sequence_generator import memory_format, precision

    layout = memory_format(device)
    label = (torch.rand(1, 3, 128, 256, device=device) * 2 - 1).contiguous(memory_format=layout)
    rows = []
    for ngf, n_down, blocks in PREVIEW_ALTERNATIVES:
        config = GeneratorConfig(ngf=ngf, n_downsample=n_down, n_blocks=blocks)
        net = define_generator(config).to(device).eval().to(memory_format=layout)

        def run(net=net):
            with torch.inference_mode(), precision(device):
                return net(label, label)

        ms = 1000 * best_seconds({"g": run}, repeats, device)["g"]
        rows.append({"ngf": ngf, "n_downsample": n_down, "n_blocks": blocks, "ms": ms,
                     "gflop": generator_gflops(net, (1, 3, 128, 256))})
    return rows


def worker(args) -> dict:
    """One preset's measurements, in this (fresh) process."""
    import torch

    if int(args.threads):
        torch.set_num_threads(int(args.threads))
    device = torch.device(args.device)
    home = tempfile.mkdtemp(prefix="edn-bench-")
    os.environ["EDN_HOME"] = home  # the bench's model and pose cache never land in the user's data folder
    try:
        return _measure(args, device)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _measure(args, device) -> dict:
    import torch

    quick = args.quick
    result = {"preset": args.worker, "threads": torch.get_num_threads()}
    result["matmul"] = matmul_gflops(device, quick)
    heavy = args.worker == "paper" and device.type == "cpu"
    result["inference"] = inference(args.worker, device, repeats=2 if heavy else (3 if quick else 6))
    result["inference"]["fraction_of_matmul"] = result["inference"]["gflops_per_s"] / result["matmul"]["gflops_per_s"]
    compiled = result["inference"]["compiled"]
    compiled["fraction_of_matmul"] = compiled["gflops_per_s"] / result["matmul"]["gflops_per_s"]
    result["training"] = training(args.worker, device, steps=3 if heavy else (3 if quick else 6))
    if args.worker == "preview":
        result["transfer"] = transfer_speed(24 if quick else 60, device)
        result["transfer"]["generator_ms"] = result["inference"]["ours_ms"]
        if not result["transfer"].get("meets_target", True):
            alternatives = preview_alternatives(device, 3 if quick else 5)
            # everything but the body generator (labels, face, PNG and video writing) stays as measured
            overhead_ms = 1000.0 / result["transfer"]["fps_generated"] - result["inference"]["ours_ms"]
            for row in alternatives:
                row["estimated_fps"] = 1000.0 / (row["ms"] + max(overhead_ms, 0.0))
            result["preview_alternatives"] = alternatives
            fast = [r for r in alternatives if r["estimated_fps"] >= TARGET_FPS]
            result["transfer"]["fastest_shape_meeting_target"] = max(fast, key=lambda r: r["gflop"]) if fast else None
    if device.type == "cuda":
        result["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        result["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def machine_info(device: str) -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "device": device}
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f"{r['preset']}\n{r['threads']} thr" for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    x = range(len(rows))
    axes[0].bar([i - 0.27 for i in x], [r["inference"]["ours_ms"] for r in rows], 0.27, label="edn path")
    axes[0].bar(list(x), [r["inference"]["eager_fp32_ms"] for r in rows], 0.27, label="eager fp32")
    axes[0].bar([i + 0.27 for i in x], [r["inference"]["compiled"]["ms"] for r in rows], 0.27, label="torch.compile")
    axes[0].set(title="generator ms / frame", yscale="log", xticks=list(x), xticklabels=names)
    axes[0].legend()
    for offset, (key, label) in zip((-0.27, 0.0, 0.27), (("body_s_per_step", "body"), ("local_s_per_step", "local"),
                                                           ("face_s_per_step", "face")), strict=True):
        values = [r["training"].get(key) or 0.0 for r in rows]
        axes[1].bar([i + offset for i in x], values, 0.27, label=label)
    axes[1].set(title="training s / step", yscale="log", xticks=list(x), xticklabels=names)
    axes[1].legend()
    axes[2].bar([i - 0.2 for i in x], [100 * r["inference"]["fraction_of_matmul"] for r in rows], 0.4, label="eager")
    axes[2].bar([i + 0.2 for i in x], [100 * r["inference"]["compiled"]["fraction_of_matmul"] for r in rows], 0.4,
                label="torch.compile")
    axes[2].legend()
    axes[2].axhline(85, color="grey", linestyle="--", linewidth=1)
    axes[2].set(title="generator GFLOP/s, % of fp32 matmul", xticks=list(x), xticklabels=names, ylim=(0, 110))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny and preview presets only, fewer repeats")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", default="0",
                        help="torch CPU threads, comma-separated to compare (e.g. 1,2; 0 = torch's choice). "
                             "The paper preset on the CPU runs only at the first")
    parser.add_argument("--presets", default=None, help="comma-separated presets (default: tiny,preview[,paper])")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    presets = args.presets.split(",") if args.presets else (["tiny", "preview"] if args.quick else ["tiny", "preview", "paper"])
    thread_counts = [int(t) for t in args.threads.split(",")]
    rows = []
    for preset in presets:
        for threads in thread_counts[:1] if (preset == "paper" and args.device == "cpu") else thread_counts:
            command = [sys.executable, __file__, "--worker", preset, "--device", args.device, "--threads", str(threads)]
            if args.quick:
                command.append("--quick")
            row = run_worker(command)
            rows.append(row)
            print(f"{preset} ({row['threads']} threads): {json.dumps(row)}", flush=True)
    suffix = "" if args.device == "cpu" else f"_{args.device}"
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine_info(args.device), "quick": args.quick, "presets": rows}
    (args.out / f"gan{suffix}.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(rows, args.out / f"gan{suffix}.png")
    for row in rows:
        inf, tr = row["inference"], row["training"]
        steps = ", ".join(f"{k.removesuffix('_s_per_step')} {v:.3g}" for k, v in tr.items() if k.endswith("_s_per_step"))
        line = (f"{row['preset']:8s} {row['threads']} thr: generator {inf['ours_ms']:.1f} ms (eager fp32 {inf['eager_fp32_ms']:.1f}, "
                f"channels_last {inf['channels_last_ms']:.1f}, compiled {inf['compiled']['ms']:.1f} after "
                f"{inf['compiled']['compile_s']:.0f} s), "
                f"{inf['gflop_per_frame']:.2f} GFLOP, {100 * inf['fraction_of_matmul']:.0f}% of matmul; train s/step: {steps}; "
                f"peak {row['peak_memory_mb']:.0f} MB")
        if "transfer" in row and "fps_generated" in row["transfer"]:
            line += f"; transfer {row['transfer']['fps_generated']:.1f} frames/s"
        print(line)
    print(f"wrote {args.out / f'gan{suffix}.json'} and {args.out / f'gan{suffix}.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
