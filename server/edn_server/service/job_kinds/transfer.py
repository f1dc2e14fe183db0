"""Jobs that use a trained model: `transfer` (a source dancer's motion -> the target's numbered
PNG frames + mp4) and `eval` (the paper's reconstruction metrics on a clip of the target)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from ... import registry
from ...config import data_dir
from ...errors import BAD_PARAMS, EdnError
from ...names import (
    COMPILE_STAGE,
    DETECT_STAGE,
    EVALUATE_STAGE,
    FRAME_PATTERN,
    GENERATE_STAGE,
    MEDIAN_STAGE,
    METRICS_FILE,
    NORMALIZE_STAGE,
    PERSON,
    RESULT_MANIFEST,
    TRAINING_FRAMES_STAGE,
)
from ...person.composite import output_size
from ...pose.normalize import NormalizeOptions
from ..job_contract import FieldError, JobContext, JobKind, OutputParams, ResolvedMedia
from ..pose_media import load_pose_range
from .pose import Smoothing, check_per_frame, normalization_field, smooth_field


class TransferParams(OutputParams):
    model: str = Field(..., description="name of a trained target model (GET /v1/models)")
    normalization: NormalizeOptions = normalization_field()
    smooth: Smoothing = smooth_field(1.0)
    face: bool = Field(True, description="refine the face with the model's face GAN")
    pose_model: Literal["lite", "full", "heavy"] = Field("full", description="PoseLandmarker variant for the source poses")
    video: bool = Field(True, description="also write result.mp4")
    compile: Literal["auto", "on", "off"] = Field(
        "auto", description="run the networks through torch.compile (about 1.4x faster on a CPU after a one-off "
                            "compile of ~20 s, less once cached); auto = for clips of 2000 frames or more")
    output: Literal["composite", "person-alpha"] = Field(
        "composite", description="composite: the person over the target's background; person-alpha: the person alone "
                                 "with alpha (RGBA PNGs, no mp4), for an Alpha Over strip. Needs a person-mode model")
    output_height: Literal["target", "1080", "720", "512", 1080, 720, 512] = Field(
        "target", description="height of the output frames: target (the target video's own), or 1080 / 720 / 512 "
                              "(not above the target's)")


ScoreSide = Annotated[int, Field(ge=11, le=8192)]  # evaluate.check_size's bounds: the SSIM window .. MAX_SCORE_SIDE


class EvalParams(OutputParams):
    model: str = Field(..., description="name of a trained target model (GET /v1/models)")
    baseline: Literal["median", "nearest", "median,nearest"] | None = Field(
        None, description="also score do-nothing predictions: the per-pixel median of the training frames, and/or for "
                          "each frame the training frame nearest in pixels")
    size: tuple[ScoreSide, ScoreSide] | None = Field(None, description="score at this [width, height] in pixels, so models of "
                                                                         "different output sizes compare (default: the model's)")


def check_model(name: str, field: str = "params.model") -> Path:
    """The model's folder, or a FieldError (MODEL_NOT_FOUND answers 404) naming the parameter."""
    try:
        return registry.model_path(data_dir(), name)
    except EdnError as exc:
        raise FieldError(exc.code, exc.message, field) from exc


def validate_uses_model(media: ResolvedMedia | None, params: TransferParams | EvalParams) -> None:
    folder = check_model(params.model)
    if isinstance(params, TransferParams):
        check_output_params(registry.read_model_info(folder, complete=False), params)


def check_output_params(meta: dict, params: TransferParams) -> None:
    """The output kind and height against the model: FieldErrors naming params.output / params.output_height."""
    mode = registry.model_mode(meta)["mode"]
    if params.output == "person-alpha" and mode != PERSON:
        raise FieldError(BAD_PARAMS, f"output person-alpha needs a person-mode model; {params.model!r} is {mode} "
                                     f"({registry.model_mode(meta)['mode_reason']}) and has no alpha. Use output composite.",
                         "params.output")
    native = (meta.get("stats") or {}).get("frame_size")
    if native:
        try:
            output_size((int(native[0]), int(native[1])), params.output_height, field="params.output_height")
        except EdnError as exc:
            raise FieldError(exc.code, exc.message, "params.output_height") from exc


def validate_transfer(media: ResolvedMedia | None, params: TransferParams) -> None:
    check_per_frame(media, params)
    validate_uses_model(media, params)


def run_transfer(ctx: JobContext) -> dict:
    from ...gan.infer import resolve_model, transfer

    params: TransferParams = ctx.params
    media = ctx.media
    out = Path(params.output_dir) if params.output_dir else ctx.work_dir / "frames"
    trained = resolve_model(params.model)
    poses = load_pose_range(media.path, media.start, media.end) if media.is_poses else None
    result = transfer(media.path, trained, out, normalization=params.normalization, smoothing=params.smooth, source_poses=poses,
                      face=params.face, start=media.start, end=media.end, pose_model=params.pose_model,
                      progress=ctx.progress, cancelled=ctx.cancelled, write_video=params.video, compile=params.compile,
                      output=params.output, output_height=params.output_height)
    return {
        "model": trained.name, "frames_dir": str(result.out_dir), "frame_start": media.start, "frames": result.frames,
        # the names preview_poses uses too: the result archive takes exactly these frames
        "first_frame": media.start, "frame_count": result.frames, "frame_pattern": FRAME_PATTERN,
        "video": str(result.video_path) if result.video_path else None, "size": list(result.size),
        "output": params.output, "mode": trained.mode,
        "fps": media.info.fps, "fps_generated": round(result.fps_generated, 2), "seconds": round(result.seconds, 2),
        "poses": str(result.normalized_poses_path), "compiled": result.compiled,
        "files": [str(result.out_dir / RESULT_MANIFEST), str(result.normalized_poses_path)],
        "warning": registry.training_warning(trained.info),  # an under-trained model's frames look like noise
    }


def run_eval(ctx: JobContext) -> dict:
    from ...gan.evaluate import evaluate

    params: EvalParams = ctx.params
    media = ctx.media
    out = ctx.output_dir / METRICS_FILE
    metrics = evaluate(params.model, media.path, out, start=media.start, end=media.end, baseline=params.baseline,
                       progress=ctx.progress, cancelled=ctx.cancelled, size=params.size)
    # per-frame values stay in the file: a job's result is polled often and must stay small
    summary = {key: value for key, value in metrics.items() if key != "per_frame"}
    return {**summary, "metrics_file": str(out), "files": [str(out)]}


TRANSFER = JobKind(
    name="transfer", params=TransferParams, run=run_transfer, validate=validate_transfer, heavy=True,
    stages=((DETECT_STAGE, 0.38), (NORMALIZE_STAGE, 0.02), (COMPILE_STAGE, 0.05), (GENERATE_STAGE, 0.55)),
    summary="transfer a source dancer's motion to a trained target: numbered PNG frames and result.mp4",
)
EVAL = JobKind(
    name="eval", params=EvalParams, run=run_eval, validate=validate_uses_model, heavy=True,
    stages=((DETECT_STAGE, 0.3), (TRAINING_FRAMES_STAGE, 0.1), (MEDIAN_STAGE, 0.05), (EVALUATE_STAGE, 0.55)),
    summary="score a trained target by reconstructing real frames of it from their own poses",
)
