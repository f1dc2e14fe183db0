"""A rig as the source of poses: built-in mappings fit real rig layouts (Rigify's own meta-rig, Mixamo
names, a BVH through Blender's importer), and the projection lands where the camera sees the bones."""
from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np
import pytest
from addon_helpers import ROOT, addon_module, pure

bpy = pytest.importorskip("bpy")
rm = pure("rig_mapping")
rp = addon_module("rig_poses")
L = pure("pose_file").LANDMARK_INDEX

# A minimal Mixamo skeleton, facing -Y (its left is +X): bone → (head, tail, parent).
MIXAMO_MINIMAL = {
    "Hips": ((0, 0, 1.0), (0, 0, 1.1), None), "Spine": ((0, 0, 1.1), (0, 0, 1.4), "Hips"),
    "Neck": ((0, 0, 1.45), (0, 0, 1.55), "Spine"), "Head": ((0, 0, 1.55), (0, 0, 1.8), "Neck"),
}
for _side, _x in (("Left", 1.0), ("Right", -1.0)):
    MIXAMO_MINIMAL |= {
        f"{_side}Arm": ((0.18 * _x, 0, 1.45), (0.18 * _x, 0, 1.17), "Spine"),
        f"{_side}ForeArm": ((0.18 * _x, 0, 1.17), (0.18 * _x, 0, 0.92), f"{_side}Arm"),
        f"{_side}Hand": ((0.18 * _x, 0, 0.92), (0.18 * _x, 0, 0.83), f"{_side}ForeArm"),
        f"{_side}UpLeg": ((0.1 * _x, 0, 0.95), (0.1 * _x, 0, 0.52), "Hips"),
        f"{_side}Leg": ((0.1 * _x, 0, 0.52), (0.1 * _x, 0, 0.1), f"{_side}UpLeg"),
        f"{_side}Foot": ((0.1 * _x, 0, 0.1), (0.1 * _x, -0.12, 0.02), f"{_side}Leg"),
    }


@pytest.fixture
def empty_scene():
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 400, 300, 100
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.frame_start, scene.frame_end = 1, 3
    return scene


def add_camera(scene, location=(0.0, -6.0, 1.0), look_at=(0.0, 0.0, 1.0)):
    from mathutils import Vector

    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.location = location
    camera.rotation_euler = (Vector(look_at) - Vector(location)).to_track_quat("-Z", "Y").to_euler()
    scene.collection.objects.link(camera)
    scene.camera = camera
    return camera


def build_armature(scene, bones: dict, prefix: str = "", name: str = "dancer"):
    rig = bpy.data.objects.new(name, bpy.data.armatures.new(name))
    scene.collection.objects.link(rig)
    if bpy.context.scene != scene:
        bpy.context.window.scene = scene
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    for bone_name, (head, tail, _) in bones.items():
        bone = rig.data.edit_bones.new(prefix + bone_name)
        bone.head, bone.tail = head, tail
    for bone_name, (_, _, parent) in bones.items():
        if parent:
            rig.data.edit_bones[prefix + bone_name].parent = rig.data.edit_bones[prefix + parent]
    bpy.ops.object.mode_set(mode="OBJECT")
    return rig


def raise_left_arm(rig, prefix: str, frames_degrees: dict[int, float]) -> None:
    """Keys swinging the left arm `degrees` sideways up (about the world's -Y axis, in the bone's own axes)."""
    from mathutils import Matrix, Vector

    bone = rig.pose.bones[prefix + "LeftArm"]
    bone.rotation_mode = "XYZ"
    axis = bone.bone.matrix_local.to_3x3().inverted() @ Vector((0.0, -1.0, 0.0))
    for frame, degrees in frames_degrees.items():
        bone.rotation_euler = Matrix.Rotation(math.radians(degrees), 3, axis).to_euler("XYZ")
        bone.keyframe_insert("rotation_euler", frame=frame)


