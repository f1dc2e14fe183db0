"""Pose jobs: `extract_poses` (media → keypoints file + detection report) and `preview_poses`
(source media + target → normalized stick-figure labels as numbered PNGs + mp4, for judging the
normalization sliders before a long transfer)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from annotated_types import Ge, Le, MaxLen
from pydantic import Field, model_validator

from ... import registry
from ...atomic import atomic_dir
from ...config import data_dir
from ...errors import BAD_PARAMS, OUTPUT_UNWRITABLE, EdnError
from ...names import (
    DETECT_STAGE,
    FRAME_PATTERN,
    LABELS_DIR,
    LABELS_VIDEO,
    NORMALIZE_STAGE,
    NORMALIZED_POSES_FILE,
    POSES_FILE,
    RENDER_STAGE,
    frame_name,
)
from ...pose.normalize import MAX_KEYFRAMED, NormalizeOptions
from ...pose.smooth import check_strength
from ...progress import check_cancelled
from ..job_contract import FieldError, JobContext, JobKind, OutputParams, PathText, ResolvedMedia, server_path
from ..pose_media import load_pose_range

LABELS_MARK = ".edn-preview"  # inside a labels folder a preview wrote: a later preview may replace it

# Smoothing strength: one number, or one per frame of the range (keyframed in Blender).
Strength = Annotated[float, Ge(0), Le(10)]
Smoothing = Strength | Annotated[tuple[Strength, ...], MaxLen(MAX_KEYFRAMED)]


def smooth_field(default: float):
    return Field(default, description="temporal smoothing strength of the source poses (0 = off), or one per frame")


def normalization_field():
    return Field(default_factory=NormalizeOptions, description="the paper's ankle-based mapping into the target's frame "
                                                               "(auto), plus the user's scale, offset_x/offset_y (target "
                                                               "pixels) and mirror")


class ExtractParams(OutputParams):
    model: Literal["lite", "full", "heavy"] = Field("full", description="PoseLandmarker variant: lite is fastest, heavy most accurate")
    num_poses: int = Field(1, ge=1, le=10, description="people tracked per frame; >1 helps in crowded clips, slower")
    use_cache: bool = Field(True, description="reuse poses extracted earlier from the same media, range and settings")
    smooth: Smoothing = smooth_field(0.0)


class PreviewParams(ExtractParams):
    target_poses: PathText | None = Field(None, description="absolute path of the target subject's pose file (.npz)")
    target_stats: dict | None = Field(None, description="the target's statistics (PoseStats.to_dict), as saved with a trained model")
    target_model: str | None = Field(None, max_length=256,
                                     description="name of a trained model whose saved statistics to use (GET /v1/models)")
    normalization: NormalizeOptions = normalization_field()
    smooth: Smoothing = smooth_field(1.0)
    video: bool = Field(True, description="also write labels.mp4")

    @model_validator(mode="after")
    def _one_target(self) -> PreviewParams:
        if sum(v is not None for v in (self.target_poses, self.target_stats, self.target_model)) != 1:
            raise ValueError("give exactly one of target_poses (a pose file), target_stats or target_model (a trained model's name)")
        if self.target_poses is not None:
            server_path(self.target_poses, "target_poses")
        return self


def _poses(ctx: JobContext, params: ExtractParams, **refine):
    """The media's poses through the pose pipeline: as detected (or as in the pose file), or refined as `refine` says."""
    from ...pose.detect import DetectOptions
    from ...pose.pipeline import pose_sequence, refine_poses

    media = ctx.media
    if media.is_poses:
        return refine_poses(load_pose_range(media.path, media.start, media.end), source_name=media.path.name,
                            **{"smoothing": 0.0, **refine})
    return pose_sequence(media.path, media.start, media.end, fps=media.fps, model=params.model, use_cache=params.use_cache,
                         detect=DetectOptions(num_poses=params.num_poses), progress=ctx.progress, cancelled=ctx.cancelled,
                         **{"smoothing": 0.0, **refine})


def _summary(seq, size: tuple[int, int]) -> dict:
    """What detection found; `size` is the source frame's (a normalized sequence has the target's)."""
    from ...pose.gaps import describe_gaps

    return {"frames": len(seq), "detected": int(seq.detected.sum()), "interpolated": int((seq.interpolated & ~seq.detected).sum()),
            "frame_start": seq.frame_start, "fps": seq.fps, "size": list(size), "report": describe_gaps(seq)}


def run_extract(ctx: JobContext) -> dict:
    seq = _poses(ctx, ctx.params, smoothing=ctx.params.smooth)
    poses = seq.save(ctx.output_dir / POSES_FILE)
    return {"poses": str(poses), "files": [str(poses)], **_summary(seq, seq.size)}


