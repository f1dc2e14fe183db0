"""Training and the trained model's own actions: Train Target Model, Resume Training (the same model
for more minutes) and Delete Model (after a confirmation)."""

import bpy
from bpy.props import StringProperty

from . import jobstate, messages, model_list, naming, strips
from .operators import connection_problem, report_error, send, strip_poll
from .preferences import server_settings


def model_name(scene) -> str:
    """The Model Name field, or the default made from the active strip's name."""
    strip = strips.active_strip(scene)
    return scene.edn.train_name.strip() or naming.default_model_name(strip.name if strip is not None else "")


def _train(op, context, resume: bool) -> set[str]:
    scene = strips.sequencer_scene(context)
    name, edn = model_name(scene), scene.edn
    known = model_list.names() if model_list.state.models_loaded else None  # a stale list: the server decides
    if known is not None and not resume and name in known:
        return report_error(op, scene, messages.for_blender(messages.MODEL_EXISTS, "", None, messages.Where(model=name)))
    if known is not None and resume and name not in known:
        return report_error(op, scene, messages.for_blender(messages.MODEL_NOT_FOUND, "", "params.name",
                                                            messages.Where(model=name)))
    return send(op, context, "train", name,
                lambda scene, out: jobstate.train_params(name, edn.quality_preset, edn.train_minutes, edn.pose_model, resume))


class _Training:
    """What Train Target Model and Resume Training share (a mixin: Blender registers each operator on its own)."""

    bl_options = {"REGISTER"}
    resume = False

    @classmethod
    def poll(cls, context):
        return strip_poll(cls, context, need_model=False)

    def execute(self, context):
        return _train(self, context, resume=self.resume)


class EDN_OT_train_target(_Training, bpy.types.Operator):
    """Train a target model on the active strip (a video of the person who should dance)"""

    bl_idname = "edn.train_target"
    bl_label = "Train Target Model"


class EDN_OT_resume_training(_Training, bpy.types.Operator):
    """Train the model named in Model Name for Time Budget more minutes, on the active strip (the clip it
    was trained on); it keeps its own quality and settings"""

    bl_idname = "edn.resume_training"
    bl_label = "Resume Training"
    resume = True


class EDN_OT_delete_model(bpy.types.Operator):
    """Delete a trained target model from the server (its files go; strips already made stay)"""

    bl_idname = "edn.delete_model"
    bl_label = "Delete Model"
    bl_options = {"REGISTER"}

    name: StringProperty(name="Model", description="The model to delete (default: the Target)", options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        scene = strips.sequencer_scene(context)
        if scene is None or not scene.edn.target_model:
            cls.poll_message_set("Choose the model to delete as the Target first")
            return False
        return True

    def _name(self, context) -> str:
        return self.name or strips.sequencer_scene(context).edn.target_model

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event, title=f"Delete model '{self._name(context)}'?",
                                                     message="Its trained weights are deleted from the server.",
                                                     confirm_text="Delete", icon="WARNING")

    def execute(self, context):
        scene, name = strips.sequencer_scene(context), self._name(context)
        if connection_problem(self, context):
            return {"CANCELLED"}

        def deleted(error) -> None:
            for each in bpy.data.scenes:
                edn = getattr(each, "edn", None)
                if edn is None:
                    continue
                if error is not None:
                    edn.last_error = messages.for_blender(error.code, error.message, None, messages.Where(model=name))
                elif edn.target_model == name:
                    edn.target_model = ""

        if not model_list.delete(server_settings(context), name, deleted):
            return report_error(self, scene, "A model is being deleted already; try again in a moment.")
        self.report({"INFO"}, f"Deleting model '{name}'")
        return {"FINISHED"}


CLASSES = (EDN_OT_train_target, EDN_OT_resume_training, EDN_OT_delete_model)
