"""Motion transfer: a source dancer's video -> the trained target subject doing the same moves.

Pipeline: extract poses (cached) -> smooth -> normalize into the target's frame (the paper's
ankle mapping, or with normalization off a uniform fit of the source frame into the target's)
-> labels at the model's resolution -> the body generator, frame after frame, conditioned on its
own previous output -> the face generator on the face box (unless the model's held-out face
check turned it off, face_check.py) -> numbered PNGs and result.mp4.
A person-mode model generates a window that follows the person and is composited over the
target's plate at its native size (or `output_height`), or written alone with alpha
(`output="person-alpha"`: RGBA PNGs, no mp4); see output_frames.py.

Output folder OUT_DIR:
- `NNNNNN.png`: one frame per source frame, numbered by the source clip's frame index (0-based,
  at least six digits), so frames [start, end) of the source become start.png .. (end-1).png and an
  image strip lines up with the source strip's frames. Each is written under a temporary name
  and renamed, so a reader never sees a half-written PNG.
- `result.mp4` (optional) at the source's frame rate; `edn_poses.npz`: the normalized poses.
- `edn_result.json`: written last, listing the frames; only files it lists are results. Before
  writing, the files an earlier run listed (or had started, per `.edn_result.pending.json`) are
  removed, so a longer earlier run leaves no stale frames behind. Other files are left alone.

Frames with no person (after the detector's short-gap filling) get a black label and are still
generated, with the chain restarted from a zero previous frame (see sequence_generator.py): the
output there is an empty, roughly uniform frame, and the next frame with a person starts afresh.
Memory does not grow with the clip: poses are a few KB per frame, and frames are streamed to disk.
`compile` ("auto": clips of 2000 frames or more) runs the networks through torch.compile, falling
back to eager where that cannot build (see compiled.py); the outputs agree to within ~1e-5.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import atomic_file
from ..errors import BAD_PARAMS, OUTPUT_UNWRITABLE, EdnError
from ..names import COMPILE_STAGE, FRAME_NAME, GENERATE_STAGE, RESULT_MANIFEST, RESULT_PENDING, RESULT_POSES, RESULT_VIDEO, frame_name
from ..progress import Progress, check_cancelled, no_progress
from .compiled import compile_wanted
from .frame_writer import FrameWriter
from .output_frames import FullFrameOutput, PersonOutput, check_output, output_frames
from .sequence_generator import SequenceGenerator, pick_device

if TYPE_CHECKING:
    import torch

    from ..pose.normalize import NormalizeOptions
    from ..pose.sequence import PoseSequence
    from .model_io import TrainedModel

MANIFEST, PENDING, VIDEO, POSES = RESULT_MANIFEST, RESULT_PENDING, RESULT_VIDEO, RESULT_POSES
MANIFEST_VERSION = 1
STAGE = GENERATE_STAGE
_FRAME_TEMP = re.compile(r"^\.\d{6,}\..*\.part\.png$")  # atomic_file's temp names for our frames


@dataclasses.dataclass(frozen=True)
class TransferResult:
    frames: int
    out_dir: Path
    video_path: Path | None
    fps_generated: float  # frames per second of the generation loop (labels, networks, writing)
    seconds: float  # the whole call, pose extraction included
    normalized_poses_path: Path
    compiled: bool = False  # the networks ran through torch.compile
    size: tuple[int, int] = (0, 0)  # (w, h) of the frames written


def resolve_model(model: str | os.PathLike | TrainedModel, device: str | torch.device | None = None) -> TrainedModel:
    """A TrainedModel as given, or loaded by registry name or folder (MODEL_NOT_FOUND if absent)."""
    if isinstance(model, str | os.PathLike):
        from .model_io import load_trained_model

        return load_trained_model(model, device=str(pick_device(device)))
    return model


def transfer(
    source_video: str | os.PathLike,
    model: str | TrainedModel,
    out_dir: str | os.PathLike,
    normalization: NormalizeOptions | None = None,
    smoothing: float = 1.0,
    face: bool = True,
    start: int = 0,
    end: int | None = None,
    pose_model: str = "full",
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    write_video: bool = True,
    device: str | torch.device | None = None,
    compile: str = "auto",
    source_poses: PoseSequence | None = None,
    output: str = "composite",
    output_height: str | int = "target",
) -> TransferResult:
    """Generate the target subject dancing the moves of frames [start, end) of `source_video`
    into `out_dir` (see the module docstring for its layout). `normalization` carries the user's
    scale, offsets and mirror; with its `auto` off the automatic mapping is skipped and the source
    frame is fitted into the target's. Raises EdnError (MODEL_NOT_FOUND, media errors, BAD_RANGE, BAD_PARAMS,
    NO_PERSON, NO_ANKLES, CANCELLED); on any error nothing from this run is left in `out_dir`.
    With `source_poses` (frames of a pose file at `source_video`) those poses are used: nothing is detected."""
    from .. import media as media_io
    from ..pose.normalize import NormalizeOptions
    from ..pose.pipeline import pose_sequence, refine_poses

    started = time.perf_counter()
    progress = progress or no_progress
    out_dir = Path(out_dir).expanduser()
    _check_output(out_dir)
    normalization = normalization or NormalizeOptions()
    if device is not None:
        device = pick_device(device)
    trained = resolve_model(model, device)
    check_output(trained, output, output_height)
    if source_poses is None:
        info = media_io.probe(source_video)
        start, end = media_io.check_range(info, start, end)
        poses = pose_sequence(info.path, start, end, smoothing=smoothing, target=trained.stats, normalization=normalization,
                              model=pose_model, progress=progress, cancelled=cancelled)
    else:
        info = media_io.MediaInfo(Path(source_video), "poses", len(source_poses), source_poses.fps, source_poses.size)
        start, end = source_poses.frame_start, source_poses.frame_start + len(source_poses)
        poses = refine_poses(source_poses, smoothing, trained.stats, normalization, source_name=info.path.name)
    check_cancelled(cancelled)
    frames = output_frames(trained, poses, output, output_height)
    write_video = write_video and frames.video
    engine = SequenceGenerator(trained.generator, trained.resolution, pick_device(device, trained.generator),
                               trained.face_refiner if face else None, trained.face_side,
                               compile=compile_wanted(compile, len(poses)))
    names = [frame_name(poses.frame_start + i) for i in range(len(poses))]
    created = not out_dir.exists()
    ours = [*names, POSES, MANIFEST] + ([VIDEO] if write_video else [])
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _clear_previous_results(out_dir)
        _write_json(out_dir / PENDING, {"frames": names, "video": VIDEO if write_video else None, "poses": POSES})
    except OSError as exc:
        raise EdnError(OUTPUT_UNWRITABLE, f"Cannot write into {out_dir} ({exc.strerror or exc}); "
                                          "choose a folder you can write to.") from exc
    written: list[Path] = []
    try:
        generation_s = _generate(engine, frames, out_dir, names, write_video, info.fps, progress, cancelled, written)
        poses.save(out_dir / POSES)
        manifest = _manifest(names, info, start, end, trained, normalization, smoothing, face, write_video)
        manifest.update(size=list(frames.size), output=output, mode=trained.mode)
        _write_json(out_dir / MANIFEST, manifest)
    except BaseException:
        # only what this run wrote: a same-named file it had not reached yet is left alone
        _remove_listed(out_dir, [p.name for p in written] + ours[len(names):])
        (out_dir / PENDING).unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # only if empty: never take files we did not write
        raise
    (out_dir / PENDING).unlink(missing_ok=True)
    return TransferResult(frames=len(names), out_dir=out_dir, video_path=out_dir / VIDEO if write_video else None,
                          fps_generated=len(names) / max(generation_s, 1e-9), seconds=time.perf_counter() - started,
                          normalized_poses_path=out_dir / POSES, compiled=engine.compiled, size=tuple(frames.size))


def _generate(engine: SequenceGenerator, frames: FullFrameOutput | PersonOutput, out_dir: Path, names: list[str],
              write_video: bool, fps: float, progress: Progress, cancelled: Callable[[], bool] | None,
              written: list[Path]) -> float:
    """Generate every frame and hand it to the background writer; returns the seconds the loop
    took. `written` receives the paths of the PNGs written, also when this fails."""
    total = len(names)
    if engine.compiled:
        progress(0, 1, COMPILE_STAGE)
        engine.warm_up()
        progress(1, 1, COMPILE_STAGE)
    started = time.perf_counter()
    with FrameWriter(out_dir / VIDEO if write_video else None, fps, frames.size, written=written) as writer:
        for i, name in enumerate(names):
            check_cancelled(cancelled)
            writer.put(out_dir / name, frames.frame(engine, i))
            progress(i + 1, total, STAGE)
    return time.perf_counter() - started


def _check_output(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise EdnError(BAD_PARAMS, f"Output {out_dir} is a file; transfer writes a folder of frames. Choose a folder path.")


def _clear_previous_results(out_dir: Path) -> None:
    """Remove what an earlier transfer into this folder wrote: the files its manifest (or, if it
    died, its pending list) names, and its leftover temporary frames. The manifest goes first, so
    a crash here never leaves a manifest naming missing frames."""
    listed: list[str] = []
    for record in (MANIFEST, PENDING):
        data = _read_json(out_dir / record)
        listed += [str(f) for f in data.get("frames", [])] + [str(data.get(k)) for k in ("video", "poses") if data.get(k)]
    (out_dir / MANIFEST).unlink(missing_ok=True)
    _remove_listed(out_dir, listed)
    for entry in out_dir.iterdir():
        if _FRAME_TEMP.match(entry.name):
            entry.unlink(missing_ok=True)
    (out_dir / PENDING).unlink(missing_ok=True)


def _remove_listed(out_dir: Path, names: list[str]) -> None:
    for name in names:
        path = out_dir / name
        # only plain names we could have written: a damaged manifest must not reach outside the folder
        if path.name == name and (FRAME_NAME.match(name) or name in (VIDEO, POSES, MANIFEST)) and not path.is_dir():
            path.unlink(missing_ok=True)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict) -> None:
    with atomic_file(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def _manifest(names, info, start, end, trained, normalization, smoothing, face, write_video) -> dict:
    used_face = bool(face and trained.face_refiner is not None)
    return {
        "version": MANIFEST_VERSION,
        "frames": names,
        "first_frame": start,
        "frame_count": len(names),
        "fps": info.fps,
        "size": list(trained.resolution),
        "model": trained.name,
        "source": str(info.path),
        "source_range": [start, end],
        "video": VIDEO if write_video else None,
        "poses": POSES,
        "normalize": normalization.auto,
        "normalize_options": dataclasses.asdict(normalization),
        "smoothing": smoothing,
        "face_refined": used_face,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
