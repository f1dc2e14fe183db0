"""Rig settings, saved with each rig scene (the scene a Scene strip shows): which armature dances and
how its bones map to the pose landmarks (a built-in mapping, or a small custom landmark → bone table)."""

import bpy
from bpy.props import CollectionProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from .pose_file import LANDMARK_NAMES
from .rig_mapping import CORE_LANDMARKS, HEAD, TAIL, RigMapping, built_in, custom_mapping

MAPPINGS = [
    ("AUTO", "Auto", "The built-in mapping whose bones the armature has (Rigify, Mixamo or the edn sample rig)"),
    ("RIGIFY", "Rigify", "Rigify's meta-rig or a generated rig (ORG-/DEF- bones)"),
    ("MIXAMO", "Mixamo", "Mixamo bone names, with or without the mixamorig: prefix"),
    ("SAMPLE", "Sample", "The edn sample dancers' rig"),
    ("CUSTOM", "Custom", "Your own table: each landmark from a bone's head or tail"),
]
_BUILT_IN_NAMES = {"RIGIFY": "Rigify", "MIXAMO": "Mixamo", "SAMPLE": "edn sample rig"}
_LANDMARK_ITEMS = [(name, name.replace("_", " ").capitalize(), f"Pose landmark '{name}'") for name in LANDMARK_NAMES]
_END_ITEMS = [(HEAD, "Head", "The bone's head (where it starts)"), (TAIL, "Tail", "The bone's tail (where it ends)")]


def _is_armature(self, obj) -> bool:
    return obj.type == "ARMATURE"


class EDN_PG_bone_point(bpy.types.PropertyGroup):
    """One row of a custom mapping: a landmark sits on a bone's head or tail, moved along the bone."""

    landmark: EnumProperty(name="Landmark", items=_LANDMARK_ITEMS, description="The pose landmark this row places")
    bone: StringProperty(name="Bone", description="Name of the armature's bone")
    end: EnumProperty(name="End", items=_END_ITEMS, default=HEAD)
    along: FloatProperty(name="Along", default=0.0, soft_min=-1.0, soft_max=1.0,
                         description="Move the point along the bone, in bone lengths (negative: back towards the head)")


class EDN_PG_rig(bpy.types.PropertyGroup):
    armature: PointerProperty(name="Armature", type=bpy.types.Object, poll=_is_armature,
                              description="The armature that dances (empty: the first one a built-in mapping fits)")
    mapping: EnumProperty(name="Mapping", items=MAPPINGS, default="AUTO", description="Which bone stands for each landmark")
    custom: CollectionProperty(type=EDN_PG_bone_point)
    custom_index: IntProperty(name="Row", default=0)

    def rig_mapping(self) -> RigMapping | None:
        """The chosen mapping (None: Auto); RigMappingError when a custom table lacks what it needs."""
        if self.mapping == "AUTO":
            return None
        if self.mapping == "CUSTOM":
            return custom_mapping((row.landmark, row.bone, row.end, row.along) for row in self.custom)
        return built_in(_BUILT_IN_NAMES[self.mapping])


def start_custom_table(settings: EDN_PG_rig) -> None:
    """A new custom table holds the landmarks normalization needs, for the artist to name bones for."""
    settings.custom.clear()
    for landmark in CORE_LANDMARKS:
        row = settings.custom.add()
        row.landmark = landmark


CLASSES = (EDN_PG_bone_point, EDN_PG_rig)


def register() -> None:
    bpy.types.Scene.edn_rig = PointerProperty(type=EDN_PG_rig)


def unregister() -> None:
    del bpy.types.Scene.edn_rig
