"""How a training run's budget (steps, or minutes with dataset building counted) is shared among its
stages, how far a stage is through its share, and what the progress bar shows for it."""
from __future__ import annotations

from collections.abc import Callable

from .checkpoint import RunPosition


def plan_budget(position: RunPosition, shares: dict[str, float], minutes: float | None, total_steps: int,
                stage_steps: Callable[[int], dict[str, int]]) -> None:
    """Stage ends into `position.plan`: steps per stage, or cumulative seconds of the run for a time budget."""
    if minutes is not None:
        position.minutes, position.total_steps, total, cumulative = minutes, None, minutes * 60.0, 0.0
        position.plan = {}
        for stage, share in shares.items():
            cumulative += share
            position.plan[stage] = total * cumulative
    else:
        position.total_steps, position.minutes = total_steps, None
        position.plan = stage_steps(total_steps)


def stage_progress(position: RunPosition, stage: str) -> tuple[bool, float]:
    """(budget of this stage used up, fraction of it used) for the learning-rate schedule. Under a time
    budget every stage takes at least one step, even when preparing the data used the budget up."""
    p = position
    if p.minutes is None:
        total = p.plan[stage]
        return p.stage_step >= total, p.stage_step / total
    span = max(p.plan[stage] - p.stage_started_s, 1e-9)
    return p.elapsed_s >= p.plan[stage] and p.stage_step >= 1, (p.elapsed_s - p.stage_started_s) / span


def progress_counts(position: RunPosition) -> tuple[int, int]:
    """(done, total) for the progress bar: steps, or whole seconds of a time budget."""
    if position.minutes is None:
        return position.step, position.total_steps
    budget_s = int(position.minutes * 60)
    return min(int(position.elapsed_s), budget_s), budget_s
