"""A training run's budget over its stages: where each stage ends (in steps, or in seconds of the
run for a time budget), and how far through its stage a run is (for the learning-rate schedule)."""
from __future__ import annotations

from .checkpoint import RunPosition
from .train_config import TrainConfig


def plan_budget(position: RunPosition, config: TrainConfig, steps: int | None, minutes: float | None) -> None:
    """Stage ends into `position`: steps per stage, or cumulative seconds of the run for a time
    budget. Without either, a resumed run keeps the checkpoint's plan (else the preset's steps)."""
    if steps is None and minutes is None and position.plan:
        return  # resuming with the checkpoint's budget
    shares = config.stage_shares()
    if minutes is not None:
        position.minutes, position.total_steps, total, cumulative = minutes, None, minutes * 60.0, 0.0
        position.plan = {}
        for stage, share in shares.items():
            cumulative += share
            position.plan[stage] = total * cumulative
    else:
        position.total_steps = steps or config.default_steps
        position.minutes = None
        position.plan = config.stage_steps(position.total_steps)


def stage_progress(position: RunPosition, stage: str) -> tuple[bool, float]:
    """(budget of this stage used up, fraction of it used)."""
    p = position
    if p.minutes is None:
        total = p.plan[stage]
        return p.stage_step >= total, p.stage_step / total
    span = max(p.plan[stage] - p.stage_started_s, 1e-9)
    return p.elapsed_s >= p.plan[stage] and p.stage_step >= 1, (p.elapsed_s - p.stage_started_s) / span