def test_minimal_mixamo_rig_maps_and_projects_where_the_camera_sees_it(empty_scene):
    for prefix in ("", "mixamorig:"):
        rig = build_armature(empty_scene, MIXAMO_MINIMAL, prefix, name=f"mixamo{prefix}")
        mapping = rm.detect_mapping(rig.data.bones.keys())
        assert mapping.name.startswith("Mixamo") and len(mapping.points) == 33
    add_camera(empty_scene)
    raise_left_arm(rig, "mixamorig:", {1: 0.0, 3: 90.0})
    poses = rp.rig_poses(rp.shot_for_scene(empty_scene, rig))
    k = poses.keypoints
    assert poses.size == (400, 300) and poses.fps == 24 and poses.detected.all() and (k[:, :, 3] == 1).all()
    assert (k[:, L["left_shoulder"], 0] > 200).all() and (k[:, L["right_shoulder"], 0] < 200).all()  # facing us: left on the right
    assert (k[:, L["nose"], 1] < k[:, L["left_shoulder"], 1]).all() and (k[:, L["left_ankle"], 1] > k[:, L["left_knee"], 1]).all()
    assert (k[:, L["nose"], 2] < k[:, L["left_ear"], 2]).all()  # the nose is nearer the camera than the ears
    shoulder, wrist = k[:, L["left_shoulder"], :2], k[:, L["left_wrist"], :2]
    assert wrist[0, 1] > shoulder[0, 1] + 40 and abs(wrist[2, 1] - shoulder[2, 1]) < 5  # hanging, then raised sideways
    assert wrist[2, 0] > shoulder[2, 0] + 40
    for tip in ("left_index", "left_pinky", "left_thumb"):  # no finger bones: the hand bone gives the tips
        assert np.linalg.norm(k[:, L[tip], :2] - wrist, axis=1).max() < 25


def test_missing_bones_are_named(empty_scene):
    bones = {name: bone for name, bone in MIXAMO_MINIMAL.items() if name not in ("LeftForeArm", "RightUpLeg")}
    bones["LeftHand"] = (*bones["LeftHand"][:2], "LeftArm")
    bones["RightLeg"] = (*bones["RightLeg"][:2], "Hips")
    rig = build_armature(empty_scene, bones)
    add_camera(empty_scene)
    with pytest.raises(rm.RigMappingError) as err:
        rp.rig_poses(rp.shot_for_scene(empty_scene, rig))
    assert "LeftForeArm" in str(err.value) and "RightUpLeg" in str(err.value) and "Mixamo" in str(err.value)
    custom = rm.custom_mapping([("left_shoulder", "LeftArm", "HEAD", 0), ("right_shoulder", "RightArm", "HEAD", 0),
                                ("left_hip", "LeftUpLeg", "HEAD", 0), ("right_hip", "RightLeg", "HEAD", -1.0),
                                ("left_ankle", "LeftFoot", "HEAD", 0), ("right_ankle", "RightFoot", "HEAD", 0)])
    poses = rp.rig_poses(rp.shot_for_scene(empty_scene, rig, mapping=custom))
    assert poses.detected.all() and (poses.keypoints[:, L["nose"], 3] == 0).all()  # left out of the mapping: never visible
    hip, knee_start = poses.keypoints[0, L["right_hip"], :2], poses.keypoints[0, L["left_hip"], :2]
    assert abs(hip[1] - knee_start[1]) < 2  # RightLeg's head moved one bone length back up: where the hip is


def test_points_out_of_view_are_not_visible_and_a_rig_never_in_view_is_no_person(empty_scene):
    rig = build_armature(empty_scene, MIXAMO_MINIMAL)
    camera = add_camera(empty_scene, location=(0.0, -2.0, 1.6), look_at=(0.0, 0.0, 1.6))  # close up on the head
    poses = rp.rig_poses(rp.shot_for_scene(empty_scene, rig))
    assert poses.detected.all()
    vis = poses.keypoints[0, :, 3]
    assert vis[L["nose"]] == 1 and vis[L["left_shoulder"]] == 1 and vis[L["left_ankle"]] == 0
    camera.location = (0.0, 3.0, 1.0)  # the rig is now behind the camera, which still looks along +Y
    with pytest.raises(rp.NoPersonInView) as err:
        rp.rig_poses(rp.shot_for_scene(empty_scene, rig))
    assert err.value.code == "NO_PERSON" and "dancer" in str(err.value)
    assert rp.rig_scene_problem(empty_scene) is None
    bpy.data.objects.remove(camera)
    assert rp.rig_scene_problem(empty_scene) == f"Scene '{empty_scene.name}' has no active camera."
    bpy.data.objects.remove(rig)
    with pytest.raises(rp.RigSceneProblem, match="has no active camera and no armature"):
        rp.shot_for_scene(empty_scene)


