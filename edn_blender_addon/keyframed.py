"""Keyframed normalization: the sidebar's Scale, Offset X, Offset Y and Smoothing sampled on every
timeline frame a strip shows (their F-curves on the scene's edn settings), sent as one value per
frame only where they vary; a constant or unanimated setting sends one number, as before."""
from __future__ import annotations

import bpy

from .jobstate import MediaRange

# setting → (request key, where in the params, bounds the server accepts)
_SETTINGS = {"scale": ("scale", "normalization", (0.05, 10.0)), "offset_x": ("offset_x", "normalization", None),
             "offset_y": ("offset_y", "normalization", None), "smoothing": ("smooth", None, (0.0, 10.0))}


def _fcurves(scene) -> list:
    """The F-curves animating the scene: 4.4+ keeps them in the action slot's channel bag (5.x only there)."""
    animation = scene.animation_data
    action = animation.action if animation is not None else None
    if action is None:
        return []
    if getattr(action, "layers", None) is not None and getattr(animation, "action_slot", None) is not None:
        from bpy_extras import anim_utils

        bag = anim_utils.action_get_channelbag_for_slot(action, animation.action_slot)
        return list(bag.fcurves) if bag is not None else []
    return list(action.fcurves)


def sample(scene: bpy.types.Scene, frames: range) -> dict[str, float | list[float]]:
    """Each setting over `frames` (timeline frames): one number when it does not change there."""
    curves = {curve.data_path: curve for curve in _fcurves(scene) if curve.array_index == 0}
    values: dict[str, float | list[float]] = {}
    for name, (_, _, bounds) in _SETTINGS.items():
        curve = curves.get(f"edn.{name}")
        if curve is None or curve.mute or not len(frames):
            values[name] = float(getattr(scene.edn, name))
            continue
        per_frame = [float(curve.evaluate(frame)) for frame in frames]
        if bounds is not None:  # an F-curve may overshoot what the slider allows
            per_frame = [min(max(value, bounds[0]), bounds[1]) for value in per_frame]
        values[name] = per_frame[0] if max(per_frame) == min(per_frame) else per_frame
    return values


def apply(scene: bpy.types.Scene, params: dict, shown: MediaRange) -> dict:
    """`params` (a preview or transfer request) with the settings sampled over the strip's frames."""
    values = sample(scene, range(shown.timeline_start, shown.timeline_start + shown.count))
    for name, (key, section, _) in _SETTINGS.items():
        target = params.setdefault(section, {}) if section else params
        if key in target:
            target[key] = values[name]
    return params
