"""Blender child of bench/rig_accuracy.py: build a sample clip's scene, render some frames and project
the same frames' rig with the add-on's rig_poses.

    python bench/rig_accuracy_blender.py --spec SPEC.json --out DIR --first 1 --last 300 --step 3

Writes DIR/frames/NNNNN.png, DIR/rig.npz (the add-on's pose file) and DIR/height_px.npy (the figure's
standing height in pixels at its hips' depth, per frame). Runs under any Python that has bpy; the
parent, which runs MediaPipe, never imports bpy.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADDON_PACKAGE = "edn_addon_modules"


def addon_module(name: str):
    """An add-on module, imported without the add-on's __init__ (which registers classes)."""
    if ADDON_PACKAGE not in sys.modules:
        package = types.ModuleType(ADDON_PACKAGE)
        package.__path__ = [str(ROOT / "edn_blender_addon")]
        sys.modules[ADDON_PACKAGE] = package
    return importlib.import_module(f"{ADDON_PACKAGE}.{name}")


def standing_height_px(scene, rig, height_m: float) -> float:
    """Pixels the figure's height spans, upright at its hips' depth (a yardstick independent of the pose)."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    hips = rig.matrix_world @ rig.pose.bones["hips"].head
    up = Vector((0.0, 0.0, height_m))
    low, high = (world_to_camera_view(scene, scene.camera, point) for point in (hips - up / 2, hips + up / 2))
    return abs(high.y - low.y) * scene.render.resolution_y * scene.render.resolution_percentage / 100


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--first", type=int, required=True, help="first frame (1-based)")
    parser.add_argument("--last", type=int, required=True, help="last frame (inclusive)")
    parser.add_argument("--step", type=int, default=1, help="render and keep every STEP-th frame")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "server"))
    import bpy
    import numpy as np
    from edn_server.demo.samples.blender_scene import build_scene, render_frames
    from edn_server.demo.samples.spec import ClipSpec

    rig_poses = addon_module("rig_poses")
    pose_file = addon_module("pose_file")
    spec = ClipSpec.from_json(args.spec.read_text())
    frames = list(range(args.first, args.last + 1, args.step))
    scene = build_scene(bpy, spec)
    render_frames(bpy, scene, frames, args.out / "frames")
    shot = rig_poses.shot_for_scene(scene, first=args.first, last=args.last)
    poses = rig_poses.rig_poses(shot)
    kept = slice(None, None, args.step)
    pose_file.save_poses(pose_file.PoseData(poses.keypoints[kept], poses.detected[kept], poses.fps / args.step, poses.size,
                                            frame_start=poses.frame_start), args.out / "rig.npz")
    heights = []
    for frame in frames:
        scene.frame_set(frame)
        heights.append(standing_height_px(scene, shot.armature.evaluated_get(bpy.context.evaluated_depsgraph_get()), spec.body.height))
    np.save(args.out / "height_px.npy", np.asarray(heights))
    return 0


if __name__ == "__main__":
    sys.exit(main())
