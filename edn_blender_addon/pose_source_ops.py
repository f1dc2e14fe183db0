"""Operators for where the poses come from: Import Pose Track (the server extracts a movie strip's
poses, smoothed and not normalized, and they become an editable Movie Clip), Discard Edits, and the
rows of a custom rig mapping. Import runs as an `extract_poses` job; `finish_import` takes its
result when the poller sees it done."""
from __future__ import annotations

import os
import time
import zipfile

import bpy
from bpy.props import IntProperty

from . import jobstate, strips
from .client import BAD_RESPONSE, ServerError
from .connection import ServerSettings, client_for
from .job_records import RETRY_S, TRANSIENT, Step, fail, find_record, waiting_for_server
from .pose_file import load_poses
from .pose_sources import BASE_KEY, TRACK_KEY, pose_track
from .pose_track import create_pose_track
from .result_download import release_server_files
from .rig_properties import start_custom_table
from .session import state

IMPORT_KIND = "extract_poses"
POSES_FILE = "poses.npz"  # the name extract_poses gives its file (edn_server.names.POSES_FILE)


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
        from .operators import send_strip_job  # the operators' own path: strip → media → record → submit

        return send_strip_job(self, context, IMPORT_KIND, "",
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


# -- an import job's result becomes the track ----------------------------------------------------------

def _fetch_poses(client, job_id: str, output_dir: str, remote: bool, cancelled) -> str:
    """The job's pose file on this machine: where a local server wrote it, or downloaded from a remote one."""
    if not remote:
        path = (client.job(job_id).get("result") or {}).get("poses")
        if not path or not os.path.isfile(path):
            raise ServerError("NO_POSES", f"The pose file of job {job_id} is missing ({path}). Import the pose track again.")
        return path
    archive = client.download(f"/v1/jobs/{job_id}/result/archive", os.path.join(output_dir, "poses.zip"), cancelled=cancelled)
    try:
        with zipfile.ZipFile(archive) as packed:
            packed.extract(POSES_FILE, output_dir)
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise ServerError(BAD_RESPONSE, f"The result of job {job_id} holds no readable {POSES_FILE} ({exc}).") from None
    finally:
        os.remove(archive)
    release_server_files(client, job_id, delete_job=True)  # the poses are here now: free the server's disk
    return os.path.join(output_dir, POSES_FILE)


def finish_import(settings: ServerSettings, scene, record) -> bool:
    """Fetch a done import's poses (in the background), then make the clip; True while under way."""
    uid, track = record.uid, state.track(record.uid)
    if time.monotonic() < track.next_poll or state.runner.running((Step.FETCH, uid)):
        return True
    job_id, output_dir, remote = record.job_id, bpy.path.abspath(record.output_dir), record.remote

    def on_done(path, error) -> None:
        scene, record = find_record(uid)
        if record is None or record.placed or record.state != jobstate.DONE:
            return
        if error is None:
            _make_track(scene, record, path)
        elif error.code in TRANSIENT:
            track.next_poll = time.monotonic() + RETRY_S
            waiting_for_server(record, error)
        else:
            fail(scene, record, error, jobstate.FAILED)

    state.runner.start((Step.FETCH, uid), lambda: _fetch_poses(client_for(settings, start=False), job_id, output_dir,
                                                                remote, track.stop.is_set), on_done)
    return True


def _make_track(scene, record, path: str) -> None:
    strip = strips.find_strip(scene, record.source_strip)
    if strip is None or strip.type != "MOVIE":
        fail(scene, record, ServerError("NO_STRIP", f"The strip '{record.source_strip}' is gone; the poses are in {path}."))
        return
    old = bpy.data.movieclips.get(pose_track(strip) or "")
    if old is not None:
        bpy.data.movieclips.remove(old)  # a new import replaces the strip's earlier track
    clip = create_pose_track(load_poses(path), bpy.path.abspath(strip.filepath), f"{strip.name} poses")
    clip[BASE_KEY] = path
    strip[TRACK_KEY] = clip.name
    record.result_strip, record.placed, record.stage = clip.name, True, f"pose track '{clip.name}'"


CLASSES = (EDN_OT_import_pose_track, EDN_OT_discard_pose_edits, EDN_OT_mapping_row)