def target_stats(params: PreviewParams):
    """The target's statistics from its pose file, a trained model or the given values; errors name the parameter."""
    from ...pose.normalize import PoseStats
    from ...pose.sequence import PoseSequence

    field = next(f"params.{name}" for name in ("target_poses", "target_model", "target_stats") if getattr(params, name) is not None)
    try:
        if params.target_poses is not None:
            path = Path(params.target_poses)
            return PoseStats.from_poses(PoseSequence.load(path), name=path.name)
        if params.target_model is not None:
            return PoseStats.from_dict(_model_stats(params.target_model))
        return PoseStats.from_dict(params.target_stats)
    except EdnError as exc:
        raise FieldError(exc.code, exc.message, field) from exc
    except (TypeError, ValueError, KeyError) as exc:
        raise FieldError(BAD_PARAMS, f"{field} is not a valid set of target statistics ({exc}). Pass the stats saved with "
                                     "a trained model, or a target pose file as target_poses.", field) from exc


def _model_stats(name: str) -> dict:
    """The statistics saved with a trained model (MODEL_NOT_FOUND if there is no such model)."""
    return registry.model_stats(data_dir(), name)


def check_per_frame(media: ResolvedMedia | None, params: PreviewParams | ExtractParams) -> None:
    """Keyframed settings must give one value per frame of the range (BAD_PARAMS naming the parameter)."""
    frames = None if media is None else media.end - media.start
    checks = [("params.smooth", lambda: check_strength(params.smooth, frames))]
    if hasattr(params, "normalization"):
        checks.append(("params.normalization", lambda: params.normalization.validate(frames)))
    for field, check in checks:
        try:
            check()
        except EdnError as exc:
            raise FieldError(exc.code, exc.message, field) from exc


def validate_extract(media: ResolvedMedia | None, params: ExtractParams) -> None:
    check_per_frame(media, params)


def validate_preview(media: ResolvedMedia | None, params: PreviewParams) -> None:
    check_per_frame(media, params)
    target_stats(params)  # a bad target file is answered at submit time, not after minutes of detection


def _render_labels(ctx: JobContext, seq, out: Path, with_video: bool) -> tuple[Path, Path | None]:
    """labels/<frame>.png (numbered by source frame) and labels.mp4; both appear only once complete."""
    from ...media import VideoWriter, write_image
    from ...pose.render import render_label

    width, height = seq.size
    blank = np.zeros((height, width, 3), np.uint8)
    folder = _labels_folder(out)
    video = out / LABELS_VIDEO if with_video else None
    writer = VideoWriter(video, seq.fps, seq.size) if with_video else None
    try:
        with atomic_dir(folder) as tmp:
            (tmp / LABELS_MARK).touch()
            for index in range(len(seq)):
                check_cancelled(ctx.cancelled)
                image = render_label(seq.keypoints[index], seq.size) if seq.usable[index] else blank
                write_image(tmp / frame_name(seq.frame_start + index), image)
                if writer is not None:
                    writer.write(image)
                ctx.progress(index + 1, len(seq), RENDER_STAGE)
            if writer is not None:
                writer.close()
                writer = None
    finally:
        if writer is not None:
            writer.close(keep=False)
    return folder, video


def _labels_folder(out: Path) -> Path:
    """out/labels, unless a folder of that name is not one a preview wrote: that is the user's, and
    is never replaced; the labels then go beside it, into labels-2 (or -3, ...)."""
    for number in range(1, 100):
        folder = out / (LABELS_DIR if number == 1 else f"{LABELS_DIR}-{number}")
        if not folder.exists() or (folder / LABELS_MARK).is_file():
            return folder
    raise EdnError(OUTPUT_UNWRITABLE, f"{out} already holds folders labels to labels-99 that this server did not write. "
                                      "Choose another output_dir.")


def run_preview(ctx: JobContext) -> dict:
    params: PreviewParams = ctx.params
    normalized = _poses(ctx, params, smoothing=params.smooth, target=target_stats(params), normalization=params.normalization)
    frames_dir, video = _render_labels(ctx, normalized, ctx.output_dir, params.video)
    poses = normalized.save(ctx.output_dir / NORMALIZED_POSES_FILE)
    return {"frames_dir": str(frames_dir), "frame_count": len(normalized), "first_frame": normalized.frame_start,
            "frame_pattern": FRAME_PATTERN, "video": str(video) if video else None, "poses": str(poses),
            "size": list(normalized.size), "fps": normalized.fps, "source": _summary(normalized, ctx.media.info.size)}


EXTRACT_POSES = JobKind(
    name="extract_poses", params=ExtractParams, run=run_extract, validate=validate_extract, heavy=False,
    stages=((DETECT_STAGE, 1.0),), summary="detect the person's keypoints in every frame",
)
PREVIEW_POSES = JobKind(
    name="preview_poses", params=PreviewParams, run=run_preview, validate=validate_preview, heavy=False,
    stages=((DETECT_STAGE, 0.6), (NORMALIZE_STAGE, 0.05), (RENDER_STAGE, 0.35)),
    summary="normalized stick-figure labels of the source, to judge the normalization settings",
)
