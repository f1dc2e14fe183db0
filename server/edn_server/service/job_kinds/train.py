"""The `train` job: a video of the target subject -> a trained model registered by name.

Resumable: training writes checkpoints into the model's folder, so after a crash or restart the
scheduler runs the job again and it continues from its last checkpoint (train(..., resume=True)).
A cancelled run keeps its checkpoint too: submitting `train` again with the same name, video,
frame range and preset continues it. `resume: true` asks explicitly to continue a model, finished
or not, for the new budget; without it a finished model's name is MODEL_EXISTS.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ... import registry
from ...config import data_dir
from ...errors import BAD_PARAMS, CANCELLED, MODEL_EXISTS, MODEL_NOT_FOUND, EdnError
from ...names import DATASET_STAGE, DETECT_STAGE, HELDOUT_SAMPLE_FILE, LOSSES_FILE, SAMPLES_FILE, TRAIN_STAGE, stage_family
from ..job_contract import FieldError, JobContext, JobKind, ResolvedMedia

PREPARE_WEIGHTS = ((DETECT_STAGE, 0.10), (DATASET_STAGE, 0.05))
TRAINING_WEIGHT = 0.85
MAX_STEPS = 2_000_000
MAX_MINUTES = 14 * 24 * 60.0
OWNER_FILE = "train_owner.json"  # in the job's folder: this job created the model folder


class TrainParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., description="name the model is registered under (letters, digits, space, '.', '_', '-')")
    preset: Literal["preview", "paper", "tiny"] = Field(
        "preview", description="preview: CPU-friendly, 128 px high frames; paper: the paper's 512 px model with local "
                               "enhancer (needs a GPU); tiny: for tests only, its images are useless")
    steps: int | None = Field(None, ge=1, le=MAX_STEPS, description="training steps in all (shared among the stages)")
    minutes: float | None = Field(None, gt=0, le=MAX_MINUTES, description="training time in all, dataset building included")
    resume: bool = Field(False, description="continue the model of this name (finished, or stopped) for the new budget, "
                                            "with its own settings; the preset is then ignored")
    pose_model: Literal["lite", "full", "heavy"] | None = Field(
        None, description="PoseLandmarker variant for the target's poses (default: the preset's, full)")
    layer: Literal["auto", "person", "full-frame"] = Field(
        "auto", description="auto: train the person over a background plate when the target's background is static "
                            "(else full-frame, with the reason in model.json); full-frame: the whole frame, as EDN")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        try:
            return registry.check_name(value)
        except EdnError as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _one_budget(self) -> TrainParams:
        if self.steps is not None and self.minutes is not None:
            raise ValueError("give a step budget (steps) or a time budget (minutes), not both")
        return self


def validate_train(media: ResolvedMedia | None, params: TrainParams) -> None:
    """Answer at submit time what would otherwise fail after minutes of pose detection."""
    from ...gan.checkpoint import checkpoint_path
    from ...gan.train_config import preset_config

    folder = registry.models_dir(data_dir()) / params.name
    finished = (folder / registry.MODEL_FILE).is_file()
    if finished and not params.resume:
        raise FieldError(MODEL_EXISTS, f"A trained model named {params.name!r} already exists on this server. Choose another "
                                       "name, continue its training (resume), or delete that model first.", "params.name")
    if params.resume and not finished and not checkpoint_path(folder).is_file():
        raise FieldError(MODEL_NOT_FOUND, f"There is no model named {params.name!r} to continue; train it first.", "params.name")
    try:
        stages = preset_config(params.preset, media.info.size).stage_shares()
    except EdnError as exc:
        raise FieldError(exc.code, f"{exc.message} (target video {media.path})", "params.preset") from exc
    if params.steps is not None and params.steps < len(stages):
        raise FieldError(BAD_PARAMS, f"steps={params.steps} cannot cover the {len(stages)} training stages of preset "
                                     f"{params.preset!r} ({', '.join(stages)}); give steps={len(stages)} or more.", "params.steps")


class _TrainingEta:
    """The time left, from what is known rather than from progress so far (which counts pose
    detection and dataset building at another pace): a time budget's remaining seconds, or
    the remaining steps at the training steps' own rate."""

    def __init__(self, minutes: float | None):
        self.budget_s = None if minutes is None else minutes * 60.0
        self.started = time.monotonic()
        self.first: tuple[int, float] | None = None  # (steps, time) of the first training report

    def __call__(self, done: int, total: int, training: bool) -> float | None:
        now = time.monotonic()
        if self.budget_s is not None:  # training reports (seconds of the budget used, the budget)
            return max(0.0, total - done) if training else max(0.0, self.budget_s - (now - self.started))
        if not training:
            return None
        if self.first is None:
            self.first = (done, now)
            return None
        steps, since = done - self.first[0], now - self.first[1]
        return (total - done) * since / steps if steps > 0 else None


