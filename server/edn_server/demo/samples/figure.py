"""The humanoid: an armature whose bones carry simple shapes (bone parenting, no skinning).

Runs inside the Blender child only. Built in the rest pose at the origin facing -Y (its left is
+X); every shape is placed in world space and then parented to its bone with the inverse of the
bone's rest matrix, so posing a bone moves its shapes rigidly. Uses only bpy/bmesh calls that are
the same in Blender 4.2 and 5.x.
"""
from __future__ import annotations

import bmesh
import bpy
from mathutils import Matrix, Vector

from .body import Color, Outfit, Skeleton
from .figure_parts import add_body_parts
from .poses import BONES

FORWARD = Vector((0.0, -1.0, 0.0))
UP = Vector((0.0, 0.0, 1.0))


class _Builder:
    def __init__(self, name: str, sk: Skeleton, outfit: Outfit, collection):
        self.name = name
        self.sk = sk
        self.outfit = outfit
        self.collection = collection
        self.materials: dict[str, bpy.types.Material] = {}
        self.sphere = self._sphere_mesh(f"{name}_sphere")

    # -- materials and primitive meshes --------------------------------------------------------

    def material(self, label: str, color: Color) -> bpy.types.Material:
        if label not in self.materials:
            mat = bpy.data.materials.new(f"{self.name}_{label}")
            mat.diffuse_color = (*color, 1.0)  # what Workbench's material colour mode shows
            mat.roughness = 0.8
            mat.metallic = 0.0
            self.materials[label] = mat
        return self.materials[label]

    def _sphere_mesh(self, name: str) -> bpy.types.Mesh:
        bm = bmesh.new()
        bmesh.ops.create_uvsphere(bm, u_segments=24, v_segments=14, radius=1.0)
        return self._finish(bm, name)

    @staticmethod
    def _finish(bm, name: str) -> bpy.types.Mesh:
        for face in bm.faces:
            face.smooth = True
        mesh = bpy.data.meshes.new(name)
        bm.to_mesh(mesh)
        bm.free()
        return mesh

    def _object(self, label: str, mesh: bpy.types.Mesh, mat: bpy.types.Material, matrix: Matrix) -> bpy.types.Object:
        if not mesh.materials:
            mesh.materials.append(mat)
        obj = bpy.data.objects.new(f"{self.name}_{label}", mesh)
        obj.material_slots[0].link = "OBJECT"  # shared meshes, own colour per object
        obj.material_slots[0].material = mat
        obj.matrix_world = matrix
        self.collection.objects.link(obj)
        return obj

    def ellipsoid(self, label: str, center, radii, mat, rotation: Matrix | None = None) -> bpy.types.Object:
        rot = (rotation or Matrix.Identity(3)).to_4x4()
        return self._object(label, self.sphere, mat, Matrix.Translation(Vector(center)) @ rot @ Matrix.Diagonal((*radii, 1.0)))

    def limb(self, label: str, top, bottom, r_top: float, r_bottom: float, mat) -> bpy.types.Object:
        """A tapered cylinder from `top` to `bottom`."""
        top, bottom = Vector(top), Vector(bottom)
        axis = bottom - top
        bm = bmesh.new()
        bmesh.ops.create_cone(bm, cap_ends=True, cap_tris=False, segments=20, radius1=r_bottom, radius2=r_top, depth=axis.length)
        mesh = self._finish(bm, f"{self.name}_{label}")
        rot = UP.rotation_difference(-axis.normalized()).to_matrix().to_4x4()  # cone's +Z end is `top`
        return self._object(label, mesh, mat, Matrix.Translation((top + bottom) / 2) @ rot)


def _bone_positions(sk: Skeleton) -> dict[str, tuple[Vector, Vector, str]]:
    """Each bone's head, tail and parent, in the rest pose."""
    h = sk.height
    bones: dict[str, tuple[Vector, Vector, str]] = {
        "hips": (Vector((0, 0, sk.hip_z)), Vector((0, 0, sk.hip_z + 0.05 * h)), ""),
        "spine": (Vector((0, 0, sk.hip_z)), Vector((0, 0, sk.waist_z)), "hips"),
        "chest": (Vector((0, 0, sk.waist_z)), Vector((0, 0, sk.shoulder_z)), "spine"),
        "neck": (Vector((0, 0, sk.shoulder_z)), Vector((0, 0, sk.neck_top_z)), "chest"),
        "head": (Vector((0, 0, sk.neck_top_z)), Vector((0, 0, h)), "neck"),
    }
    for side, sign in (("L", 1.0), ("R", -1.0)):
        shoulder = Vector((sign * sk.shoulder_x, 0, sk.shoulder_z - 0.02 * h))
        elbow = shoulder - Vector((0, 0, sk.upper_arm))
        wrist = elbow - Vector((0, 0, sk.forearm))
        bones[f"upper_arm.{side}"] = (shoulder, elbow, "chest")
        bones[f"forearm.{side}"] = (elbow, wrist, f"upper_arm.{side}")
        bones[f"hand.{side}"] = (wrist, wrist - Vector((0, 0, sk.hand)), f"forearm.{side}")
        hip = Vector((sign * sk.hip_x, 0, sk.hip_z))
        knee = hip - Vector((0, 0, sk.thigh))
        ankle = Vector((hip.x, 0, sk.ankle_z))
        bones[f"thigh.{side}"] = (hip, knee, "hips")
        bones[f"shin.{side}"] = (knee, ankle, f"thigh.{side}")
        bones[f"foot.{side}"] = (ankle, ankle + FORWARD * (sk.foot * 0.7), f"shin.{side}")
    return bones


def _build_armature(name: str, sk: Skeleton, collection) -> bpy.types.Object:
    data = bpy.data.armatures.new(f"{name}_rig")
    rig = bpy.data.objects.new(name, data)
    collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    positions = _bone_positions(sk)
    for bone_name in BONES:
        head, tail, parent = positions[bone_name]
        bone = data.edit_bones.new(bone_name)
        bone.head, bone.tail = head, tail
        # Local Z forwards on every bone: x rotations then swing limbs forwards (see poses.py).
        bone.align_roll(UP if bone_name.startswith("foot") else FORWARD)
        if parent:
            bone.parent = data.edit_bones[parent]
    bpy.ops.object.mode_set(mode="OBJECT")
    for pose_bone in rig.pose.bones:
        pose_bone.rotation_mode = "YZX"
    return rig


def _attach(obj: bpy.types.Object, rig: bpy.types.Object, bone_name: str) -> None:
    bone = rig.data.bones[bone_name]
    obj.parent = rig
    obj.parent_type = "BONE"
    obj.parent_bone = bone_name
    # A bone child hangs from the bone's tail; undo the rest transform so world placement holds.
    obj.matrix_parent_inverse = (rig.matrix_world @ bone.matrix_local @ Matrix.Translation((0, bone.length, 0))).inverted()


def build_figure(name: str, sk: Skeleton, outfit: Outfit, collection, belly: float = 1.0) -> bpy.types.Object:
    """The rigged figure; returns the armature object (move it to place the dancer)."""
    rig = _build_armature(name, sk, collection)
    b = _Builder(name, sk, outfit, collection)
    for bone_name, obj in add_body_parts(b, sk, outfit, _bone_positions(sk), belly):
        _attach(obj, rig, bone_name)
    return rig
