"""Scene settings (saved in the .blend): the target model, normalization sliders, quality, output
folder, and the job records that let a reopened file find its jobs again."""

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import jobstate, model_list, naming, strips

PRESETS = [
    ("preview", "Preview", "Small, fast model (128 px tall frames): minutes on a CPU, to try things out"),
    ("paper", "Paper", "The paper's quality (512 px tall frames, local enhancer, face GAN): hours on a GPU"),
]
POSE_MODELS = [
    ("lite", "Lite", "Fastest pose detection, least accurate (about 1.3x the speed of Full): clear, well-lit footage"),
    ("full", "Full", "Balanced speed and accuracy: the default"),
    ("heavy", "Heavy", "Most accurate pose detection, about 3x slower than Full: small, partly hidden or fast-moving dancers"),
]
OUTPUTS = [
    (jobstate.COMPOSITE, "Composite", "The person over the target's background, as whole frames"),
    (jobstate.PERSON_ALPHA, "Person with Alpha", "The person alone with alpha (RGBA PNG frames), placed with the Alpha Over "
                                                 "blend to composite over another shot below it; needs a person-mode model"),
]
OUTPUT_HEIGHTS = [
    ("target", "Target", "The target video's own height (the model's native resolution)"),
    ("1080", "1080", "1080 px tall frames (not above the target's own height)"),
    ("720", "720", "720 px tall frames (not above the target's own height)"),
    ("512", "512", "512 px tall frames: fastest"),
]

_NO_MODEL = ("NONE", "No trained model", "Train one with Train Target Model, then Refresh Models", "NONE", 0)
_enum_items: list[tuple[str, str, str]] = [_NO_MODEL]  # kept alive: Blender keeps pointers into these strings


def _model_items(self, context):
    """(name, 'anna · person · 3 200 steps · 12 min', tooltip, icon, number): a warning icon on under-trained models."""
    global _enum_items
    models = model_list.models()
    if self.target_model and self.target_model not in model_list.names():
        models.append({"name": self.target_model})  # keep showing a saved choice until the list says otherwise
    _enum_items = [(m["name"], naming.model_label(m), naming.model_description(m), "ERROR" if m.get("warning") else "NONE", index)
                   for index, m in enumerate(models)] or [_NO_MODEL]
    return _enum_items


def _get_model_choice(self) -> int:
    names = [item[0] for item in _model_items(self, None)]
    return names.index(self.target_model) if self.target_model in names else 0


def _set_model_choice(self, value: int) -> None:
    items = _model_items(self, None)
    self.target_model = "" if items[value][0] == "NONE" else items[value][0]


class EDN_PG_job(bpy.types.PropertyGroup):
    """One job submitted from this scene. `uid` is ours (known before the server answers); `job_id` the server's."""

    uid: StringProperty(name="Local ID")
    job_id: StringProperty(name="Job ID")
    kind: StringProperty(name="Kind")
    state: StringProperty(name="State", default=jobstate.SUBMITTING)
    progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")
    stage: StringProperty(name="Stage")
    eta_s: FloatProperty(name="ETA (s)", default=-1.0)
    error_code: StringProperty(name="Error Code")
    error_message: StringProperty(name="Error")
    note: StringProperty(name="Note", description="A warning or notice shown under the job (e.g. an under-trained model)")
    media_first: IntProperty(name="First Media Frame", description="The media frame the strip's first visible frame shows")
    still_frames: IntProperty(name="Still Length", description="A still image source: the timeline frames it holds")
    source_strip: StringProperty(name="Source Strip")
    source_channel: IntProperty(name="Source Channel", default=1)
    timeline_start: IntProperty(name="Timeline Start")
    frame_count: IntProperty(name="Frames")
    target: StringProperty(name="Target")
    output_dir: StringProperty(name="Output Folder", subtype="DIR_PATH", options=strips.BLEND_RELATIVE_PATH)
    remote: BoolProperty(name="Remote", description="Submitted to a remote server: its frames are downloaded")
    result_strip: StringProperty(name="Result Strip")
    placed: BoolProperty(name="Placed", description="The result strip was added to the timeline")
    output: StringProperty(name="Output", description="A transfer's output: composite, or person-alpha (placed with Alpha Over)")


class EDN_PG_scene(bpy.types.PropertyGroup):
    target_model: StringProperty(name="Target Model", description="Name of the trained target the motion goes to")
    target_model_choice: EnumProperty(name="Target", description="Trained target the motion is transferred to",
                                      items=_model_items, get=_get_model_choice, set=_set_model_choice)
    auto_normalize: BoolProperty(name="Automatic Normalization", default=True,
                                 description="Scale and place the source dancer like the target (the paper's ankle-based mapping)")
    scale: FloatProperty(name="Scale", default=1.0, min=0.05, max=10.0, soft_min=0.25, soft_max=4.0,
                         description="Multiplies the automatic scale (about the feet)")
    offset_x: FloatProperty(name="Offset X", default=0.0, soft_min=-500.0, soft_max=500.0, subtype="PIXEL",
                            description="Shift right, in target pixels")
    offset_y: FloatProperty(name="Offset Y", default=0.0, soft_min=-500.0, soft_max=500.0, subtype="PIXEL",
                            description="Shift down, in target pixels")
    smoothing: FloatProperty(name="Smoothing", default=1.0, min=0.0, max=10.0, soft_max=4.0,
                             description="Temporal smoothing of the source poses; 0 turns it off")
    mirror: BoolProperty(name="Mirror", default=False, description="Mirror the motion left-right")
    quality_preset: EnumProperty(name="Quality", items=PRESETS, default="preview",
                                 description="Model size and resolution for training")
    face_refinement: BoolProperty(name="Face Refinement", default=True,
                                  description="Refine the face with the face GAN after generating each frame")
    output_kind: EnumProperty(name="Output", items=OUTPUTS, default=jobstate.COMPOSITE,
                              description="What Transfer Motion writes: whole frames, or the person alone with alpha")
    output_height: EnumProperty(name="Output Height", items=OUTPUT_HEIGHTS, default="target",
                                description="Height of Transfer Motion's frames")
    output_dir: StringProperty(name="Output Folder", subtype="DIR_PATH", default="//edn_output/", options=strips.BLEND_RELATIVE_PATH,
                               description="Where generated frames go ('//' is the folder of this .blend)")
    train_name: StringProperty(name="Model Name", description="Name for the trained target (default: the strip's name)")
    train_minutes: FloatProperty(name="Time Budget", default=30.0, min=0.1, soft_max=24 * 60.0, unit="NONE",
                                 description="Minutes for the whole training, preparing the clip included (pose detection "
                                             "and the dataset take the first minutes); a preview model needs about 5 "
                                             "minutes on a CPU before it looks like the person")
    pose_model: EnumProperty(name="Pose Model", items=POSE_MODELS, default="full",
                             description="Pose detector for every job: faster or more accurate")
    jobs: CollectionProperty(type=EDN_PG_job)
    last_error: StringProperty(name="Last Error")

    def motion_settings(self) -> jobstate.MotionSettings:
        return jobstate.MotionSettings(auto_normalize=self.auto_normalize, scale=self.scale, offset_x=self.offset_x,
                                       offset_y=self.offset_y, mirror=self.mirror, smoothing=self.smoothing,
                                       face_refinement=self.face_refinement, pose_model=self.pose_model,
                                       output=self.output_kind, output_height=self.output_height)


CLASSES = (EDN_PG_job, EDN_PG_scene)


def register() -> None:
    bpy.types.Scene.edn = PointerProperty(type=EDN_PG_scene)


def unregister() -> None:
    del bpy.types.Scene.edn
