"""A Scene strip as a motion source: the rig in the strip's scene, sampled over the frames the strip
shows (strip frames converted to the scene's own frames) and written as an edn pose file."""
from __future__ import annotations

import os

from . import jobstate
from .rig_mapping import RigMappingError
from .rig_poses import NoPersonInView, RigSceneProblem, rig_scene_problem, shot_for_scene, write_rig_poses

RIG_POSES_FILE = "rig_poses.npz"


class RigSourceProblem(Exception):
    """The Scene strip cannot give poses; the message says why and what to do."""


def scene_strip_problem(strip) -> str | None:
    """What the Scene strip's scene lacks (for an operator's poll: no sampling here), or None."""
    scene = strip.scene
    if scene is None:
        return f"Scene strip '{strip.name}' shows no scene; pick one in its Strip properties"
    problem = rig_scene_problem(scene)
    return problem.rstrip(".") + " (a rig source needs both)" if problem else None


def scene_frames(strip) -> jobstate.MediaRange:
    """The frames of its scene the strip shows: `first`/`end` count from the scene's frame_start,
    `timeline_start` is where the first of them sits on the Sequencer's timeline."""
    scene = strip.scene
    length = scene.frame_end - scene.frame_start + 1
    try:
        return jobstate.visible_media_range(strip.frame_start, strip.frame_final_start, strip.frame_final_end, length,
                                            getattr(strip, "animation_offset_start", 0))
    except ValueError as exc:
        raise RigSourceProblem(f"Scene strip '{strip.name}': {exc}.") from None


def write_strip_poses(strip, path: str | os.PathLike) -> jobstate.MediaRange:
    """Sample the strip's rig over the frames it shows into the pose file `path`; returns those frames."""
    problem = scene_strip_problem(strip)
    if problem:
        raise RigSourceProblem(problem + ".")
    scene, shown = strip.scene, scene_frames(strip)
    settings = scene.edn_rig
    try:
        shot = shot_for_scene(scene, settings.armature, first=scene.frame_start + shown.first,
                              last=scene.frame_start + shown.end - 1, mapping=settings.rig_mapping())
        write_rig_poses(shot, path)
    except (RigSceneProblem, RigMappingError, NoPersonInView) as exc:
        raise RigSourceProblem(str(exc)) from None
    return shown


def poses_path(output_dir: str) -> str:
    return os.path.join(output_dir, RIG_POSES_FILE)


def is_scene_strip(strip) -> bool:
    return strip is not None and strip.type == "SCENE"

