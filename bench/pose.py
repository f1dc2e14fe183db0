"""Pose benchmark: frames per second of decode + detect with edn's extract_poses, side by side with a
bare single-threaded PoseLandmarker loop in the same run, plus the per-frame cost of the later pose
stages (smoothing, normalization, label rendering) where those modules exist.

    .venv/bin/python bench/pose.py [--quick] [--frames N] [--repeats N]

Writes bench/results/pose.json and bench/results/pose.png. Numbers only; nothing here asserts a time.
Both loops are timed from the end of their first frame to the end of their last, so model loading
and the first frame's warm-up are left out of the frames/s; whole-call seconds are recorded beside.
Measurements of the two loops alternate, and the best of `--repeats` is kept, because other
processes on a shared machine add noise that only ever slows a run down. Beside frames/s each row
has frames/s of the median frame interval and process CPU ms per frame (all threads), which load
elsewhere moves far less; and a paired A/B on the reference clip gives the median per-pair ratio.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SHARED_DATA = Path(os.environ.get("EDN_SHARED_DATA", ROOT.parent / "shared" / "data"))
SHARED_MODELS = Path(os.environ.get("EDN_SHARED_MODELS", ROOT.parent / "shared" / "models"))
REAL_CLIPS = ("edn_subject4_train.mp4", "mediapipe_pose_segmentation_dance.mp4", "musepose_dance.mp4",
              "tfjs_pose_squats_pexels.mp4", "ubcfashion_91-3003CN5S_target.mp4")
VARIANTS = ("lite", "full", "heavy")


def model_file(variant: str) -> Path:
    """The .task bundle: the shared folder if present, else whatever ensure_pose_model finds."""
    shared = SHARED_MODELS / f"pose_landmarker_{variant}.task"
    if shared.is_file():
        return shared
    from edn_server.pose.models import ensure_pose_model

    return Path(ensure_pose_model(variant))


def _rates(stamps: list[tuple[float, float]]) -> dict:
    """From per-frame (wall, cpu) stamps: overall frames/s, frames/s of the median frame interval
    (robust to other processes pre-empting a few frames), and process CPU ms per frame."""
    wall = np.array([w for w, _ in stamps])
    steps = np.diff(wall)
    return {"fps": len(steps) / (wall[-1] - wall[0]), "fps_median": 1.0 / float(np.median(steps)),
            "cpu_ms": 1000.0 * (stamps[-1][1] - stamps[0][1]) / len(steps)}


def bare_loop(clip: Path, model: Path, frames: int) -> dict:
    """The reference: OpenCV decode and MediaPipe VIDEO-mode detection, one after the other, one thread."""
    import cv2
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    settings = vision.PoseLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(model)),
                                            running_mode=vision.RunningMode.VIDEO)
    started = time.perf_counter()
    capture = cv2.VideoCapture(str(clip))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    found = 0
    stamps: list[tuple[float, float]] = []
    with vision.PoseLandmarker.create_from_options(settings) as landmarker:
        for i in range(frames):
            ok, bgr = capture.read()
            if not ok:
                raise RuntimeError(f"{clip} ended at frame {i}")
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            result = landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb), round(i * 1000 / fps))
            found += bool(result.pose_landmarks)
            stamps.append((time.perf_counter(), time.process_time()))
    capture.release()
    return {**_rates(stamps), "call_s": time.perf_counter() - started, "detection_rate": found / frames}


def ours(clip: Path, model: Path, frames: int, prefetch: int = 4) -> tuple[dict, object]:
    """edn's extract_poses, uncached, timed by its own per-frame progress reports."""
    from edn_server.pose.detect import DetectOptions, extract_poses

    stamps: list[tuple[float, float]] = []
    started = time.perf_counter()
    seq = extract_poses(clip, start=0, end=frames, model_path=model, use_cache=False, options=DetectOptions(prefetch=prefetch),
                        progress=lambda done, total, stage: stamps.append((time.perf_counter(), time.process_time())))
    return {**_rates(stamps), "call_s": time.perf_counter() - started, "detection_rate": float(seq.detected.mean())}, seq


