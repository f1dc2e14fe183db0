"""Operators for where the poses come from: Import Pose Track (the server extracts a movie strip's
poses, smoothed and not normalized, and they become an editable Movie Clip), Discard Edits, and the
rows of a custom rig mapping. Import runs as an `extract_poses` job; pose_track_import takes its
result when the poller sees it done."""
from __future__ import annotations

import bpy
from bpy.props import IntProperty

from . import strips
from .pose_sources import TRACK_KEY, pose_track
from .pose_track_import import IMPORT_KIND
from .rig_properties import start_custom_table


def _movie_strip(context):
    scene = strips.sequencer_scene(context)
    strip = strips.active_strip(scene)
    return scene, strip if strip is not None and strip.type == "MOVIE" else None


class EDN_OT_import_pose_track(bpy.types.Operator):
    """Detect the active movie strip's poses (smoothed, not yet normalized) into a Movie Clip with one track per
    landmark: fix them in the Clip Editor, and Transfer Motion and Preview Poses use the edited poses"""

    bl_idname = "edn.import_pose_track"
    bl_label = "Import Pose Track"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        if _movie_strip(context)[1] is None:
            cls.poll_message_set("Make a movie strip active: its poses become an editable pose track")
            return False
        return True

    def execute(self, context):
        from .operators import send  # the operators' own path: strip → media → record → submit

        return send(self, context, IMPORT_KIND, "",
                              lambda scene, out: {"smooth": float(scene.edn.smoothing)} | ({"output_dir": out} if out else {}))


class EDN_OT_discard_pose_edits(bpy.types.Operator):
    """Forget the active strip's pose track (the clip is removed): its poses are detected again"""

    bl_idname = "edn.discard_pose_edits"
    bl_label = "Discard Edits"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        if pose_track(_movie_strip(context)[1]) is None:
            cls.poll_message_set("The active strip has no pose track")
            return False
        return True

    def execute(self, context):
        _, strip = _movie_strip(context)
        name = pose_track(strip)
        clip = bpy.data.movieclips.get(name)
        if clip is not None:
            bpy.data.movieclips.remove(clip)
        del strip[TRACK_KEY]
        self.report({"INFO"}, f"Pose track '{name}' discarded: the poses of '{strip.name}' are detected again")
        return {"FINISHED"}


def _rig_settings(context):
    strip = strips.active_strip(strips.sequencer_scene(context))
    scene = strip.scene if strip is not None and strip.type == "SCENE" else None
    return scene.edn_rig if scene is not None else None


class EDN_OT_mapping_row(bpy.types.Operator):
    """Add a row to the custom mapping (a new table starts with the landmarks normalization needs), or remove one"""

    bl_idname = "edn.mapping_row"
    bl_label = "Edit Mapping Row"
    bl_options = {"REGISTER", "UNDO"}

    remove: IntProperty(name="Remove", default=-1, description="Index of the row to remove; -1 adds a row")

    @classmethod
    def poll(cls, context):
        return _rig_settings(context) is not None

    def execute(self, context):
        settings = _rig_settings(context)
        if self.remove >= 0:
            settings.custom.remove(self.remove)
        elif not len(settings.custom):
            start_custom_table(settings)
        else:
            settings.custom.add()
        return {"FINISHED"}


CLASSES = (EDN_OT_import_pose_track, EDN_OT_discard_pose_edits, EDN_OT_mapping_row)
