"""EDN Motion Transfer: Everybody Dance Now in Blender's Sequencer.

Registration only. The add-on talks to the edn server (a separate process with PyTorch and
MediaPipe) over HTTP; see client.py, launcher.py and poller.py.
"""
from __future__ import annotations

import bpy

from . import (
    held_out_sample,
    model_operators,
    operators,
    panels,
    poller,
    pose_source_ops,
    pose_source_panel,
    preferences,
    properties,
    rig_properties,
)

_CLASSES = (*preferences.CLASSES, *properties.CLASSES, *rig_properties.CLASSES, *operators.CLASSES, *model_operators.CLASSES,
            *pose_source_ops.CLASSES, *panels.CLASSES, *pose_source_panel.CLASSES)


def register() -> None:
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    properties.register()
    rig_properties.register()
    poller.reset()
    if not bpy.app.timers.is_registered(poller.tick):
        bpy.app.timers.register(poller.tick, first_interval=0.5, persistent=True)


def unregister() -> None:
    if bpy.app.timers.is_registered(poller.tick):
        bpy.app.timers.unregister(poller.tick)
    held_out_sample.free()
    rig_properties.unregister()
    properties.unregister()
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
