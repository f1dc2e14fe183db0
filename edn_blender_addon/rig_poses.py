"""An animated armature seen through its scene's camera, as edn poses: the mapped bone points in world
space frame by frame (the evaluated depsgraph, so constraints, drivers and imported mocap count),
projected into pixels of the scene's render size, y down like the detector's pixels.

Points behind the camera or outside the frame are not visible (visibility 0), as the detector would
report them; a frame with fewer than two of the shoulders and hips in view has nobody detected. A rig out of view for
the whole range raises NoPersonInView (the server's NO_PERSON).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import bpy
import numpy as np
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

from .pose_file import LANDMARK_COUNT, LANDMARK_INDEX, PoseData, save_poses
from .rig_mapping import ResolvedMapping, RestBone, RigMapping, RigMappingError, bone_space_points, detect_mapping, resolve

_HIPS = (LANDMARK_INDEX["left_hip"], LANDMARK_INDEX["right_hip"])
_TORSO = (LANDMARK_INDEX["left_shoulder"], LANDMARK_INDEX["right_shoulder"], *_HIPS)


class RigSceneProblem(Exception):
    """The scene cannot give poses (no camera, no armature); the message says what to add."""

    code = "BAD_RIG_SCENE"


class NoPersonInView(Exception):
    """The rig is behind the camera or outside the frame in every frame of the range."""

    code = "NO_PERSON"


@dataclasses.dataclass(frozen=True)
class RigShot:
    """What to sample: an armature in a scene with a camera, over scene frames first..last (inclusive,
    Blender's way). `mapping` None picks the built-in mapping that fits the armature."""

    scene: bpy.types.Scene
    armature: bpy.types.Object
    first: int
    last: int
    mapping: RigMapping | None = None


def scene_armatures(scene: bpy.types.Scene) -> list[bpy.types.Object]:
    return sorted((obj for obj in scene.objects if obj.type == "ARMATURE"), key=lambda obj: obj.name)


def rig_scene_problem(scene: bpy.types.Scene) -> str | None:
    """What a Scene strip's scene lacks to be a rig source (for an operator's poll), or None."""
    missing = [what for what, ok in (("active camera", scene.camera is not None), ("armature", bool(scene_armatures(scene)))) if not ok]
    return f"Scene '{scene.name}' has no {' and no '.join(missing)}." if missing else None


def shot_for_scene(scene: bpy.types.Scene, armature: bpy.types.Object | None = None, first: int | None = None,
                   last: int | None = None, mapping: RigMapping | None = None) -> RigShot:
    """A RigShot with defaults: the scene's frame range, and with no armature given the first (by
    name) that a built-in mapping fits."""
    problem = rig_scene_problem(scene)
    if problem:
        raise RigSceneProblem(f"{problem} Add what is missing, or pick another scene.")
    if armature is None:
        candidates = scene_armatures(scene)
        fitting = [obj for obj in candidates if _fits(obj)]
        armature = fitting[0] if fitting else candidates[0]  # the first one's error names its missing bones
    first = scene.frame_start if first is None else first
    last = scene.frame_end if last is None else last
    if last < first:
        raise RigSceneProblem(f"Frames {first}..{last} are an empty range; the last frame must not come before the first.")
    return RigShot(scene, armature, first, last, mapping)


def _fits(armature: bpy.types.Object) -> bool:
    try:
        detect_mapping(armature.data.bones.keys(), armature.name)
    except RigMappingError:
        return False
    return True


def fitted_mapping(armature: bpy.types.Object, mapping: RigMapping | None = None) -> ResolvedMapping:
    """The mapping for this armature (given, or the built-in that fits); RigMappingError names missing bones."""
    bones = armature.data.bones.keys()
    return detect_mapping(bones, armature.name) if mapping is None else resolve(mapping, bones, armature.name)


def _rest_bones(armature: bpy.types.Object, names: set[str]) -> dict[str, RestBone]:
    rest = {}
    for name in names:
        bone = armature.data.bones[name]
        axes = np.array(bone.matrix_local.to_3x3(), dtype=float)
        rest[name] = RestBone(np.array(bone.head_local, dtype=float), np.array(bone.tail_local, dtype=float), axes)
    return rest


def _depsgraph(scene: bpy.types.Scene) -> bpy.types.Depsgraph:
    """The scene's own evaluated state: a Scene strip's scene need not be the window's."""
    context_layer = getattr(bpy.context, "view_layer", None)
    layer = context_layer if getattr(bpy.context, "scene", None) == scene and context_layer else scene.view_layers[0]
    return layer.depsgraph


def render_size(scene: bpy.types.Scene) -> tuple[int, int]:
    """Pixels of a render of the scene (resolution times its percentage)."""
    scale = scene.render.resolution_percentage / 100
    return max(1, round(scene.render.resolution_x * scale)), max(1, round(scene.render.resolution_y * scale))


def _project(scene, camera, world: list[Vector], hips: Vector, size: tuple[int, int]) -> np.ndarray:
    """(points, 4) of x, y pixels (y down), z relative depth in pixels (MediaPipe's sense: hips 0,
    nearer negative), visibility 1 in front of the camera and inside the frame, else 0."""
    width, height = size
    view = np.array([tuple(world_to_camera_view(scene, camera, point)) for point in world], dtype=float)
    out = np.zeros((len(world), 4), dtype=np.float32)
    out[:, 0] = view[:, 0] * width
    out[:, 1] = (1.0 - view[:, 1]) * height
    inside = (view[:, 2] > 0) & (view[:, 0] >= 0) & (view[:, 0] <= 1) & (view[:, 1] >= 0) & (view[:, 1] <= 1)
    out[:, 3] = inside
    right = camera.matrix_world.to_3x3().normalized() @ Vector((1.0, 0.0, 0.0))
    near = world_to_camera_view(scene, camera, hips)
    px_per_unit = abs(world_to_camera_view(scene, camera, hips + right).x - near.x) * width
    out[:, 2] = (view[:, 2] - near.z) * px_per_unit
    return out


def rig_poses(shot: RigShot) -> PoseData:
    """Sample and project every frame of the shot; the scene is left on the frame it was on.
    Raises RigMappingError (missing bones) or NoPersonInView."""
    mapping = fitted_mapping(shot.armature, shot.mapping)
    bone_points = bone_space_points(mapping, _rest_bones(shot.armature, {s.bone for s in mapping.points.values()}))
    order = sorted(bone_points)
    scene, size = shot.scene, render_size(shot.scene)
    frames = shot.last - shot.first + 1
    keypoints = np.zeros((frames, LANDMARK_COUNT, 4), dtype=np.float32)
    detected = np.zeros(frames, dtype=bool)
    was_on = scene.frame_current
    try:
        for i, frame in enumerate(range(shot.first, shot.last + 1)):
            scene.frame_set(frame)
            depsgraph = _depsgraph(scene)
            rig = shot.armature.evaluated_get(depsgraph)
            camera = scene.camera.evaluated_get(depsgraph)
            world = [rig.matrix_world @ (rig.pose.bones[bone_points[k][0]].matrix @ Vector(bone_points[k][1])) for k in order]
            hips = (world[order.index(_HIPS[0])] + world[order.index(_HIPS[1])]) / 2
            projected = _project(scene, camera, world, hips, size)
            seen = dict(zip(order, projected[:, 3] > 0, strict=True))
            if sum(seen[k] for k in _TORSO) >= 2:
                detected[i] = True
                keypoints[i, order] = projected
    finally:
        scene.frame_set(was_on)
    if not detected.any():
        raise NoPersonInView(f"Armature '{shot.armature.name}' is behind the camera or outside its frame in every frame "
                             f"{shot.first}..{shot.last} of scene '{scene.name}'. Aim the camera at it or move the rig into view.")
    fps = scene.render.fps / scene.render.fps_base
    return PoseData(keypoints, detected, fps, size, frame_start=shot.first - scene.frame_start)


def write_rig_poses(shot: RigShot, path: str | os.PathLike) -> Path:
    """rig_poses written as an edn pose file (the server's PoseSequence.load reads it)."""
    return save_poses(rig_poses(shot), path)
