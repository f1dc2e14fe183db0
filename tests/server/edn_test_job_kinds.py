"""Job kinds that exist only for tests and benchmarks, loaded into a real server through
EDN_JOB_KIND_MODULES=edn_test_job_kinds (with this folder on PYTHONPATH). Never shipped."""
from __future__ import annotations

import json
import os
import time

import numpy as np
from edn_server.atomic import atomic_dir, atomic_file
from edn_server.errors import EdnError
from edn_server.service.job_contract import JobContext, JobKind, OutputParams
from pydantic import BaseModel, ConfigDict, Field


class SleepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(1.0, ge=0, le=600)
    steps: int = Field(10, ge=1, le=100_000)
    fail_with: str | None = Field(None, description="an error code to fail with at the end; 'MemoryError' raises one")


def run_sleep(ctx: JobContext) -> dict:
    started = time.time()
    for step in range(ctx.params.steps):
        time.sleep(ctx.params.seconds / ctx.params.steps)
        ctx.progress(step + 1, ctx.params.steps, "sleeping")
    if ctx.params.fail_with == "MemoryError":
        raise MemoryError("test allocation")
    if ctx.params.fail_with:
        raise EdnError(ctx.params.fail_with, f"test failure {ctx.params.fail_with}")
    return {"started": started, "finished": time.time(), "pid": os.getpid()}


class ResumableParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = Field(20, ge=1)
    step_s: float = Field(0.1, ge=0)


def run_resumable(ctx: JobContext) -> dict:
    """Counts steps with a checkpoint after each, like training saves its state."""
    checkpoint = ctx.work_dir / "checkpoint.json"
    start = json.loads(checkpoint.read_text())["step"] if checkpoint.is_file() else 0
    for step in range(start, ctx.params.steps):
        time.sleep(ctx.params.step_s)
        with atomic_file(checkpoint) as tmp:
            tmp.write_text(json.dumps({"step": step + 1}))
        ctx.progress(step + 1, ctx.params.steps, "counting")
    return {"attempt": ctx.attempt, "resumed_from": start, "steps": ctx.params.steps}


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FramesParams(OutputParams):
    count: int = Field(10, ge=1, le=10_000)
    width: int = Field(256, ge=8, le=4096)
    height: int = Field(256, ge=8, le=4096)


def run_frames(ctx: JobContext) -> dict:
    """Numbered noise PNGs (incompressible: download benchmarks measure bytes, not zlib)."""
    import cv2

    rng = np.random.default_rng(0)
    with atomic_dir(ctx.output_dir / "frames") as tmp:
        for index in range(ctx.params.count):
            image = rng.integers(0, 256, (ctx.params.height, ctx.params.width, 3), dtype=np.uint8)
            cv2.imwrite(str(tmp / f"{index:06d}.png"), image, [cv2.IMWRITE_PNG_COMPRESSION, 0])
            ctx.progress(index + 1, ctx.params.count, "writing frames")
    return {"frames_dir": str(ctx.output_dir / "frames"), "frame_count": ctx.params.count}


def register_job_kinds(kinds) -> None:
    kinds.register(JobKind("test_sleep", SleepParams, run_sleep, heavy=False, needs_media=False))
    kinds.register(JobKind("test_sleep_heavy", SleepParams, run_sleep, heavy=True, needs_media=False))
    kinds.register(JobKind("test_resumable", ResumableParams, run_resumable, heavy=True, resumable=True, needs_media=False))
    kinds.register(JobKind("test_noop", NoParams, lambda ctx: {}, heavy=False, needs_media=False))
    kinds.register(JobKind("test_frames", FramesParams, run_frames, heavy=False, needs_media=False))
