"""Bone mappings without Blender: choosing a built-in, naming what is missing, custom mappings, and
face and heel points placed by the character's rest frame whatever way the rig faces."""
from __future__ import annotations

import numpy as np
import pytest
from addon_helpers import pure

rm = pure("rig_mapping")
L = pure("pose_file").LANDMARK_INDEX
MIXAMO_MINIMAL = ["Hips", "Spine", "Neck", "Head"] + [f"{side}{part}" for side in ("Left", "Right")
                                                      for part in ("Arm", "ForeArm", "Hand", "UpLeg", "Leg", "Foot")]


def test_every_built_in_mapping_covers_all_33_landmarks():
    for mapping in rm.BUILT_IN:
        assert sorted(mapping.points) == sorted(L), mapping.name
    assert rm.built_in("Mixamo") is rm.BUILT_IN[2]
    with pytest.raises(rm.RigMappingError, match="Rigify"):
        rm.built_in("Unreal")


def test_finger_toe_and_eye_bones_are_used_where_the_rig_has_them():
    plain = rm.detect_mapping(MIXAMO_MINIMAL)
    assert plain.points[L["left_index"]].bone == "LeftHand" and plain.points[L["left_foot_index"]].bone == "LeftFoot"
    assert plain.points[L["left_eye"]].bone == "Head"
    full = rm.detect_mapping([f"mixamorig1:{name}" for name in [*MIXAMO_MINIMAL, "LeftHandIndex3", "LeftToe_End", "LeftEye"]])
    assert full.name == "Mixamo (mixamorig1 bones)"
    assert full.points[L["left_index"]].bone == "mixamorig1:LeftHandIndex3"
    assert full.points[L["left_foot_index"]].bone == "mixamorig1:LeftToe_End"
    assert full.points[L["left_eye"]].bone == "mixamorig1:LeftEye" and full.points[L["right_eye"]].bone == "mixamorig1:Head"


def test_an_unknown_rig_is_told_which_bones_the_closest_mapping_misses():
    with pytest.raises(rm.RigMappingError) as err:
        rm.detect_mapping([name for name in MIXAMO_MINIMAL if name != "LeftFoot"] + ["LeftAnkle"], rig="Armature.002")
    message = str(err.value)
    assert "Armature.002" in message and "LeftFoot" in message and "Custom mapping" in message
    assert "Rigify" in message and "edn sample rig" in message  # the built-ins it tried
    assert "LeftArm" not in message  # only what is missing


def test_a_custom_mapping_must_name_real_landmarks_and_the_core_ones():
    core = [(name, name.upper(), "HEAD", 0.0) for name in rm.CORE_LANDMARKS]
    mapping = rm.custom_mapping([*core, ("nose", "HEAD_BONE", "TAIL", 0.2)])
    resolved = rm.resolve(mapping, [bone for _, bone, _, _ in core] + ["HEAD_BONE"])
    assert resolved.points[L["nose"]] == rm.PointSource("HEAD_BONE", "TAIL", 0.2)
    assert L["left_eye"] not in resolved.points
    with pytest.raises(rm.RigMappingError, match="left_ankle, right_ankle"):
        rm.custom_mapping(core[:4])
    with pytest.raises(rm.RigMappingError, match="'left_toe' is not a pose landmark"):
        rm.custom_mapping([*core, ("left_toe", "toe", "TAIL", 0.0)])
    with pytest.raises(rm.RigMappingError, match="HEAD_BONE"):
        rm.resolve(mapping, [bone for _, bone, _, _ in core])


def _rest_rig(turn_degrees: float, roll: np.ndarray) -> dict:
    """The minimal Mixamo rig at rest, turned about Z; every bone's axes rolled by `roll` about its Y."""
    turn = np.radians(turn_degrees)
    rz = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1]])
    layout = {"Head": ((0, 0, 1.55), (0, 0, 1.8)), "Hips": ((0, 0, 1.0), (0, 0, 1.1))}
    for side, x in (("Left", 1.0), ("Right", -1.0)):
        layout |= {f"{side}Arm": ((0.18 * x, 0, 1.45), (0.18 * x, 0, 1.17)), f"{side}UpLeg": ((0.1 * x, 0, 0.95), (0.1 * x, 0, 0.52)),
                   f"{side}Foot": ((0.1 * x, 0, 0.1), (0.1 * x, -0.12, 0.02))}
    rest = {}
    for name in MIXAMO_MINIMAL:
        head, tail = layout.get(name, ((0, 0, 0), (0, 0, 0.1)))
        head, tail = rz @ np.array(head, float), rz @ np.array(tail, float)
        y = (tail - head) / np.linalg.norm(tail - head)
        x = np.cross(y, [0.3, 0.5, 0.8])
        x /= np.linalg.norm(x)
        axes = np.stack([x, y, np.cross(x, y)], axis=1) @ roll
        rest[name] = rm.RestBone(head, tail, axes)
    return rest


def test_face_and_heel_points_follow_the_character_not_the_bone_roll_or_the_rigs_facing():
    mapping = rm.detect_mapping(MIXAMO_MINIMAL)

    def world_points(turn: float, roll_degrees: float) -> dict:
        a = np.radians(roll_degrees)
        roll = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        rest = _rest_rig(turn, roll)
        return {i: rest[bone].head + rest[bone].axes @ local for i, (bone, local) in rm.bone_space_points(mapping, rest).items()}

    facing = world_points(0.0, 0.0)
    nose, ear, heel, ankle = (facing[L[name]] for name in ("nose", "left_ear", "left_heel", "left_ankle"))
    assert nose[1] < -0.08 and nose[2] > 1.6  # in front of the head (the rig faces -Y) and up
    assert ear[0] > 0.05 and heel[1] > ankle[1] and heel[2] < ankle[2]  # left ear on +X; heel behind and below the ankle
    for turn, roll in ((0.0, 70.0), (90.0, 0.0), (200.0, -120.0)):
        other = world_points(turn, roll)
        t = np.radians(turn)
        back = np.array([[np.cos(t), np.sin(t), 0], [-np.sin(t), np.cos(t), 0], [0, 0, 1]])
        for index, point in facing.items():
            assert back @ other[index] == pytest.approx(point, abs=1e-9), (turn, roll, index)
