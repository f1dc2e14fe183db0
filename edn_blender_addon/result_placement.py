"""What becomes of a finished job in the open file: its frames fetched (a remote server's downloaded)
and placed as an image strip above the source, a trained model announced, and a remote server's
copies released once they are no longer needed. Main thread; the downloads run in the background."""
from __future__ import annotations

import time

import bpy

from . import jobstate, model_list, naming, pose_track_import, result_download, strips
from .client import ServerError
from .connection import ServerSettings, client_for
from .job_records import RETRY_S, TRANSIENT, Step, fail, find_record, waiting_for_server
from .session import state

RESULT_KINDS = ("transfer", "preview_poses")  # the kinds whose frames become a strip
BLENDS = {"preview_poses": "SCREEN"}  # stick figures on black: screened over the footage below, black vanishes
ALPHA_OVER = "ALPHA_OVER"  # a person-with-alpha result: the person over whatever the strips below show


def result_blend(kind: str, output: str) -> str | None:
    """The blend type of a job's result strip; None keeps Blender's default (a composite covers the source)."""
    return ALPHA_OVER if kind == "transfer" and output == jobstate.PERSON_ALPHA else BLENDS.get(kind)


def finish(settings: ServerSettings, scene, record, now: float) -> bool:
    """Take a done job's result into the file; True while that still needs the poller."""
    uid, track = record.uid, state.track(record.uid)
    if now < track.next_poll or state.runner.running((Step.FETCH, uid)):
        return True
    if record.kind == "train":
        _model_trained(scene, record)
        if record.remote:
            release_remote(settings, uid, record.job_id, delete_job=False)  # the model stays; the clip can go
        return False
    if record.kind == pose_track_import.IMPORT_KIND:  # Import Pose Track: the poses become a Movie Clip
        return pose_track_import.finish_import(settings, scene, record)
    if record.kind not in RESULT_KINDS:
        record.placed = True
        return False
    _fetch(settings, uid, record.job_id, bpy.path.abspath(record.output_dir), record.remote)
    return True


def _fetch(settings: ServerSettings, uid: str, job_id: str, output_dir: str, remote: bool) -> None:
    track = state.track(uid)

    def report(done: int, total: int) -> None:
        track.transfer = ("downloading frames", done, total)  # one attribute store: safe from the thread

    def work():
        client = client_for(settings, start=False)
        if remote:
            fetched = result_download.download_frames(client, job_id, output_dir, cancelled=track.stop.is_set, progress=report)
            result_download.release_server_files(client, job_id, delete_job=True)  # the frames are here now
            return fetched
        return result_download.local_frames(client.job(job_id).get("result") or {})

    def on_done(value, error) -> None:
        track.transfer = None
        scene, record = find_record(uid)
        if record is None or record.placed or record.state != jobstate.DONE:
            return
        if error is None:
            folder, names = value
            place(scene, record, str(folder), names)
        elif error.code in TRANSIENT:
            track.next_poll = time.monotonic() + RETRY_S
            waiting_for_server(record, error)
        else:
            fail(scene, record, error, jobstate.CANCELLED if error.code == "CANCELLED" else jobstate.FAILED)

    if state.runner.start((Step.FETCH, uid), work, on_done) and remote:
        _, record = find_record(uid)
        record.stage = "downloading frames"


def release_remote(settings: ServerSettings, uid: str, job_id: str, delete_job: bool) -> None:
    """Free the remote server's copies of a job's media (and the job, with `delete_job`); best effort."""
    state.runner.start((Step.RELEASE, uid), lambda: result_download.release_server_files(
        client_for(settings, start=False), job_id, delete_job), lambda value, error: None)


def place(scene, record, folder: str, names: list[str]) -> None:
    """The job's frames as an image strip on the first free channel above its source, from its first frame."""
    taken = {s.name for s in strips.all_strips(scene.sequence_editor)} if scene.sequence_editor else set()
    result = strips.ResultStrip(name=naming.result_strip_name(record.source_strip, record.target, record.kind, taken),
                                folder=folder, files=names, above_channel=record.source_channel,
                                frame_start=record.timeline_start, length=record.still_frames if len(names) == 1 else 0,
                                blend=result_blend(record.kind, record.output), made_by=record.kind)
    try:
        strip = strips.add_image_sequence(scene, result)
    except (ValueError, RuntimeError) as exc:
        fail(scene, record, ServerError("PLACE_FAILED", f"The result frames in {folder} could not be added to the "
                                                        f"timeline ({exc}). Free a channel above the source and reload."))
        return
    record.result_strip, record.placed = strip.name, True
    record.output_dir = strip.directory  # relative to a saved .blend, like the strip
    record.stage = f"strip '{strip.name}' on channel {strip.channel}"


def _model_trained(scene, record) -> None:
    record.placed = True
    record.stage = "model ready, but under-trained (see below)" if record.note else "model ready"
    if record.target:
        scene.edn.target_model = record.target
    model_list.forget()  # fetch the list again, with the new model
