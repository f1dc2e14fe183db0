"""The `edn` commands: each a thin wrapper over a library function the server also calls."""
from __future__ import annotations

import os


def _normalization(args):
    from ..pose.normalize import NormalizeOptions

    return NormalizeOptions(auto=not args.no_normalize, scale=args.scale, offset_x=args.offset_x, offset_y=args.offset_y,
                            mirror=args.mirror)


def cmd_models_ensure(args) -> int:
    from ..pose.models import ensure_pose_model

    path = ensure_pose_model(args.variant, path=args.path, from_dir=args.from_dir,
                             allow_download=not args.no_download, allow_build=not args.no_build)
    print(path)
    return 0


def cmd_samples(args) -> int:
    from ..demo.samples import render_samples
    from ..progress import TqdmProgress

    bar = TqdmProgress()
    try:
        paths = render_samples(out_dir=args.out, seed=args.seed, quick=args.quick, progress=bar)
    finally:
        bar.close()
    print(f"target: {paths.target}\nsource: {paths.source}")
    return 0


def cmd_extract(args) -> int:
    from ..pose.detect import DetectOptions, describe_gaps
    from ..pose.pipeline import pose_sequence
    from ..progress import TqdmProgress

    bar = TqdmProgress()
    try:
        seq = pose_sequence(args.video, args.start, args.end, smoothing=0.0, fps=args.fps, model=args.model,
                            model_path=args.model_path, detect=DetectOptions(num_poses=args.num_poses),
                            use_cache=not args.no_cache, progress=bar)
    finally:
        bar.close()
    seq.save(args.output)
    print(describe_gaps(seq))
    print(f"wrote {args.output}")
    return 0


def cmd_smooth(args) -> int:
    from ..pose.pipeline import refine_poses
    from ..pose.sequence import PoseSequence

    refine_poses(PoseSequence.load(args.poses), smoothing=args.strength).save(args.output)
    print(f"wrote {args.output}")
    return 0


def cmd_normalize(args) -> int:
    from ..pose.normalize import PoseStats
    from ..pose.pipeline import refine_poses
    from ..pose.sequence import PoseSequence

    source = PoseSequence.load(args.source)
    target_stats = PoseStats.from_poses(PoseSequence.load(args.target), name=str(args.target))
    refine_poses(source, smoothing=0.0, target=target_stats, normalization=_normalization(args)).save(args.output)
    print(f"wrote {args.output}")
    return 0


def cmd_render(args) -> int:
    from ..pose.render import render_sequence
    from ..pose.sequence import PoseSequence
    from ..progress import TqdmProgress

    bar = TqdmProgress()
    try:
        render_sequence(PoseSequence.load(args.poses), args.output, size=args.size, progress=bar)
    finally:
        bar.close()
    print(f"wrote {args.output}")
    return 0


def cmd_train(args) -> int:
    import time

    from .. import registry
    from ..config import data_dir
    from ..gan.train import train
    from ..names import HELDOUT_SAMPLE_FILE, SECONDS, TRAIN_STAGE
    from ..progress import TqdmProgress

    main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 reports
    heldout = registry.models_dir(data_dir()) / args.name / HELDOUT_SAMPLE_FILE
    if main_rank:
        print(f"held-out sample (real | label | generated on frames not trained on, refreshed every few minutes): {heldout}",
              flush=True)
    # A time budget is reported in seconds of it, a step budget in steps.
    bar = TqdmProgress(disable=not main_rank, units={TRAIN_STAGE: SECONDS} if args.minutes is not None else None)
    began = time.monotonic()
    try:
        model = train(args.target_video, args.name, preset=args.preset, steps=args.steps, minutes=args.minutes,
                      resume=args.resume, start=args.start, end=args.end, progress=bar, device=args.device,
                      config_overrides={"layer": args.layer})
    finally:
        bar.close()
    if main_rank:
        w, h = model.resolution
        print(f"trained {model.name!r} ({args.preset}, {w}x{h}, {model.info.get('steps')} steps) in "
              f"{time.monotonic() - began:.0f} s; model in {model.folder}")
        print(f"mode: {model.mode}: {(model.info.get('layer') or {}).get('reason', '')}")
        print(_face_line(model.face))
        if heldout.is_file():
            print(f"held-out sample: {heldout}")
    return 0


def _face_line(face: dict) -> str:
    return f"face stage: {'used' if face['used'] else 'not used'}: {face['reason']}"


def cmd_serve(args) -> int:
    from ..service.serve import ServeOptions, run_server

    return run_server(ServeOptions(host=args.host, port=args.port, data_dir=args.data_dir, allow_hosts=tuple(args.allow_host),
                                   max_upload_bytes=args.max_upload, max_body_bytes=args.max_body,
                                   light_workers=args.light_workers, log_level=args.log_level, roots=tuple(args.root)))


def cmd_transfer(args) -> int:
    from ..gan.infer import transfer
    from ..progress import TqdmProgress

    bar = TqdmProgress()
    try:
        result = transfer(args.source_video, args.model, args.output, normalization=_normalization(args),
                          smoothing=args.smoothing, face=not args.no_face, start=args.start, end=args.end,
                          progress=bar, write_video=not args.no_video, device=args.device, compile=args.compile,
                          output=args.kind, output_height=args.output_height)
    finally:
        bar.close()
    print(f"wrote {result.frames} frames to {result.out_dir} at {result.fps_generated:.1f} frames/s"
          f"{' (compiled)' if result.compiled else ''} "
          f"({result.seconds:.1f} s in all, pose extraction included)")
    return 0


def cmd_eval(args) -> int:
    from ..gan.evaluate import evaluate, parse_size
    from ..progress import TqdmProgress

    size = parse_size(args.size) if args.size else None
    bar = TqdmProgress()
    try:
        metrics = evaluate(args.model, args.video, args.output, start=args.start, end=args.end, baseline=args.baseline,
                           progress=bar, device=args.device, size=size)
    finally:
        bar.close()
    rows = [("model", metrics), ("median baseline", metrics.get("baseline")), ("nearest training frame", metrics.get("nearest_baseline"))]
    print("scored at {}x{}".format(*metrics["score_size"]))
    print(_face_line(metrics["face"]))
    for label, values in rows:
        if values and values.get("unavailable_reason"):
            print(f"{label}: unavailable, {values['unavailable_reason']}")
        elif values:
            shown = ", ".join(f"{k} {values[k]:.4g}" if isinstance(values[k], float) else f"{k} {values[k]}"
                              for k in ("body_ssim", "person_ssim", "body_psnr", "face_ssim", "pose_distance", "missed_detections"))
            print(f"{label}: {shown}")
    print(f"wrote {args.output}")
    return 0


def cmd_report(args) -> int:
    from ..model_report import build_report

    print(f"wrote {build_report(args.model, args.output, metrics=args.metrics)}")
    return 0
