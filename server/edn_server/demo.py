"""`make demo`: the main job on the embedded samples (or the user's own clips).

Until the GAN lands this runs the pose stages: extract → smooth → normalize the source dancer to the
target → label images, and writes a side-by-side video and a contact sheet so a person can judge them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .errors import EdnError
from .progress import TqdmProgress

PANEL_HEIGHT = 384


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    width = max(2, int(round(w * height / h)) // 2 * 2)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)


def overlay_keypoints(frame: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The stick figure drawn over a dimmed copy of the frame, to check detections by eye."""
    from .pose.render import render_label

    label = render_label(keypoints, (frame.shape[1], frame.shape[0]))
    drawn = label.any(axis=-1, keepdims=True)
    return np.where(drawn, label, (frame * 0.55).astype(np.uint8))


def side_by_side_rows(source_path: Path, source, normalized, start: int = 0):
    """Yield (frame | keypoints | normalized label) images, one per source frame."""
    from .media import iter_frames, probe
    from .pose.render import render_label

    info = probe(source_path)
    for index, frame in enumerate(iter_frames(info, start, start + len(source))):
        panels = [
            frame,
            overlay_keypoints(frame, source.keypoints[index]) if source.usable[index] else (frame * 0.55).astype(np.uint8),
            render_label(normalized.keypoints[index], normalized.size) if normalized.usable[index]
            else np.zeros((normalized.size[1], normalized.size[0], 3), np.uint8),
        ]
        yield np.concatenate([_fit_height(p, PANEL_HEIGHT) for p in panels], axis=1)


def write_side_by_side(rows, out_path: Path, fps: float, total: int, sheet_path: Path, sheet_rows: int = 6) -> None:
    """Stream the rows into an mp4 and keep a few evenly spaced ones for the contact sheet."""
    import cv2

    from .atomic import atomic_file
    from .media import VideoWriter

    picks = set(np.linspace(0, total - 1, sheet_rows).round().astype(int).tolist())
    kept = []
    bar = TqdmProgress()
    writer = None
    try:
        for index, row in enumerate(rows):
            if writer is None:
                writer = VideoWriter(out_path, fps, (row.shape[1], row.shape[0]))
            writer.write(row)
            if index in picks:
                kept.append(_fit_height(row, PANEL_HEIGHT // 2))
            bar(index + 1, total, "side-by-side video")
        writer.close()
        writer = None
    finally:
        bar.close()
        if writer is not None:
            writer.close(keep=False)
    sheet = np.concatenate(kept, axis=0)
    with atomic_file(sheet_path, suffix=".png") as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def run(out: Path, source: Path | None, target: Path | None, model: str, max_frames: int | None, quick: bool) -> None:
    from .pose.detect import describe_gaps, extract_poses
    from .pose.models import ensure_pose_model
    from .pose.normalize import NormalizeOptions, PoseStats, normalize_poses
    from .pose.smooth import smooth_poses

    out.mkdir(parents=True, exist_ok=True)
    ensure_pose_model(model)
    if source is None or target is None:
        from .samples import render_samples

        print("Rendering the embedded sample dancers (once; cached for later runs)…", flush=True)
        samples = render_samples(quick=quick, progress=TqdmProgress())
        source = source or samples.source
        target = target or samples.target
    print(f"target: {target}\nsource: {source}", flush=True)

    poses = {}
    for role, path in (("target", target), ("source", source)):
        bar = TqdmProgress()
        try:
            raw = extract_poses(path, model=model, end=None, progress=bar)
        finally:
            bar.close()
        print(f"{role}: {describe_gaps(raw)}", flush=True)
        poses[role] = smooth_poses(raw)
        poses[role].save(out / f"{role}_poses.npz")

    source_poses = poses["source"]
    if max_frames is not None and len(source_poses) > max_frames:
        source_poses = source_poses.replace(
            keypoints=source_poses.keypoints[:max_frames], detected=source_poses.detected[:max_frames],
            interpolated=source_poses.interpolated[:max_frames],
        )
    target_stats = PoseStats.from_poses(poses["target"], name=target.name)
    normalized = normalize_poses(source_poses, target_stats, NormalizeOptions())
    normalized.save(out / "source_normalized.npz")

    rows = side_by_side_rows(source, source_poses, normalized)
    write_side_by_side(rows, out / "side_by_side.mp4", source_poses.fps, len(source_poses), out / "contact_sheet.png")
    print(f"wrote {out / 'side_by_side.mp4'} and {out / 'contact_sheet.png'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edn-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--source", type=Path, help="your source dancer clip (default: the embedded sample)")
    parser.add_argument("--target", type=Path, help="your target subject clip (default: the embedded sample)")
    parser.add_argument("--model", choices=("lite", "full", "heavy"), default="full")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many source frames")
    parser.add_argument("--quick", action="store_true", help="short, small samples (for tests)")
    args = parser.parse_args(argv)
    try:
        run(args.out, args.source, args.target, args.model, args.max_frames, args.quick)
    except EdnError as exc:
        print(f"edn demo: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
