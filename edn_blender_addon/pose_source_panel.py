"""The sidebar's "Pose Source" subpanel: which poses the active strip will use, with the rig settings
of a Scene strip (armature, mapping, a custom landmark → bone table) or a movie strip's pose track."""
from __future__ import annotations

import bpy

from . import pose_sources, strips
from .panels import _SidebarPanel, wrapped


def _draw_rig(layout, strip) -> None:
    scene = strip.scene
    if scene is None:
        return
    settings = scene.edn_rig
    layout.use_property_split = True
    layout.prop(settings, "armature")
    layout.prop(settings, "mapping")
    if settings.mapping != "CUSTOM":
        return
    col = layout.column(align=True)
    col.use_property_split = False
    for index, row in enumerate(settings.custom):
        line = col.row(align=True)
        line.prop(row, "landmark", text="")
        line.prop(row, "bone", text="", icon="BONE_DATA")
        line.prop(row, "end", text="")
        line.prop(row, "along", text="")
        line.operator("edn.mapping_row", text="", icon="X").remove = index
    col.operator("edn.mapping_row", text="Add Row" if len(settings.custom) else "Start Custom Mapping", icon="ADD")


def draw_pose_source(layout, context) -> None:
    strip = strips.active_strip(strips.sequencer_scene(context))
    reason = pose_sources.motion_poll_reason(strip)
    if reason:
        wrapped(layout, reason, "INFO")
        return
    wrapped(layout, pose_sources.describe(strip), "ARMATURE_DATA" if strip.type == "SCENE" else "TRACKING")
    if strip.type == "SCENE":
        _draw_rig(layout, strip)
    elif strip.type == "MOVIE":
        row = layout.row(align=True)
        row.operator("edn.import_pose_track", icon="TRACKING")
        track = pose_sources.pose_track(strip)
        if track:
            row.operator("edn.discard_pose_edits", icon="TRASH")
        if track and bpy.data.movieclips.get(track) is not None:
            layout.label(text="Edited poses are sent as they are (no smoothing)", icon="INFO")


class EDN_PT_pose_source(_SidebarPanel, bpy.types.Panel):
    bl_label = "Pose Source"
    bl_parent_id = "EDN_PT_main"

    def draw(self, context):
        draw_pose_source(self.layout, context)


CLASSES = (EDN_PT_pose_source,)
