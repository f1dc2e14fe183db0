"""The scene's job records as the background calls update them: find one by uid across the open
file, copy the server's view of a job onto it, mark it failed. Main thread only."""
from __future__ import annotations

import enum

import bpy

from . import jobstate
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


def find_record(uid: str):
    """(scene, record) for a job uid across every scene of the open file, or (None, None)."""
    for scene in bpy.data.scenes:
        settings = getattr(scene, "edn", None)
        for record in settings.jobs if settings is not None else ():
            if record.uid == uid:
                return scene, record
    return None, None


def fail(scene, record, error: ServerError, state_name: str | None = None) -> None:
    if state_name:
        record.state = state_name
    record.error_code, record.error_message = error.code, error.message
    scene.edn.last_error = error.message


def waiting_for_server(record, error: ServerError) -> None:
    record.stage = f"waiting for the server: {error.message}"


def copy_job(record, job: dict) -> None:
    """The server's view of the job (GET /v1/jobs/ID) onto the record."""
    record.state = str(job.get("state") or record.state)
    record.progress = float(job.get("progress") or 0.0)
    record.stage = str(job.get("stage") or "")
    eta = job.get("eta_s")
    record.eta_s = float(eta) if eta is not None else -1.0
    error = job.get("error") or {}
    if error:
        record.error_code, record.error_message = str(error.get("code", "")), str(error.get("message", ""))


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
