"""The `edn` command line's arguments: every command, option and value check (a bad value is a coded error)."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..errors import BAD_PARAMS
from . import commands as c


class _Parser(argparse.ArgumentParser):
    """Usage mistakes read like every other failure: `edn: error: BAD_PARAMS: ...`, exit status 2."""

    def error(self, message: str):
        self.exit(2, f"edn: error: {BAD_PARAMS}: {message} (see `{self.prog} --help`).\n")


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port; use 0 (any free one) to 65535")
    return int(text)


def _frame_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; write WIDTHxHEIGHT, e.g. 512x256")
    return int(width), int(height)


def _range_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", type=int, default=0, help="first frame, 0-based, inclusive (default 0)")
    parser.add_argument("--end", type=int, default=None, help="last frame, exclusive (default: end of clip)")


def _normalize_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-normalize", action="store_true",
                        help="skip the automatic mapping to the target's size and floor; only fit the frame and apply the overrides")
    parser.add_argument("--no-auto", dest="no_normalize", action="store_true", help=argparse.SUPPRESS)  # the old spelling
    parser.add_argument("--scale", type=_finite, default=1.0, help="multiply the automatic scale (default 1.0)")
    parser.add_argument("--offset-x", type=_finite, default=0.0, help="shift right, in target pixels (default 0)")
    parser.add_argument("--offset-y", type=_finite, default=0.0, help="shift down, in target pixels (default 0)")
    parser.add_argument("--mirror", action="store_true", help="mirror the motion left-right (swaps left and right limbs)")


def _size(text: str) -> int:
    """Bytes from '4G', '512M', '64K' or a plain number (binary units)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    factor = units.get(text[-1:], 1)
    try:
        return int(float(text[:-1] if factor > 1 else text) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; use e.g. 4G, 512M or 1048576") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edn", description="Everybody Dance Now motion transfer: poses, training, transfer.")
    parser.add_argument("--verbose", action="store_true", help="show MediaPipe's native logging (hidden by default)")
    commands = parser.add_subparsers(dest="command", required=True)


    samples = commands.add_parser("samples", help="render the embedded sample target and source clips (cached)")
    samples.add_argument("-o", "--out", type=Path, default=None, help="copy the clips here (default: print cache paths)")
    samples.add_argument("--seed", type=int, default=0)
    samples.add_argument("--quick", action="store_true", help="short, small clips (for tests)")
    samples.set_defaults(func=c.cmd_samples)

    pose = commands.add_parser("pose", help="pose pipeline stages").add_subparsers(dest="pose_command", required=True)
    ensure = pose.add_parser("model", help="find, download or build a PoseLandmarker bundle and print its path")
    ensure.add_argument("--variant", choices=("lite", "full", "heavy"), default="full")
    ensure.add_argument("--path", type=Path, help="use this .task file")
    ensure.add_argument("--from-dir", type=Path, help="copy the bundle from this folder into the user cache")
    ensure.add_argument("--no-download", action="store_true", help="never reach the network")
    ensure.add_argument("--no-build", action="store_true", help="never build from registry packages")
    ensure.set_defaults(func=c.cmd_models_ensure)

    extract = pose.add_parser("extract", help="detect keypoints in a movie or a folder of images")
    extract.add_argument("video", type=Path)
    extract.add_argument("-o", "--output", type=Path, required=True)
    extract.add_argument("--model", choices=("lite", "full", "heavy"), default="full")
    extract.add_argument("--no-cache", action="store_true", help="detect again even if cached")
    extract.add_argument("--model-path", type=Path, default=None, help="use this PoseLandmarker .task file instead of --model")
    extract.add_argument("--fps", type=_finite, default=None, help="frame rate (default: the movie's; 30 for an image folder)")
    extract.add_argument("--num-poses", type=int, default=1,
                         help="people detected per frame; >1 keeps the right person in crowded clips but is ~1.6x slower (default 1)")
    _range_args(extract)
    extract.set_defaults(func=c.cmd_extract)

    smooth = pose.add_parser("smooth", help="zero-lag temporal smoothing of keypoints")
    smooth.add_argument("poses", type=Path)
    smooth.add_argument("-o", "--output", type=Path, required=True)
    smooth.add_argument("--strength", type=_finite, default=1.0, help="0 = off, 1 = default, larger = smoother")
    smooth.set_defaults(func=c.cmd_smooth)

    normalize = pose.add_parser("normalize", help="map source poses into the target's frame, size and floor")
    normalize.add_argument("source", type=Path)
    normalize.add_argument("--target", type=Path, required=True, help="the target subject's pose file")
    normalize.add_argument("-o", "--output", type=Path, required=True)
    _normalize_args(normalize)
    normalize.set_defaults(func=c.cmd_normalize)

    render = pose.add_parser("render", help="draw stick-figure label images")
    render.add_argument("poses", type=Path)
    render.add_argument("-o", "--output", type=Path, required=True, help="an .mp4 file or a folder for PNG frames")
    render.add_argument("--size", type=_frame_size, help="WxH (default: the pose file's frame size)")
    render.set_defaults(func=c.cmd_render)
    from ..gan.train_config import BUDGET_HELP

    teach = commands.add_parser("train", help="train a target subject's model from a video of them (see --preset)",
                                epilog=BUDGET_HELP + ". Several GPUs or machines: run it under torchrun "
                                       "(torchrun --nproc_per_node=N -m edn_server.cli train ...).")
    teach.add_argument("target_video", type=Path, help="the target subject: a movie file or a folder of frames")
    teach.add_argument("--name", required=True, help="the model's name (letters, digits, ' ', '.', '_', '-')")
    teach.add_argument("--preset", choices=("preview", "paper", "tiny"), default="preview",
                       help="preview: 128 px high, CPU-friendly (default); paper: 512 px high (global 256 + local enhancer), "
                            "for a GPU; tiny: 64 px, for tests only")
    budget = teach.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, default=None,
                        help="optimiser steps for the whole run, shared among the stages as said below (default: the preset's)")
    budget.add_argument("--minutes", type=_finite, default=None, help="time for the whole run, dataset building included")
    teach.add_argument("--resume", action="store_true",
                       help="continue training --name: an interrupted run from its checkpoint, a finished model for the new budget")
    teach.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    teach.add_argument("--layer", choices=("auto", "person", "full-frame"), default="auto",
                       help="auto (default): the person with alpha over a background plate when the target's camera and "
                            "background are still, else the full frame (the reason is printed and kept in model.json)")
    _range_args(teach)
    teach.set_defaults(func=c.cmd_train)

    serve = commands.add_parser("serve", help="run the job server for the Blender add-on (HTTP/JSON, bearer token)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=_port, default=0, help="port (default 0: any free one; see <data dir>/server.json)")
    serve.add_argument("--data-dir", type=Path, default=None,
                       help="jobs, uploads, models and the token (default: EDN_HOME or the XDG data dir)")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME[:PORT]",
                       help="also accept this Host header (the machine's name when serving other machines); repeatable")
    serve.add_argument("--max-upload", type=_size, default="4G", help="largest upload (default 4G)")
    serve.add_argument("--max-body", type=_size, default="1M", help="largest JSON request body (default 1M)")
    serve.add_argument("--light-workers", type=int, default=2, help="light jobs (pose extraction) run beside the heavy one (default 2)")
    serve.add_argument("--root", action="append", type=Path, default=[], metavar="DIR",
                       help="media paths and output folders must lie in DIR (repeatable; default: anywhere on 127.0.0.1, "
                            "only the data dir on any other --host)")
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    serve.set_defaults(func=c.cmd_serve)

    use = commands.add_parser("transfer", help="make a trained target dance like the person in a source video")
    use.add_argument("source_video", type=Path, help="the source dancer: a movie file or a folder of frames")
    use.add_argument("--model", required=True, help="a trained target's name (or its folder)")
    use.add_argument("-o", "--output", type=Path, required=True,
                     help="folder for the frames (NNNNNN.png, numbered by source frame), result.mp4 and edn_result.json")
    _normalize_args(use)
    use.add_argument("--smoothing", type=_finite, default=1.0, help="temporal smoothing of the source poses: 0 = off, 1 = default")
    use.add_argument("--no-face", action="store_true", help="skip the face refinement")
    use.add_argument("--no-video", action="store_true", help="write only the PNG frames, no result.mp4")
    use.add_argument("--output-kind", dest="kind", choices=("composite", "person-alpha"), default="composite",
                     help="composite (default): the person over the target's background; person-alpha: the person alone "
                          "with alpha (RGBA PNGs, no mp4), to composite over another shot; needs a person-mode model")
    use.add_argument("--output-height", default="target", choices=("target", "1080", "720", "512"),
                     help="height of the output frames: target (the target video's own, default) or a lower one")
    use.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    use.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                     help="torch.compile the networks: about 1.4x faster generation on a CPU after a one-off "
                          "compile of ~20 s (less once cached); auto: clips of 2000 frames or more")
    _range_args(use)
    use.set_defaults(func=c.cmd_transfer)

    score = commands.add_parser("eval", help="score a trained target by reconstructing real frames of it from their own poses")
    score.add_argument("--model", required=True, help="a trained target's name (or its folder)")
    score.add_argument("--video", type=Path, required=True, help="a clip of the target subject (ideally frames not trained on)")
    score.add_argument("-o", "--output", type=Path, required=True, help="the metrics JSON file to write")
    score.add_argument("--baseline", choices=("median", "nearest", "median,nearest"), default=None,
                       help="also score do-nothing predictions: median = the per-pixel median of the training frames (or of "
                            "the clip); nearest = for each frame, the training frame closest in pixels (needs the dataset cache)")
    score.add_argument("--size", default=None, metavar="WxH",
                       help="score at this size (e.g. 512x256) so models of different output sizes compare "
                            "(default: the model's resolution)")
    score.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    _range_args(score)
    score.set_defaults(func=c.cmd_eval)

    report = commands.add_parser("report", help="write a self-contained HTML report of a trained target (curves, samples, metrics, stats)")
    report.add_argument("--model", required=True, help="a trained target's name (or its folder)")
    report.add_argument("-o", "--output", type=Path, required=True, help="the HTML file to write (images embedded; opens offline)")
    report.add_argument("--metrics", type=Path, default=None,
                        help="an `edn eval` metrics JSON file (default: metrics.json in the model folder, if there)")
    report.set_defaults(func=c.cmd_report)
    return parser
