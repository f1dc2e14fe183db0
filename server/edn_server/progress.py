"""Progress reporting shared by the CLI (tqdm) and the server (a callback into the job store)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .errors import CANCELLED, EdnError


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
    """A Progress that draws one tqdm bar per stage on stderr."""

    def __init__(self, disable: bool = False):
        self._bar = None
        self._stage = None
        self._disable = disable

    def __call__(self, done: int, total: int, stage: str) -> None:
        from tqdm import tqdm

        if stage != self._stage:
            self.close()
            self._stage = stage
            self._bar = tqdm(total=total, desc=stage, unit="frame", disable=self._disable, leave=True)
        self._bar.total = total
        self._bar.update(done - self._bar.n)  # update() throttles redraws; setting n + refresh() would not

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