def decode_cost(clip: Path, frames: int) -> float:
    """CPU ms per frame of what extract_poses moves into its decode thread: decoding, BGR->RGB and
    the copy into a MediaPipe image (no detection)."""
    from edn_server import media
    from edn_server.pose.detect import _to_mp_image

    started = time.process_time()
    for _ in media.iter_frames(media.probe(clip), 0, frames, prefetch=0, transform=_to_mp_image):
        pass
    return 1000.0 * (time.process_time() - started) / frames


def measure(clip: Path, variant: str, frames: int, repeats: int, with_no_prefetch: bool) -> tuple[dict, object]:
    from edn_server import media

    info = media.probe(clip)
    frames = min(frames, info.frame_count)
    model = model_file(variant)
    runs: dict[str, list[dict]] = {"bare": [], "ours": [], "ours_no_prefetch": []}
    seq = None
    for _ in range(repeats):  # alternate, so a burst of load elsewhere hits both alike
        runs["bare"].append(bare_loop(clip, model, frames))
        result, seq = ours(clip, model, frames)
        runs["ours"].append(result)
        if with_no_prefetch:
            runs["ours_no_prefetch"].append(ours(clip, model, frames, prefetch=0)[0])

    def best(name: str, key: str) -> float:
        return max(r[key] for r in runs[name]) if key.startswith("fps") else min(r[key] for r in runs[name])

    row = {
        "clip": clip.name if clip.parent == SHARED_DATA else f"sample {clip.name}", "path": str(clip), "variant": variant,
        "frames": frames, "size": list(info.size),
        "bare_fps": round(best("bare", "fps"), 2), "ours_fps": round(best("ours", "fps"), 2),
        "ratio_ours_over_bare": round(best("ours", "fps") / best("bare", "fps"), 3),
        "bare_fps_median_frame": round(best("bare", "fps_median"), 2), "ours_fps_median_frame": round(best("ours", "fps_median"), 2),
        "ratio_median_frame": round(best("ours", "fps_median") / best("bare", "fps_median"), 3),
        # Process CPU time (all threads) per frame: unlike frames/s, barely moved by other processes' load.
        "bare_cpu_ms_per_frame": round(best("bare", "cpu_ms"), 2), "ours_cpu_ms_per_frame": round(best("ours", "cpu_ms"), 2),
        "bare_fps_all": [round(r["fps"], 2) for r in runs["bare"]], "ours_fps_all": [round(r["fps"], 2) for r in runs["ours"]],
        "bare_call_s": round(best("bare", "call_s"), 2), "ours_call_s": round(best("ours", "call_s"), 2),
        "detection_rate": round(runs["ours"][-1]["detection_rate"], 3), "bare_detection_rate": round(runs["bare"][-1]["detection_rate"], 3),
    }
    # On idle cores the decode thread's work leaves the critical path: bare pays detect + decode per
    # frame, ours pays its CPU minus the decode thread's. This projection needs no quiet machine.
    row["decode_cpu_ms_per_frame"] = round(min(decode_cost(clip, frames) for _ in range(2)), 2)
    row["projected_ratio_idle_cores"] = round(
        row["bare_cpu_ms_per_frame"] / max(row["ours_cpu_ms_per_frame"] - row["decode_cpu_ms_per_frame"], 1e-3), 3)
    if runs["ours_no_prefetch"]:
        row["ours_no_prefetch_fps"] = round(best("ours_no_prefetch", "fps"), 2)
        row["ours_no_prefetch_fps_median_frame"] = round(best("ours_no_prefetch", "fps_median"), 2)
    print(f"  {row['clip'][:32]:32s} {variant:5s} {frames:3d}f  fps bare {row['bare_fps']:5.1f} ours {row['ours_fps']:5.1f}"
          f" ({row['ratio_ours_over_bare']:.3f})  median-frame fps {row['bare_fps_median_frame']:5.1f} {row['ours_fps_median_frame']:5.1f}"
          f" ({row['ratio_median_frame']:.3f})  cpu ms {row['bare_cpu_ms_per_frame']:.1f} {row['ours_cpu_ms_per_frame']:.1f}"
          f" decode {row['decode_cpu_ms_per_frame']:.1f} -> projected {row['projected_ratio_idle_cores']:.3f}"
          + (f"  no-prefetch {row['ours_no_prefetch_fps']:.1f}/{row['ours_no_prefetch_fps_median_frame']:.1f}"
             if runs["ours_no_prefetch"] else ""),
          flush=True)
    return row, seq


