"""The user's actions. Each checks what it can on the main thread without I/O to the server, adds a
job record to the scene and hands the HTTP to background calls (job_sync, model_list, server_status).
Training and the model's own actions are in model_operators.py; they share `send` from here."""

import os
import uuid

import bpy
from bpy.props import StringProperty

from . import job_sync, jobstate, keyframed, model_list, packing, pose_sources, server_status, strips
from .client import ServerError
from .connection import settings_problem
from .preferences import server_settings, user_dir
from .session import state

_BLOCKING = ("UNAUTHORIZED",)  # a known-bad token: every submit would fail the same way


def _scene(context):
    return strips.sequencer_scene(context)


def strip_poll(cls, context, need_model: bool) -> bool:
    scene = _scene(context)
    if scene is None:
        cls.poll_message_set("Open a scene in the Sequencer")
        return False
    strip = strips.active_strip(scene)  # transfer and preview (need_model) also take poses from a rig or pose track
    reason = pose_sources.motion_poll_reason(strip) if need_model else strips.unsupported_reason(strip)
    if reason:
        cls.poll_message_set(reason)
        return False
    if need_model and not scene.edn.target_model:
        cls.poll_message_set("Choose a target model in the sidebar (Refresh Models, or train one with Train Target Model)")
        return False
    return True


def output_refusal(scene) -> str | None:
    """Why the sidebar's Output cannot be made with the chosen model (Person with Alpha from a full-frame one)."""
    edn = scene.edn
    return model_list.alpha_refusal(edn.target_model) if edn.output_kind == jobstate.PERSON_ALPHA else None


def connection_problem(op, context) -> bool:
    """Report a problem known without contacting the server; True when the operator must stop."""
    settings = server_settings(context)
    problem = settings_problem(settings)
    status = state.server
    if problem is None and status.code in _BLOCKING:
        problem = ServerError(status.code, status.message)
    if problem is not None:
        op.report({"ERROR"}, problem.message)
        _scene(context).edn.last_error = problem.message
        return True
    return False


def output_base(scene) -> str:
    """The scene's output folder made absolute; an unsaved file's '//' folder goes to the extension's folder."""
    base = scene.edn.output_dir or "//edn_output/"
    if base.startswith("//") and not bpy.data.filepath:
        return str(user_dir() / "output")
    return os.path.normpath(bpy.path.abspath(base))


def _add_record(scene, kind: str, source: strips.StripMedia, target: str, output_dir: str, remote: bool, media: dict):
    record = scene.edn.jobs.add()
    record.uid, record.kind, record.state = uuid.uuid4().hex, kind, jobstate.SUBMITTING
    record.source_strip, record.source_channel = source.name, source.channel
    record.timeline_start, record.frame_count = source.shown.timeline_start, source.shown.count
    record.media_first, record.still_frames = media["frame_start"], source.still_frames
    record.target, record.remote = target, remote
    record.output_dir = bpy.path.relpath(output_dir) if bpy.data.filepath else output_dir  # the project may move
    scene.edn.last_error = ""
    return record


def report_error(op, scene, message: str) -> set[str]:
    op.report({"ERROR"}, message)
    scene.edn.last_error = message
    return {"CANCELLED"}


def send(op, context, kind: str, target: str, make_params) -> set[str]:
    """Shared by the strip operators: strip → media reference → record → background submit."""
    scene = _scene(context)
    if connection_problem(op, context):
        return {"CANCELLED"}
    strip, posed, motion = strips.active_strip(scene), None, kind in ("transfer", "preview_poses")
    output_dir = os.path.join(output_base(scene), jobstate.output_folder_name(strip.name, kind))
    try:
        posed, pose_warning = pose_sources.prepare(scene, strip, output_dir) if motion else (None, None)
        source = posed.source if posed else strips.strip_media(scene, strip)
    except strips.StripProblem as exc:
        return report_error(op, scene, str(exc))
    for warning in (strips.retiming_warning(strip), pose_warning):
        if warning:
            op.report({"WARNING"}, warning)
    settings = server_settings(context)
    try:
        params = make_params(scene, None if settings.is_remote else output_dir)
        if motion:
            keyframed.apply(scene, params, source.shown)
        if posed is not None and posed.presmoothed:
            params["smooth"] = 0.0
    except ValueError as exc:
        return report_error(op, scene, str(exc))
    media, upload = jobstate.media_ref(source.path, source.shown, source.fps), None
    if posed is not None:
        media, upload = posed.media(), posed.upload() if settings.is_remote else None
    elif settings.is_remote and source.kind == "movie":
        upload = packing.UploadSource(movie=source.path)
    elif settings.is_remote:  # the server unpacks exactly the visible images, in order, into a folder of its own
        upload = packing.UploadSource(folder=source.path, images=source.visible_files, scratch_dir=output_dir)
        media = jobstate.media_ref(None, jobstate.MediaRange(0, len(source.visible_files), source.shown.timeline_start),
                                   source.fps)
    record = _add_record(scene, kind, source, target, output_dir, settings.is_remote, media)
    record.output = params.get("output", "")  # a person-alpha result is placed with Alpha Over
    job_sync.submit(settings, record.uid, kind, params, media, upload)
    last = source.shown.timeline_start + max(source.still_frames, source.shown.count) - 1
    op.report({"INFO"}, f"{op.bl_label}: sent '{source.name}' (timeline frames {source.shown.timeline_start}-{last}) "
                        f"to {settings.describe()}")
    return {"FINISHED"}


