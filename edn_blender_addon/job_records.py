"""The scene's job records as the background calls update them: find one by uid across the open
file, copy the server's view of a job onto it, mark it failed. Main thread only."""
from __future__ import annotations

import enum

import bpy

from . import jobstate, messages
from .client import ServerError

RETRY_S = 3.0  # a server that did not answer is asked again after this long
TRANSIENT = ("UNREACHABLE", "TIMEOUT", "NOT_RUNNING", "BAD_RESPONSE")  # worth asking again


class Step(enum.Enum):
    """The background call a job may have under way; with the uid, the key of that call."""

    SUBMIT = "submit"
    POLL = "poll"
    CANCEL = "cancel"
    FETCH = "fetch"
    RELEASE = "release"
    SAMPLE = "sample"


def find_record(uid: str):
    """(scene, record) for a job uid across every scene of the open file, or (None, None)."""
    for scene in bpy.data.scenes:
        settings = getattr(scene, "edn", None)
        for record in settings.jobs if settings is not None else ():
            if record.uid == uid:
                return scene, record
    return None, None


WAITING = "waiting for the server"


def where(record) -> messages.Where:
    """The record's strip, model and frames, to word the server's messages in the timeline's terms."""
    return messages.Where(strip=record.source_strip, model=record.target, media_first=record.media_first,
                          timeline_start=record.timeline_start)


def fail(scene, record, error: ServerError, state_name: str | None = None) -> None:
    if state_name:
        record.state = state_name
    record.error_code = error.code
    record.error_message = messages.for_blender(error.code, error.message, error.field, where(record))
    scene.edn.last_error = record.error_message


def waiting_for_server(record, error: ServerError) -> None:
    """The progress bar says it waits (its text is cut off beyond a few words); the note says why."""
    record.stage = WAITING
    record.note = error.message


def copy_job(record, job: dict) -> None:
    """The server's view of the job (GET /v1/jobs/ID) onto the record."""
    record.state = str(job.get("state") or record.state)
    record.progress = float(job.get("progress") or 0.0)
    record.stage = str(job.get("stage") or "")
    eta = job.get("eta_s")
    record.eta_s = float(eta) if eta is not None else -1.0
    error = job.get("error") or {}
    if error:
        record.error_code = str(error.get("code", ""))
        record.error_message = messages.for_blender(record.error_code, str(error.get("message", "")), error.get("field"),
                                                    where(record))
    warning = (job.get("result") or {}).get("warning") or {}  # e.g. an under-trained model: done, but say so
    record.note = messages.for_blender(str(warning.get("code", "")), str(warning.get("message", ""))) if warning else ""


def show_transfers(tracks) -> bool:
    """Put uploads and downloads in flight on their records (progress bar and stage); True if any."""
    changed = False
    for uid, track in list(tracks.items()):
        moving = track.transfer
        if moving is None:
            continue
        _, record = find_record(uid)
        if record is not None:
            verb, done, total = moving
            record.progress = min(1.0, done / total) if total > 0 else 0.0
            record.stage = jobstate.transfer_text(verb, done, total)
            changed = True
    return changed