def test_rig_in_another_scene_than_the_windows_is_sampled_in_its_own_scene(empty_scene):
    other = bpy.data.scenes.new("rig scene")
    other.render.resolution_x, other.render.resolution_y = 320, 240
    other.frame_start, other.frame_end = 1, 3
    rig = build_armature(other, MIXAMO_MINIMAL)
    add_camera(other)
    raise_left_arm(rig, "", {1: 0.0, 3: 90.0})
    bpy.context.window.scene = empty_scene  # the Sequencer's scene; the rig's is a Scene strip's
    poses = rp.rig_poses(rp.shot_for_scene(other))
    assert poses.size == (320, 240)
    shoulder, wrist = poses.keypoints[:, L["left_shoulder"], 1], poses.keypoints[:, L["left_wrist"], 1]
    assert wrist[0] > shoulder[0] + 30 and abs(wrist[2] - shoulder[2]) < 5


@pytest.fixture
def rigify():
    import addon_utils

    addon_utils.enable("rigify", default_set=True)
    yield
    addon_utils.disable("rigify", default_set=True)


def test_rigify_meta_rig_maps_without_a_custom_mapping(empty_scene, rigify):
    bpy.ops.object.armature_human_metarig_add()
    meta = bpy.context.object
    bones = set(meta.data.bones.keys())
    assert rm.detect_mapping(bones).name == "Rigify"
    for prefix in ("ORG-", "DEF-"):  # a generated rig's original and deforming bones, beside its controls
        generated = {prefix + name for name in bones} | {"root", "torso", "MCH-spine.006", "tweak_spine.006"}
        assert rm.detect_mapping(generated).name == f"Rigify ({prefix[:-1]} bones)"
    add_camera(empty_scene)
    poses = rp.rig_poses(rp.shot_for_scene(empty_scene, meta))
    k = poses.keypoints[0]
    assert poses.detected.all() and k[L["left_shoulder"], 0] > k[L["right_shoulder"], 0]
    assert k[L["left_eye"], 1] < k[L["mouth_left"], 1] < k[L["left_shoulder"], 1] < k[L["left_hip"], 1] < k[L["left_ankle"], 1]


def test_a_generated_rigify_rig_is_sampled_through_its_controls(empty_scene, rigify):
    """Rigify's own generator (slow: ~30 s): its ORG- and DEF- bones follow the controls only through
    constraints, so this holds only when the evaluated depsgraph is read."""
    bpy.ops.object.armature_human_metarig_add()
    meta = bpy.context.object
    bpy.ops.pose.rigify_generate()
    rig = next(obj for obj in empty_scene.objects if obj.type == "ARMATURE" and obj is not meta)
    meta.hide_viewport = meta.hide_render = True
    add_camera(empty_scene)
    from mathutils import Matrix

    torso = rig.pose.bones["torso"]
    for frame, lift in ((1, 0.0), (3, 0.3)):
        torso.matrix = Matrix.Translation((0.0, 0.0, lift)) @ torso.bone.matrix_local  # up in armature space
        torso.keyframe_insert("location", frame=frame)
    assert rm.detect_mapping(rig.data.bones.keys()).name == "Rigify (ORG bones)"
    deform = dataclasses.replace(rm.built_in("Rigify"), prefix="DEF-")
    assert rp.fitted_mapping(rig, deform).name == "Rigify (DEF bones)"
    by_org = rp.rig_poses(rp.shot_for_scene(empty_scene, rig))
    by_def = rp.rig_poses(rp.shot_for_scene(empty_scene, rig, mapping=deform))
    shoulders = by_org.keypoints[:, L["left_shoulder"], 1]
    assert shoulders[0] - shoulders[2] > 20  # the torso control lifted the shoulders on screen
    assert np.abs(by_org.keypoints[:, 11:29, :2] - by_def.keypoints[:, 11:29, :2]).max() < 3


def _limb(names: tuple[str, str, str], offsets) -> tuple:
    return (names[0], offsets[0], [(names[1], offsets[1], [(names[2], offsets[2], [])])])