def paired(clip: Path, variant: str, frames: int, pairs: int) -> dict:
    """Many short back-to-back pairs of bare and ours, order swapped every pair: the median of the
    per-pair ratios cancels the slow swings of load from other processes that whole runs suffer."""
    model = model_file(variant)
    ratios, bare_fps, ours_fps = [], [], []
    for k in range(pairs):
        if k % 2:
            ours_run = ours(clip, model, frames)[0]
            bare_run = bare_loop(clip, model, frames)
        else:
            bare_run = bare_loop(clip, model, frames)
            ours_run = ours(clip, model, frames)[0]
        bare_fps.append(round(bare_run["fps"], 2))
        ours_fps.append(round(ours_run["fps"], 2))
        ratios.append(ours_run["fps"] / bare_run["fps"])
    q1, median, q3 = (round(float(v), 3) for v in np.percentile(ratios, [25, 50, 75]))
    print(f"  paired {clip.name} {variant} x{pairs}: ratio median {median} (quartiles {q1}..{q3})", flush=True)
    return {"clip": clip.name, "variant": variant, "frames": frames, "pairs": pairs, "ratio_median": median,
            "ratio_quartiles": [q1, q3], "ratios": [round(r, 3) for r in ratios], "bare_fps": bare_fps, "ours_fps": ours_fps}


def sample_clips() -> tuple[list[Path], str]:
    """The project's rendered sample clips (default seed, full size, else the quick ones) when they are
    already in the cache; rendering them is not what this benchmark measures."""
    try:
        from edn_server.demo.samples import samples_cache_dir, source_spec, target_spec
    except ImportError as exc:
        return [], f"edn_server.demo.samples not available ({exc})"
    for quick in (False, True):
        specs = (target_spec(0, quick), source_spec(0, quick))
        clips = [samples_cache_dir() / spec.cache_key() / f"{spec.role}.mp4" for spec in specs]
        if all(c.is_file() for c in clips):
            return clips, ""
    return [], f"sample clips are not in {samples_cache_dir()} yet; run `edn samples` first"