class EDN_OT_transfer_motion(bpy.types.Operator):
    """Generate the target dancing the active strip's motion; the frames appear as a strip above it"""

    bl_idname = "edn.transfer_motion"
    bl_label = "Transfer Motion"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        if not strip_poll(cls, context, need_model=True):
            return False
        refusal = output_refusal(_scene(context))
        if refusal:
            cls.poll_message_set(refusal)
        return refusal is None

    def execute(self, context):
        edn = _scene(context).edn
        return send(self, context, "transfer", edn.target_model,
                     lambda scene, out: jobstate.transfer_params(scene.edn.motion_settings(), scene.edn.target_model, out))


class EDN_OT_preview_poses(bpy.types.Operator):
    """Quick stick-figure preview of the active strip's poses, normalized to the target: judge the sliders before a transfer"""

    bl_idname = "edn.preview_poses"
    bl_label = "Preview Poses"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return strip_poll(cls, context, need_model=True)

    def execute(self, context):
        edn = _scene(context).edn
        return send(self, context, "preview_poses", edn.target_model,
                     lambda scene, out: jobstate.preview_params(scene.edn.motion_settings(), scene.edn.target_model, out))


def _active_records(scene):
    return [r for r in scene.edn.jobs if r.state in jobstate.ACTIVE or (r.state == jobstate.DONE and not r.placed)]


class EDN_OT_cancel_job(bpy.types.Operator):
    """Stop a job (the newest running one, unless one is named)"""

    bl_idname = "edn.cancel_job"
    bl_label = "Cancel Job"
    bl_options = {"REGISTER"}

    uid: StringProperty(name="Job", options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        scene = _scene(context)
        if scene is None or not _active_records(scene):
            cls.poll_message_set("No job is running")
            return False
        return True

    def execute(self, context):
        scene = _scene(context)
        records = [r for r in _active_records(scene) if not self.uid or r.uid == self.uid]
        if not records:
            self.report({"WARNING"}, "That job has already finished")
            return {"CANCELLED"}
        job_sync.cancel(server_settings(context), records[-1].uid)
        self.report({"INFO"}, f"Cancelling {jobstate.KIND_LABELS.get(records[-1].kind, records[-1].kind)} job")
        return {"FINISHED"}


class EDN_OT_clear_jobs(bpy.types.Operator):
    """Remove finished jobs from the list (their strips and files stay)"""

    bl_idname = "edn.clear_jobs"
    bl_label = "Clear Finished Jobs"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        jobs = _scene(context).edn.jobs
        for index in reversed(range(len(jobs))):
            record = jobs[index]
            if jobstate.is_final(record.state) and (record.placed or record.state != jobstate.DONE):
                jobs.remove(index)
        return {"FINISHED"}


class EDN_OT_refresh_models(bpy.types.Operator):
    """Fetch the list of trained target models from the server"""

    bl_idname = "edn.refresh_models"
    bl_label = "Refresh Models"

    def execute(self, context):
        if connection_problem(self, context):
            return {"CANCELLED"}
        model_list.refresh(server_settings(context), start=True)
        self.report({"INFO"}, "Fetching the model list")
        return {"FINISHED"}


class EDN_OT_test_connection(bpy.types.Operator):
    """Check that the server answers and accepts the token"""

    bl_idname = "edn.test_connection"
    bl_label = "Test Connection"

    def execute(self, context):
        settings = server_settings(context)
        problem = settings_problem(settings)
        if problem is not None:
            server_status.set_status(problem.code, problem.message)
            self.report({"ERROR"}, problem.message)
            return {"CANCELLED"}
        server_status.set_status("UNKNOWN", "Checking...")
        server_status.check(settings)
        self.report({"INFO"}, f"Checking {settings.describe()}")
        return {"FINISHED"}


class EDN_OT_start_server(bpy.types.Operator):
    """Start the local edn server (or reuse the one already running on the data folder)"""

    bl_idname = "edn.start_server"
    bl_label = "Start Server"

    def execute(self, context):
        settings = server_settings(context)
        if settings.is_remote:
            self.report({"ERROR"}, "The add-on starts local servers only; start a remote one on its machine (edn serve)")
            return {"CANCELLED"}
        server_status.start_local(settings)
        self.report({"INFO"}, f"Starting the edn server (log: {settings.log_path})")
        return {"FINISHED"}


class EDN_OT_stop_server(bpy.types.Operator):
    """Stop the local edn server (running jobs end as interrupted)"""

    bl_idname = "edn.stop_server"
    bl_label = "Stop Server"

    def execute(self, context):
        settings = server_settings(context)
        if settings.is_remote:
            self.report({"ERROR"}, "The add-on stops local servers only")
            return {"CANCELLED"}
        server_status.stop_local(settings)
        self.report({"INFO"}, "Stopping the edn server")
        return {"FINISHED"}


CLASSES = (EDN_OT_transfer_motion, EDN_OT_preview_poses, EDN_OT_cancel_job, EDN_OT_clear_jobs,
           EDN_OT_refresh_models, EDN_OT_test_connection, EDN_OT_start_server, EDN_OT_stop_server)
