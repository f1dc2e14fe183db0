"""Blender child process: build the sample scene from a spec and render its frames to PNG.

    python -m edn_server.demo.samples.blender_scene --spec SPEC.json --out DIR [--frames 1,45]

Run by `render.py` in a subprocess so the edn process never imports bpy. Prints one line
`EDN-PROGRESS <done> <total>` per frame written; exits 3 with `EDN-ERROR RENDERER_MISSING ...`
on stderr when bpy cannot be imported. Imports only the standard library, bpy and pure-Python
modules, so any Python that has bpy can run it.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

PROGRESS_PREFIX = "EDN-PROGRESS"
ERROR_PREFIX = "EDN-ERROR"
EXIT_NO_BPY = 3


def _reset_blender(bpy) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.use_preferences_save = False  # the lights below must not leak into the user's Blender


def _setup_render(bpy, scene, spec) -> None:
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y = spec.size
    scene.render.resolution_percentage = 100
    scene.render.fps = round(spec.fps)
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.display_settings.display_device = "sRGB"
    # Standard, not AgX/Filmic: colours come out as chosen. Bright light under Standard washes
    # out the skin and costs the detector accuracy, so the lights below stay moderate.
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    # FXAA without Workbench shadows: ~5x faster than 8-sample AA with shadows, which here only
    # darkened the wall and gave the detector nothing (no contact shadow under the feet).
    scene.display.render_aa = "FXAA"
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.studio_light = "Default"  # the preferences' solid lights, set below
    shading.color_type = "MATERIAL"
    shading.show_shadows = False
    shading.show_cavity = False
    shading.show_specular_highlight = False
    _two_soft_lights(bpy)


def _two_soft_lights(bpy) -> None:
    """Workbench ignores lamp objects; its studio lighting is the preferences' solid lights. A soft
    key light from the upper left and a dimmer, softer fill from the right, plus some ambient."""
    system = bpy.context.preferences.system
    lights = system.solid_lights
    key, fill = lights[0], lights[1]
    key.use, key.smooth = True, 0.8
    key.diffuse_color, key.specular_color = (0.62, 0.60, 0.57), (0.0, 0.0, 0.0)
    key.direction = (-0.45, 0.45, 0.77)
    fill.use, fill.smooth = True, 1.0
    fill.diffuse_color, fill.specular_color = (0.30, 0.31, 0.33), (0.0, 0.0, 0.0)
    fill.direction = (0.7, 0.1, 0.7)
    for extra in lights[2:]:
        extra.use = False
    system.light_ambient = (0.26, 0.26, 0.26)


def _add_camera(bpy, scene, spec) -> None:
    from mathutils import Vector

    cam = spec.camera
    data = bpy.data.cameras.new("camera")
    data.sensor_fit = "VERTICAL"
    data.sensor_height = 24.0
    data.lens = 12.0 / math.tan(math.radians(cam.vertical_fov_deg) / 2)
    obj = bpy.data.objects.new("camera", data)
    obj.location = cam.location
    obj.rotation_euler = (Vector(cam.look_at) - Vector(cam.location)).to_track_quat("-Z", "Y").to_euler()
    scene.collection.objects.link(obj)
    scene.camera = obj


def _add_room(bpy, scene) -> None:
    import bmesh

    def plane(name, verts, color):
        bm = bmesh.new()
        bm.faces.new([bm.verts.new(v) for v in verts])
        mesh = bpy.data.meshes.new(name)
        bm.to_mesh(mesh)
        bm.free()
        mat = bpy.data.materials.new(name)
        mat.diffuse_color = (*color, 1.0)
        mesh.materials.append(mat)
        scene.collection.objects.link(bpy.data.objects.new(name, mesh))

    plane("floor", [(-15, -15, 0), (15, -15, 0), (15, 6, 0), (-15, 6, 0)], (0.50, 0.50, 0.50))
    plane("wall", [(-15, 6, 0), (15, 6, 0), (15, 6, 12), (-15, 6, 12)], (0.62, 0.62, 0.60))


def _animate(rig, keys) -> None:
    for key in keys:
        for bone_name, angles in key.pose.items():
            pose_bone = rig.pose.bones[bone_name]
            pose_bone.rotation_euler = tuple(math.radians(a) for a in angles)
            pose_bone.keyframe_insert("rotation_euler", frame=key.frame)
        rig.location = (key.x, key.y, -key.drop)
        rig.rotation_euler = (0.0, 0.0, math.radians(key.yaw))
        rig.keyframe_insert("location", frame=key.frame)
        rig.keyframe_insert("rotation_euler", frame=key.frame)


def build_scene(bpy, spec):
    from .body import skeleton
    from .choreography import choreograph
    from .figure import build_figure

    _reset_blender(bpy)
    scene = bpy.context.scene
    _setup_render(bpy, scene, spec)
    _add_camera(bpy, scene, spec)
    _add_room(bpy, scene)
    rig = build_figure(spec.role, skeleton(spec.body), spec.outfit, scene.collection, belly=spec.body.belly)
    _animate(rig, choreograph(spec))
    scene.frame_start, scene.frame_end = 1, spec.frame_count
    return scene


def render_frames(bpy, scene, frames: list[int], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for done, frame in enumerate(frames, start=1):
        scene.frame_set(frame)
        scene.render.filepath = str(out / f"{frame:05d}.png")
        bpy.ops.render.render(write_still=True)
        print(f"{PROGRESS_PREFIX} {done} {len(frames)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, required=True, help="ClipSpec JSON file")
    parser.add_argument("--out", type=Path, required=True, help="folder for NNNNN.png frames")
    parser.add_argument("--frames", default=None, help="comma-separated 1-based frames (default: all)")
    args = parser.parse_args(argv)
    try:
        import bpy
    except ImportError as exc:
        print(f"{ERROR_PREFIX} RENDERER_MISSING {exc}", file=sys.stderr, flush=True)
        return EXIT_NO_BPY
    from .spec import ClipSpec

    spec = ClipSpec.from_json(args.spec.read_text())
    frames = [int(f) for f in args.frames.split(",")] if args.frames else list(range(1, spec.frame_count + 1))
    scene = build_scene(bpy, spec)
    render_frames(bpy, scene, frames, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
