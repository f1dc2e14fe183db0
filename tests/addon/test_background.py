"""Background calls without Blender: the work runs on another thread, its outcome reaches the main
thread only when deliver() is called (the timer's job), and a bug in the work becomes an error."""
from __future__ import annotations

import threading
import time

from addon_helpers import pure

background = pure("background")
ServerError = pure("client").ServerError


def _deliver_until(runner, done, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the background call was not delivered"
        runner.deliver()
        time.sleep(0.01)


def test_the_outcome_is_handed_to_the_thread_that_delivers():
    runner, outcomes, release = background.Runner(), [], threading.Event()

    def work():
        release.wait(10)
        return threading.current_thread()

    def on_done(value, error):
        outcomes.append((value, error, threading.current_thread()))

    assert runner.start("models", work, on_done)
    assert not runner.start("models", work, on_done)  # one call per key: a second is refused while it runs
    assert runner.running("models") and runner.busy()
    assert runner.deliver() == 0 and outcomes == []  # nothing finished: nothing handed over
    release.set()
    _deliver_until(runner, lambda: outcomes)
    worker, error, receiver = outcomes[0]
    assert worker is not threading.current_thread() and receiver is threading.current_thread() and error is None
    assert not runner.busy() and runner.start("models", lambda: 1, on_done)  # the key is free again
    _deliver_until(runner, lambda: len(outcomes) == 2)


def test_errors_reach_on_done():
    runner, outcomes = background.Runner(), []

    def refused():
        raise ServerError("UNAUTHORIZED", "The server rejected the token.")

    def broken():
        raise KeyError("id")

    runner.start("refused", refused, lambda value, error: outcomes.append(error))
    runner.start("broken", broken, lambda value, error: outcomes.append(error))
    _deliver_until(runner, lambda: len(outcomes) == 2)
    codes = {error.code: error.message for error in outcomes}
    assert codes["UNAUTHORIZED"] == "The server rejected the token."
    assert "KeyError" in codes["INTERNAL"] and "report this" in codes["INTERNAL"]


def test_a_failing_on_done_does_not_stop_the_others():
    runner, outcomes = background.Runner(), []

    def explode(value, error):
        raise RuntimeError("a bug in a callback")

    runner.start("a", lambda: 1, explode)
    runner.start("b", lambda: 2, lambda value, error: outcomes.append(value))
    _deliver_until(runner, lambda: outcomes == [2] and not runner.busy())
