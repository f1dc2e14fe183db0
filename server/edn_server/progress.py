"""Progress reporting shared by the CLI (tqdm) and the server (a callback into the job store)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .errors import CANCELLED, EdnError
from .names import BYTES, stage_family, stage_unit


class Progress(Protocol):
    """(done, total, stage); the job server's reporter also takes `eta_s=` from a kind that knows
    the time left (a time budget, frames left at a measured rate) better than extrapolation does."""

    def __call__(self, done: int, total: int, stage: str) -> None: ...


def no_progress(done: int, total: int, stage: str) -> None:
    """The default: report nothing."""


def check_cancelled(cancelled: Callable[[], bool] | None) -> None:
    """Raise CANCELLED between units of work (frames, steps) when the caller asked to stop."""
    if cancelled is not None and cancelled():
        raise EdnError(CANCELLED, "The job was cancelled; nothing was written.")


class TqdmProgress:
    """A Progress that draws one tqdm bar per stage on stderr, in the unit the stage counts
    (names.stage_unit; `units` overrides it per stage, e.g. a training run on a time budget counts s)."""

    def __init__(self, disable: bool = False, units: dict[str, str] | None = None):
        self._bar = None
        self._stage = None
        self._disable = disable
        self._units = units or {}

    def __call__(self, done: int, total: int, stage: str) -> None:
        from tqdm import tqdm

        if stage != self._stage:
            self.close()
            self._stage = stage
            unit = self._units.get(stage_family(stage)) or stage_unit(stage)
            self._bar = tqdm(total=total, desc=stage, unit=unit, unit_scale=unit == BYTES, unit_divisor=1024,
                             disable=self._disable, leave=True)
        self._bar.total = total
        self._bar.update(done - self._bar.n)  # update() throttles redraws; setting n + refresh() would not

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