def _job_progress(ctx: JobContext, params: TrainParams):
    """train reports each training stage under its label ('train: body'...), which the scheduler
    counts as the weighted `train` stage, with the ETA from what is known (_TrainingEta). A cancel is
    left to train's own check before the next step, which writes the checkpoint that lets the job resume."""
    eta = _TrainingEta(params.minutes)

    def report(done: int, total: int, stage: str) -> None:
        try:
            ctx.progress(done, total, stage, eta_s=eta(done, total, stage_family(stage) == TRAIN_STAGE))
        except EdnError as exc:
            if exc.code != CANCELLED or stage_family(stage) != TRAIN_STAGE:
                raise

    return report


def _checkpoint_step(checkpoint: Path) -> int | None:
    """The global step a checkpoint holds, or None without a readable one (train then says why)."""
    from ...gan.checkpoint import read_checkpoint

    if not checkpoint.is_file():
        return None
    try:
        return int(read_checkpoint(checkpoint)["position"]["step"])
    except (EdnError, KeyError, TypeError, ValueError):
        return 0


def heldout_sample(job: dict, data: Path) -> Path | None:
    """The train job's latest held-out sample (training writes it after its first step, every few
    minutes and at the end, into the model folder); None while queued or before the first."""
    if job["state"] == "queued":
        return None
    path = registry.models_dir(data) / job["params"]["name"] / HELDOUT_SAMPLE_FILE
    return path if path.is_file() else None


def _result(folder: Path, meta: dict, resumed_from: int, attempt: int) -> dict:
    samples, heldout = folder / SAMPLES_FILE, folder / HELDOUT_SAMPLE_FILE
    files = [folder / name for name in (registry.MODEL_FILE, SAMPLES_FILE, HELDOUT_SAMPLE_FILE, LOSSES_FILE)]
    return {
        "model": folder.name, "preset": meta.get("preset"), "resolution": meta.get("resolution"),
        "output_size": meta.get("output_size") or meta.get("resolution"), "steps": meta.get("steps"),
        "seconds": (meta.get("training") or {}).get("seconds"), "folder": str(folder), **registry.model_mode(meta),
        "samples": str(samples) if samples.is_file() else None, "heldout_sample": str(heldout) if heldout.is_file() else None,
        "resumed_from_step": resumed_from, "attempt": attempt,
        "files": [str(f) for f in files if f.is_file()], "warning": registry.training_warning(meta),
    }


def _finished_steps(folder: Path) -> int | None:
    """The steps of the finished model in `folder`, or None when none finished there (yet)."""
    if not (folder / registry.MODEL_FILE).is_file():
        return None
    return int(registry.read_model_info(folder, complete=False).get("steps") or 0)


def run_train(ctx: JobContext) -> dict:
    from ...gan.checkpoint import checkpoint_path
    from ...gan.train import train

    params: TrainParams = ctx.params
    folder = registry.models_dir(data_dir()) / params.name
    owner = ctx.work_dir / OWNER_FILE
    ours = owner.is_file()
    checkpoint = checkpoint_path(folder)
    resumed_from = _checkpoint_step(checkpoint)
    steps_now = _finished_steps(folder)
    if ours and steps_now is not None and resumed_from is None and steps_now != json.loads(owner.read_text()).get("steps_before"):
        # An earlier attempt finished (model.json is written last) but the server died before recording it.
        return _result(folder, registry.read_model_info(folder, complete=False), 0, ctx.attempt)
    if resumed_from is None and ours and folder.is_dir() and not params.resume:
        shutil.rmtree(folder)  # our own earlier attempt died before its first checkpoint: start afresh
    if not ours:
        owner.write_text(json.dumps({"model": params.name, "steps_before": steps_now}))
    media = ctx.media
    overrides = {"layer": params.layer, **({"pose_model": params.pose_model} if params.pose_model else {})}
    model = train(media.path, params.name, preset=params.preset, steps=params.steps, minutes=params.minutes,
                  resume=params.resume or resumed_from is not None, start=media.start, end=media.end,
                  progress=_job_progress(ctx, params), cancelled=ctx.cancelled, config_overrides=overrides)
    return _result(model.folder, model.info, resumed_from or 0, ctx.attempt)


TRAIN = JobKind(
    name="train", params=TrainParams, run=run_train, validate=validate_train, heavy=True, resumable=True,
    stages=(*PREPARE_WEIGHTS, (TRAIN_STAGE, TRAINING_WEIGHT)),
    summary="train a target subject's pose-to-video GAN from a video of them", sample=heldout_sample,
)
