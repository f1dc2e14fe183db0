"""The timer: the one place where background work meets Blender data.

`tick()`, registered as a bpy.app.timers function, runs on the main thread: it delivers the outcomes
of finished background calls (session.state.runner), shows bytes in flight on their job records,
moves every job record on a step (job_sync), checks the server's health (server_status), fetches the
model list once the server answers (model_list) and redraws the Sequencer. Timers never fire in
background mode, so tests and the Blender demo call tick() themselves.
"""
from __future__ import annotations

import time
import traceback

import bpy

from . import job_sync, model_list, server_status, strips
from .connection import ServerSettings
from .job_records import find_record, show_transfers
from .preferences import server_settings
from .session import state

IDLE_S = 2.0  # the timer's interval while no job needs it

__all__ = ["find_record", "reset", "settings_from_prefs", "state", "tick"]  # what the demo and the tests reach


def reset() -> None:
    state.reset()


def settings_from_prefs() -> ServerSettings:
    return server_settings(bpy.context)


def tick() -> float:
    """The bpy.app.timers function; returns the seconds until it should run again. Never raises
    (a timer that raises is unregistered by Blender)."""
    try:
        changed = state.runner.deliver() > 0
        changed = show_transfers(state.jobs) or changed
        settings = settings_from_prefs()
        now = time.monotonic()
        active = False
        for scene in bpy.data.scenes:
            for record in scene.edn.jobs if getattr(scene, "edn", None) is not None else ():
                active = job_sync.advance(settings, scene, record, now) or active
        server_status.check_when_due(settings, now)
        model_list.refresh_when_needed(settings)
        if changed:
            strips.tag_sequencer_redraw()
        return job_sync.POLL_S if active or state.busy() else IDLE_S
    except Exception:
        traceback.print_exc()
        return IDLE_S
