"""Calls that run on a background thread and hand their outcome back to the main thread. No bpy.

Blender's data may only be touched from the main thread, and HTTP may take seconds, so the add-on
splits each server call in two: `work()` runs on a thread (it must not touch bpy), and
`on_done(value, error)` runs later on the main thread, when the timer calls `deliver()`. Timers never
fire in background mode, so tests call `deliver()` (or the poller's tick, which calls it) themselves.
"""
from __future__ import annotations

import queue
import threading
import traceback
from collections.abc import Callable, Hashable
from typing import Any

from .client import ServerError

INTERNAL = "INTERNAL"

OnDone = Callable[[Any, ServerError | None], None]


class Runner:
    """Starts background calls and delivers their outcomes; at most one call per key is under way."""

    def __init__(self) -> None:
        self._running: set[Hashable] = set()  # main thread only
        self._finished: queue.SimpleQueue = queue.SimpleQueue()  # (key, on_done, value, error) from the threads

    def start(self, key: Hashable, work: Callable[[], Any], on_done: OnDone) -> bool:
        """Run `work()` on a thread unless a call with this key is under way (then False). Its
        value, or the ServerError it raised, goes to `on_done` in a later `deliver()`."""
        if key in self._running:
            return False
        self._running.add(key)
        threading.Thread(target=self._call, args=(key, work, on_done), name=f"edn-{key}", daemon=True).start()
        return True

    def _call(self, key: Hashable, work: Callable[[], Any], on_done: OnDone) -> None:
        value, error = None, None
        try:
            value = work()
        except ServerError as exc:
            error = exc
        except Exception as exc:  # a bug must surface in the panel, not end the thread silently
            traceback.print_exc()
            error = ServerError(INTERNAL, f"The add-on failed unexpectedly ({type(exc).__name__}: {exc}). "
                                          "Please report this with Blender's console output.")
        self._finished.put((key, on_done, value, error))

    def running(self, key: Hashable) -> bool:
        return key in self._running

    def busy(self) -> bool:
        return bool(self._running)

    def deliver(self) -> int:
        """The main-thread half: run `on_done` of every call finished since the last delivery, in the
        order they finished; returns how many ran. A failing `on_done` is printed, never raised."""
        count = 0
        while True:
            try:
                key, on_done, value, error = self._finished.get_nowait()
            except queue.Empty:
                return count
            self._running.discard(key)
            count += 1
            try:
                on_done(value, error)
            except Exception:
                traceback.print_exc()