def _per_frame_ms(fn, frames: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return round(1000.0 * best / frames, 4)


def post_stage_costs(target, source) -> dict:
    """ms per frame of the stages after detection, on real extracted poses; 'not available' until written."""
    costs: dict[str, object] = {"frames_target": len(target), "frames_source": len(source)}
    try:
        from edn_server.pose.smooth import smooth_poses

        costs["smooth_ms_per_frame"] = _per_frame_ms(lambda: smooth_poses(source, 1.0), len(source))
    except ImportError as exc:
        costs["smooth_ms_per_frame"] = f"not available ({exc})"
    try:
        from edn_server.pose.normalize import NormalizeOptions, PoseStats, normalize_poses

        costs["normalize_ms_per_frame"] = _per_frame_ms(
            lambda: normalize_poses(source, PoseStats.from_poses(target), NormalizeOptions()), len(source))
    except ImportError as exc:
        costs["normalize_ms_per_frame"] = f"not available ({exc})"
    try:
        from edn_server.pose.render import render_label

        frames = min(len(source), 60)
        costs["render_label_ms_per_frame"] = _per_frame_ms(
            lambda: [render_label(source.keypoints[i], target.size) for i in range(frames)], frames)
        costs["render_label_size"] = list(target.size)
    except ImportError as exc:
        costs["render_label_ms_per_frame"] = f"not available ({exc})"
    return costs


def machine_info() -> dict:
    import cv2
    import mediapipe

    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "python": platform.python_version(), "mediapipe": mediapipe.__version__, "opencv": cv2.__version__,
            "numpy": np.__version__, "niceness": os.nice(0)}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [v for v in VARIANTS if any(r["variant"] == v for r in rows)]
    fig, axes = plt.subplots(1, len(variants), figsize=(5 * len(variants), 4.5), squeeze=False)
    for ax, variant in zip(axes[0], variants, strict=True):
        sub = [r for r in rows if r["variant"] == variant]
        x = np.arange(len(sub))
        ax.bar(x - 0.2, [r["bare_fps"] for r in sub], 0.4, label="bare loop (1 thread)")
        ax.bar(x + 0.2, [r["ours_fps"] for r in sub], 0.4, label="edn extract_poses")
        for xi, r in zip(x, sub, strict=True):
            ax.text(xi + 0.2, r["ours_fps"], f"{r['ratio_ours_over_bare']:.2f}x", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, [r["clip"].split(".")[0][:18] + f"\n{r['size'][0]}x{r['size'][1]}" for r in sub], fontsize=7, rotation=30)
        ax.set_title(f"{variant} model")
        ax.set_ylabel("frames / s (decode + detect)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("PoseLandmarker VIDEO mode: edn vs bare loop (labels: ours / bare)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two real clips (+ samples), lite and full, 40 frames, one repeat")
    parser.add_argument("--frames", type=int, default=None, help="frames per clip (default 60; 40 with --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="alternating repeats, best kept (default 3; 1 with --quick)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    frames = args.frames or (40 if args.quick else 60)
    repeats = args.repeats or (1 if args.quick else 3)
    variants = VARIANTS[:2] if args.quick else VARIANTS
    os.environ.setdefault("EDN_HOME", tempfile.mkdtemp(prefix="edn-bench-"))  # keep the user's pose cache clean

    clips = [SHARED_DATA / name for name in (REAL_CLIPS[:2] if args.quick else REAL_CLIPS) if (SHARED_DATA / name).is_file()]
    samples, samples_note = sample_clips()
    clips += samples
    if not clips:
        print(f"no clips: {SHARED_DATA} holds none of {', '.join(REAL_CLIPS)}, and {samples_note}", file=sys.stderr)
        return 1
    print(f"{len(clips)} clips, variants {', '.join(variants)}, {frames} frames, {repeats} repeat(s); load {os.getloadavg()}", flush=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    rows, sequences = [], {}
    for variant in variants:
        for clip in clips:
            row, seq = measure(clip, variant, frames, repeats, with_no_prefetch=not args.quick and clip == clips[0])
            rows.append(row)
            sequences[(clip.name, variant)] = seq

    reference = SHARED_DATA / REAL_CLIPS[0]
    ab = [paired(reference, variant, 40, 4 if args.quick else 8) for variant in ("lite", "full")] if reference.is_file() else []

    target_seq = sequences.get((REAL_CLIPS[0], "full"))
    source_seq = sequences.get((REAL_CLIPS[1], "full"))
    post = post_stage_costs(target_seq, source_seq) if target_seq is not None and source_seq is not None else {
        "note": "needs the subject4 and dancer clips"}
    def geomean(values: list[float]) -> float:
        return round(float(np.exp(np.mean(np.log(values)))), 3)

    ratios = [r["ratio_ours_over_bare"] for r in rows]
    summary = {
        "geomean_ratio_ours_over_bare": geomean(ratios), "min_ratio": min(ratios), "max_ratio": max(ratios),
        "geomean_ratio_median_frame": geomean([r["ratio_median_frame"] for r in rows]),
        "paired_ratio_median": {f"{a['clip']} {a['variant']}": a["ratio_median"] for a in ab},
        "geomean_projected_ratio_idle_cores": geomean([r["projected_ratio_idle_cores"] for r in rows]),
        "geomean_cpu_ratio_ours_over_bare": geomean([r["ours_cpu_ms_per_frame"] / r["bare_cpu_ms_per_frame"] for r in rows]),
        "by_variant_fps": {v: {"bare": round(float(np.mean([r["bare_fps"] for r in rows if r["variant"] == v])), 2),
                               "ours": round(float(np.mean([r["ours_fps"] for r in rows if r["variant"] == v])), 2)} for v in variants},
        "target": "ours within 5% of bare (ratio >= 0.95), above 1 where decoding overlaps detection",
    }
    report = {
        "command": " ".join([".venv/bin/python", "bench/pose.py", *(argv if argv is not None else sys.argv[1:])]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "settings": {"frames": frames, "repeats": repeats, "variants": list(variants), "timing": "steady state, frame 1 to last"},
        "samples": samples_note or [str(p) for p in samples],
        "clips": rows, "paired": ab, "post_stages": post, "summary": summary,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pose.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(rows, args.out / "pose.png")
    print(json.dumps({"summary": summary, "post_stages": post}, indent=2))
    print(f"wrote {args.out / 'pose.json'} and {args.out / 'pose.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