# joint, offset from its parent, children: Y up, facing +Z, CMU-style names (as many mocap BVH files have).
BVH_SKELETON = ("Hips", (0, 1.0, 0), [
    ("Spine", (0, 0.1, 0), [
        ("Neck", (0, 0.4, 0), [("Head", (0, 0.1, 0), [])]),
        _limb(("LeftArm", "LeftForeArm", "LeftHand"), [(0.18, 0.3, 0), (0, -0.28, 0), (0, -0.25, 0)]),
        _limb(("RightArm", "RightForeArm", "RightHand"), [(-0.18, 0.3, 0), (0, -0.28, 0), (0, -0.25, 0)]),
    ]),
    _limb(("LeftUpLeg", "LeftLeg", "LeftFoot"), [(0.1, -0.05, 0), (0, -0.43, 0), (0, -0.42, 0)]),
    _limb(("RightUpLeg", "RightLeg", "RightFoot"), [(-0.1, -0.05, 0), (0, -0.43, 0), (0, -0.42, 0)]),
])


def _bvh_hierarchy(joint, order: list[str], depth: int = 0) -> str:
    name, offset, children = joint
    pad = "  " * depth
    order.append(name)
    channels = "6 Xposition Yposition Zposition" if depth == 0 else "3"
    text = (f"{pad}{'ROOT' if depth == 0 else 'JOINT'} {name}\n{pad}{{\n{pad}  OFFSET {' '.join(map(str, offset))}\n"
            f"{pad}  CHANNELS {channels} Zrotation Xrotation Yrotation\n")
    for child in children:
        text += _bvh_hierarchy(child, order, depth + 1)
    if not children:  # a leaf ends in an End Site: feet point forwards, the rest carry on their way
        end = (0, 0, 0.12) if "Foot" in name else tuple(0.4 * v for v in offset)
        text += f"{pad}  End Site\n{pad}  {{\n{pad}    OFFSET {' '.join(map(str, end))}\n{pad}  }}\n"
    return text + f"{pad}}}\n"


def write_bvh(path, left_arm_z_degrees: list[float]) -> None:
    """A small BVH whose left arm rises sideways (about Z), one frame per angle."""
    order: list[str] = []
    hierarchy = _bvh_hierarchy(BVH_SKELETON, order)
    frames = []
    for degrees in left_arm_z_degrees:
        values = [0.0, 1.0, 0.0] + [0.0] * (3 * len(order))
        values[3 + 3 * order.index("LeftArm")] = degrees
        frames.append(" ".join(f"{v:g}" for v in values))
    path.write_text(f"HIERARCHY\n{hierarchy}MOTION\nFrames: {len(frames)}\nFrame Time: 0.0416667\n" + "\n".join(frames) + "\n")


def test_bvh_imported_with_blenders_importer_maps_and_projects(empty_scene, tmp_path):
    write_bvh(tmp_path / "raise.bvh", [0.0, 45.0, 90.0])
    bpy.ops.import_anim.bvh(filepath=str(tmp_path / "raise.bvh"), update_scene_fps=False, update_scene_duration=False)
    rig = next(obj for obj in empty_scene.objects if obj.type == "ARMATURE")
    assert rm.detect_mapping(rig.data.bones.keys()).name == "Mixamo"
    add_camera(empty_scene)
    poses = rp.rig_poses(rp.shot_for_scene(empty_scene))
    k = poses.keypoints
    assert poses.detected.all() and (k[:, L["left_ankle"], 3] == 1).all()
    rise = k[:, L["left_shoulder"], 1] - k[:, L["left_wrist"], 1]  # pixels the wrist is above the shoulder
    assert rise[0] < -40 and rise[0] < rise[1] < rise[2] and abs(rise[2]) < 10
    assert k[0, L["left_shoulder"], 0] > k[0, L["right_shoulder"], 0]


def test_the_pose_file_is_read_by_the_servers_loader(empty_scene, tmp_path):
    sys.path.insert(0, str(ROOT / "server"))
    from edn_server.pose.sequence import PoseSequence

    rig = build_armature(empty_scene, MIXAMO_MINIMAL)
    add_camera(empty_scene)
    empty_scene.frame_start = 0
    path = rp.write_rig_poses(rp.shot_for_scene(empty_scene, rig, first=1, last=3), tmp_path / "rig.npz")
    loaded = PoseSequence.load(path)
    poses = rp.rig_poses(rp.shot_for_scene(empty_scene, rig, first=1, last=3))
    assert np.array_equal(loaded.keypoints, poses.keypoints) and loaded.detected.all() and len(loaded) == 3
    assert loaded.size == (400, 300) and loaded.fps == 24 and loaded.frame_start == 1 and not loaded.interpolated.any()
