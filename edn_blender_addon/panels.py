"""The Sequencer sidebar tab "Motion Transfer". Drawing only: every value comes from the scene's
properties or the poller's cached state, so drawing never waits on the server."""
from __future__ import annotations

import textwrap

import bpy

from . import held_out_sample, jobstate, model_list, pose_sources, strips
from .model_operators import model_name
from .operators import output_base, output_refusal
from .server_status import draw_status
from .session import state

CATEGORY = "Motion Transfer"
WRAP = 48
SAMPLE_SCALE = 8.0  # the held-out sample's thumbnail, in icon sizes


def wrapped(layout, text: str, icon: str = "NONE") -> None:
    """A long message as several labels (labels do not wrap)."""
    col = layout.column(align=True)
    for index, line in enumerate(textwrap.wrap(text, WRAP) or [""]):
        col.label(text=line, icon=icon if index == 0 else "BLANK1")


def draw_main(layout, context) -> None:
    scene = strips.sequencer_scene(context)
    edn = scene.edn
    draw_status(layout)
    row = layout.row(align=True)
    row.prop(edn, "target_model_choice", text="Target")
    row.operator("edn.refresh_models", text="", icon="FILE_REFRESH")
    row.operator("edn.delete_model", text="", icon="TRASH")
    if state.models_error:
        wrapped(layout, state.models_error, "ERROR")
    chosen = model_list.find(edn.target_model)
    if chosen.get("warning"):
        wrapped(layout, chosen["warning"]["message"], "ERROR")
    strip = strips.active_strip(scene)
    reason = pose_sources.motion_poll_reason(strip)
    if reason:
        wrapped(layout, reason, "INFO")
    else:
        layout.label(text=f"Source: {strip.name}", icon="SEQUENCE")
    settings = layout.column()
    settings.use_property_split = True
    settings.prop(edn, "pose_model")
    settings.prop(edn, "face_refinement")
    draw_output(settings, scene)
    settings.prop(edn, "output_dir")
    if (edn.output_dir or "//").startswith("//") and not bpy.data.filepath:
        wrapped(layout, f"This file is not saved: results go to {output_base(scene)}. Save the .blend first to keep them "
                        "beside it.", "INFO")
    col = layout.column(align=True)
    col.scale_y = 1.3
    col.operator("edn.preview_poses", icon="ARMATURE_DATA")
    col.operator("edn.transfer_motion", icon="PLAY")
    if edn.last_error:
        box = layout.box()
        box.alert = True
        wrapped(box, edn.last_error, "ERROR")


def draw_output(settings, scene) -> None:
    """Output and Output Height; the Output is greyed out for a full-frame model (it has no alpha), and
    Person with Alpha chosen anyway says why Transfer Motion is unavailable."""
    edn = scene.edn
    row = settings.row()
    row.active = model_list.find(edn.target_model).get("mode") != model_list.FULL_FRAME
    row.prop(edn, "output_kind")
    settings.prop(edn, "output_height")
    refusal = output_refusal(scene)
    if refusal:
        wrapped(settings, refusal, "ERROR")


def draw_normalization(layout, context) -> None:
    edn = strips.sequencer_scene(context).edn
    layout.use_property_split = True
    layout.prop(edn, "auto_normalize")
    col = layout.column(align=True)
    col.prop(edn, "scale")
    col.prop(edn, "offset_x")
    col.prop(edn, "offset_y")
    layout.prop(edn, "smoothing")
    layout.prop(edn, "mirror")


def draw_training(layout, context) -> None:
    scene = strips.sequencer_scene(context)
    edn = scene.edn
    layout.use_property_split = True
    layout.prop(edn, "train_name", text="Name")
    name = model_name(scene)
    if not edn.train_name and strips.active_strip(scene) is not None:
        layout.label(text=f"Default name: {name}", icon="INFO")
    layout.prop(edn, "quality_preset")
    layout.prop(edn, "train_minutes", text="Minutes")
    wrapped(layout, "The minutes include preparing the clip (finding the poses, building the dataset).", "TIME")
    if name in model_list.names():  # the name is taken: continue that model, or pick another name
        box = layout.box()
        wrapped(box, f"A model named '{name}' exists: train it for more minutes, or type a new Name.", "INFO")
        box.operator("edn.resume_training", icon="FORWARD")
    else:
        layout.operator("edn.train_target", icon="OUTLINER_OB_ARMATURE")


def draw_job(layout, record) -> None:
    box = layout.box()
    title = jobstate.status_text(record.kind, record.state, record.progress, record.stage,
                                 record.eta_s if record.eta_s >= 0 else None)
    row = box.row()
    row.label(text=f"{record.source_strip or '?'} > {record.target}" if record.target else record.source_strip or "?")
    waiting_result = record.state == jobstate.DONE and not record.placed
    if record.state in jobstate.ACTIVE or waiting_result:
        op = row.operator("edn.cancel_job", text="", icon="X")
        op.uid = record.uid
    moving_bytes = state.transfer(record.uid) is not None  # an upload or download under way
    if record.state in (jobstate.RUNNING, jobstate.QUEUED) or moving_bytes:
        box.progress(factor=record.progress, type="BAR", text=title)
    else:
        box.label(text=title, icon="CHECKMARK" if record.state == jobstate.DONE else "INFO")
    if record.state in (jobstate.FAILED, jobstate.INTERRUPTED, jobstate.NOT_SENT) and record.error_message:
        col = box.column()
        col.alert = True
        wrapped(col, record.error_message, "ERROR")
    if record.note:  # an under-trained model's warning, or why the server is being waited for
        wrapped(box, record.note, "ERROR" if record.state == jobstate.DONE else "INFO")
    sample = held_out_sample.preview(record.uid) if record.kind == "train" else None
    if sample is not None:  # judge the training by eye: stop it early, or let it go on
        box.label(text="Unseen frame: real | pose | generated", icon="IMAGE_DATA")
        box.template_icon(icon_value=sample.icon_id, scale=SAMPLE_SCALE)


def draw_jobs(layout, context) -> None:
    jobs = strips.sequencer_scene(context).edn.jobs
    if not len(jobs):
        layout.label(text="No jobs yet")
        return
    for record in reversed(list(jobs)[-8:]):
        draw_job(layout, record)
    layout.operator("edn.clear_jobs", icon="TRASH")


class _SidebarPanel:
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = CATEGORY

    @classmethod
    def poll(cls, context):
        scene = strips.sequencer_scene(context)
        return scene is not None and getattr(scene, "edn", None) is not None


class EDN_PT_main(_SidebarPanel, bpy.types.Panel):
    bl_label = "Motion Transfer"
    bl_idname = "EDN_PT_main"

    def draw(self, context):
        draw_main(self.layout, context)


class EDN_PT_normalization(_SidebarPanel, bpy.types.Panel):
    bl_label = "Normalization"
    bl_parent_id = "EDN_PT_main"

    def draw(self, context):
        draw_normalization(self.layout, context)


class EDN_PT_training(_SidebarPanel, bpy.types.Panel):
    bl_label = "Train Target"
    bl_parent_id = "EDN_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        draw_training(self.layout, context)


class EDN_PT_jobs(_SidebarPanel, bpy.types.Panel):
    bl_label = "Jobs"
    bl_parent_id = "EDN_PT_main"

    def draw(self, context):
        draw_jobs(self.layout, context)


CLASSES = (EDN_PT_main, EDN_PT_normalization, EDN_PT_training, EDN_PT_jobs)
