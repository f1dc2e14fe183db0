"""Is the server there, and which one: health checks, starting and stopping the local server, and the
status line the sidebar and the preferences draw. No bpy."""
from __future__ import annotations

import time

from . import launcher
from .connection import ServerSettings, client_for
from .session import ServerStatus, state

HEALTH_S = 5.0  # the tick checks the server this often
_SERVER = "server"  # start and stop share one key: never both at once
START_FAILURES = (launcher.PYTHON_MISSING, launcher.START_FAILED)  # reasons a later "not running" must not hide


def set_status(code: str, message: str) -> None:
    state.server = ServerStatus(code=code, message=message, checked=time.monotonic())


def check(settings: ServerSettings) -> None:
    """Ask the server for its health in the background; the answer becomes the status."""

    def work() -> dict:
        client = client_for(settings, start=False)
        return {**client.health(timeout=5.0), "url": client.url}

    def on_done(health, error) -> None:
        if error is not None:
            if error.code == launcher.NOT_RUNNING and state.server.code in START_FAILURES:
                state.server.checked = time.monotonic()  # still not running, for the reason already shown
            else:
                set_status(error.code, error.message)
            return
        device = health.get("device") or {}
        state.server = ServerStatus(code="OK", message=f"Connected to {health.get('url', '')}",
                                    version=str(health.get("version", "")),
                                    device=str(device.get("name") or device.get("type") or ""), checked=time.monotonic())

    state.runner.start("health", work, on_done)


def check_when_due(settings: ServerSettings, now: float) -> None:
    """A health check every HEALTH_S, none while the server is being started or stopped (that call
    sets the status itself, and a check racing it would report the half-way state)."""
    if now - state.server.checked > HEALTH_S and not state.runner.running(_SERVER):
        state.server.checked = now  # no second check while this one runs
        check(settings)


def start_local(settings: ServerSettings) -> None:
    state.server = ServerStatus(code="UNKNOWN", message="Starting the server...")

    def started(client, error) -> None:
        if error is not None:
            set_status(error.code, error.message)
        else:
            check(settings)

    state.runner.start(_SERVER, lambda: launcher.start_server(settings.local), started)


def stop_local(settings: ServerSettings) -> None:
    def stopped(was_running, error) -> None:
        if error is not None:
            set_status(error.code, error.message)
        else:
            set_status(launcher.NOT_RUNNING, "Server stopped" if was_running else "No local server was running")

    state.runner.start(_SERVER, lambda: launcher.stop_server(settings.local.data_dir), stopped)


ICONS = {"OK": "CHECKMARK", "UNKNOWN": "TIME", launcher.NOT_RUNNING: "INFO"}  # not started yet is no error


def draw_status(layout) -> None:
    status = state.server
    icon = ICONS.get(status.code, "ERROR")
    text = status.message
    if status.ok and status.version:
        text += f" (edn {status.version}{', ' + status.device if status.device else ''})"
    layout.label(text=text, icon=icon)
