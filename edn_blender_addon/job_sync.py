"""Each job record kept in step with the server: send it, cancel it, poll it while it runs, and hand
it to result_placement once done. Main thread; the HTTP runs in the background."""
from __future__ import annotations

import time

from . import held_out_sample, jobstate, model_list, result_placement
from .client import ServerError
from .connection import ServerSettings, client_for
from .job_records import RETRY_S, TRANSIENT, Step, copy_job, fail, find_record, waiting_for_server
from .messages import MODEL_EXISTS
from .packing import UploadSource
from .session import state

POLL_S = 0.5  # a running job's progress is fetched this often


def submit(settings: ServerSettings, uid: str, kind: str, params: dict, media: dict | None,
           upload: UploadSource | None = None) -> None:
    """Send a job for the record `uid` (already in the scene, state 'submitting'); a remote server is
    first sent the media (`upload`), and the job names the upload instead of a path."""
    track = state.track(uid)

    def report(done: int, total: int) -> None:
        track.transfer = ("uploading", done, total)  # one attribute store: safe from the thread

    def work() -> dict:
        client = client_for(settings, start=True)
        if upload is not None and settings.is_remote:
            return upload.submit_job(client, kind, params, media, uid, cancelled=track.stop.is_set, progress=report)
        return client.submit(kind, params, media)

    def on_done(reply, error) -> None:
        track.transfer = None
        scene, record = find_record(uid)
        if record is None:
            return
        if error is not None:
            fail(scene, record, error, jobstate.NOT_SENT)
            if error.code == MODEL_EXISTS:
                model_list.forget()  # our list missed that model: fetch it, so the sidebar offers Resume Training
            return
        record.job_id, record.state, record.stage = reply["id"], reply.get("state", jobstate.QUEUED), ""
        track.next_poll = 0.0
        if track.cancel_when_sent:
            track.cancel_when_sent = False
            cancel(settings, uid)

    state.runner.start((Step.SUBMIT, uid), work, on_done)


def cancel(settings: ServerSettings, uid: str) -> None:
    scene, record = find_record(uid)
    if record is None or jobstate.is_final(record.state) and (record.placed or record.state != jobstate.DONE):
        return
    track = state.track(uid)
    track.stop.set()  # ends an upload or a download in flight
    if not record.job_id:
        track.cancel_when_sent = True
        return
    if record.state == jobstate.DONE:  # the job finished; what is left is our download
        fail(scene, record, ServerError("CANCELLED", "The download of the result was cancelled."), jobstate.CANCELLED)
        return
    job_id = record.job_id

    def on_done(job, error) -> None:
        scene, record = find_record(uid)
        if record is None:
            return
        if error is not None:
            fail(scene, record, error)
        else:
            copy_job(record, job)
            track.next_poll = 0.0

    state.runner.start((Step.CANCEL, uid), lambda: client_for(settings, start=False).cancel(job_id), on_done)


def _poll(settings: ServerSettings, uid: str, job_id: str) -> None:
    track = state.track(uid)

    def on_done(job, error) -> None:
        scene, record = find_record(uid)
        if record is None:
            return
        if error is None:
            copy_job(record, job)
            track.next_poll = time.monotonic() + POLL_S
            if record.kind == "train":  # its held-out sample, as a thumbnail on the job row
                held_out_sample.check_when_due(settings, uid, job, time.monotonic())
            if record.remote and jobstate.is_final(record.state) and record.state != jobstate.DONE:
                result_placement.release_remote(settings, uid, job_id, delete_job=False)  # a new try uploads again
        elif error.code in TRANSIENT:
            waiting_for_server(record, error)
            track.next_poll = time.monotonic() + RETRY_S
        else:  # e.g. NOT_FOUND: this server never had the job (another data dir or server)
            fail(scene, record, error, jobstate.FAILED)

    state.runner.start((Step.POLL, uid), lambda: client_for(settings, start=False).job(job_id), on_done)


def advance(settings: ServerSettings, scene, record, now: float) -> bool:
    """Start whatever the record needs next; True while it still needs the poller."""
    uid = record.uid
    if record.state == jobstate.SUBMITTING:
        if not state.runner.running((Step.SUBMIT, uid)):  # the file was saved and reopened mid-submit
            fail(scene, record, ServerError("NOT_SENT", "Blender stopped before this job reached the server. Start it again."),
                 jobstate.NOT_SENT)
            return False
        return True
    if record.state in jobstate.ACTIVE and record.job_id:
        if now >= state.track(uid).next_poll:
            _poll(settings, uid, record.job_id)
        return True
    if record.state == jobstate.DONE and not record.placed:
        return result_placement.finish(settings, scene, record, now)
    return False
