"""The one place where background work meets Blender data.

Background threads do the HTTP (submit, poll, cancel, download, health) and put their outcome on a
queue; they never touch bpy. `tick()`, registered as a bpy.app.timers function, runs on the main
thread: it applies those outcomes to the scenes' job records, starts the next polls, places finished
results on the timeline and redraws the Sequencer. Timers never fire in background mode, so tests
call tick() themselves.
"""
from __future__ import annotations

import dataclasses
import queue
import threading
import time
import traceback
from collections.abc import Callable

import bpy

from . import jobstate
from .client import EdnClient, ServerError
from .connection import ServerSettings, client_for
from .packing import UploadSource

POLL_S = 0.5  # a running job's progress is fetched this often
IDLE_S = 2.0
HEALTH_S = 5.0
RETRY_S = 3.0
TRANSIENT = ("UNREACHABLE", "TIMEOUT", "NOT_RUNNING", "BAD_RESPONSE")
RESULT_KINDS = ("transfer", "preview_poses")


@dataclasses.dataclass
class ServerStatus:
    code: str = "UNKNOWN"  # OK, or the error code of the last check
    message: str = "Not checked yet"
    version: str = ""
    device: str = ""
    checked: float = 0.0

    @property
    def ok(self) -> bool:
        return self.code == "OK"


@dataclasses.dataclass
class PollerState:
    """Main-thread state shared with the panels (nothing here is saved in the .blend)."""

    server: ServerStatus = dataclasses.field(default_factory=ServerStatus)
    models: list[dict] = dataclasses.field(default_factory=list)
    models_loaded: bool = False
    models_error: str = ""
    inflight: set[str] = dataclasses.field(default_factory=set)
    next_poll: dict[str, float] = dataclasses.field(default_factory=dict)
    cancel_events: dict[str, threading.Event] = dataclasses.field(default_factory=dict)
    cancel_after_submit: set[str] = dataclasses.field(default_factory=set)
    # uid -> (verb, bytes done, bytes in all) of an upload or download; written by the threads
    transfers: dict[str, tuple[str, int, int]] = dataclasses.field(default_factory=dict)


state = PollerState()
_done: queue.SimpleQueue = queue.SimpleQueue()  # (key, on_done, value, error) from the threads


def reset() -> None:
    global state
    state = PollerState()


def settings_from_prefs() -> ServerSettings:
    from .preferences import server_settings

    return server_settings(bpy.context)


# -- background work ------------------------------------------------------------------------------

def run_background(key: str, work: Callable[[], object], on_done: Callable[[object, ServerError | None], None]) -> bool:
    """Run `work()` on a thread unless work with this key is already under way; `on_done(value, error)`
    then runs on the main thread, from tick(). Returns False when it was already under way."""
    if key in state.inflight:
        return False
    state.inflight.add(key)

    def thread_main() -> None:
        value, error = None, None
        try:
            value = work()
        except ServerError as exc:
            error = exc
        except Exception as exc:  # a bug must surface in the panel, not kill the thread silently
            traceback.print_exc()
            error = ServerError("INTERNAL", f"The add-on failed unexpectedly ({type(exc).__name__}: {exc}). "
                                            "Please report this with Blender's console output.")
        _done.put((key, on_done, value, error))

    threading.Thread(target=thread_main, name=f"edn-{key}", daemon=True).start()
    return True


def busy() -> bool:
    return bool(state.inflight)


def _reporter(uid: str, verb: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        state.transfers[uid] = (verb, done, total)  # one dict store: safe from a thread

    return report


def _apply_transfers() -> bool:
    """Show uploads and downloads in flight on their records (progress bar and stage)."""
    changed = False
    for uid, (verb, done, total) in list(state.transfers.items()):
        _, record = find_record(uid)
        if record is not None:
            record.progress = min(1.0, done / total) if total > 0 else 0.0
            record.stage = jobstate.transfer_text(verb, done, total)
            changed = True
    return changed


def _apply_finished() -> bool:
    changed = False
    while True:
        try:
            key, on_done, value, error = _done.get_nowait()
        except queue.Empty:
            return changed
        state.inflight.discard(key)
        try:
            on_done(value, error)
        except Exception:
            traceback.print_exc()
        changed = True


# -- job records ----------------------------------------------------------------------------------

def find_record(uid: str):
    """(scene, record) for a job uid across every scene of the open file, or (None, None)."""
    for scene in bpy.data.scenes:
        settings = getattr(scene, "edn", None)
        for record in settings.jobs if settings is not None else ():
            if record.uid == uid:
                return scene, record
    return None, None


def _fail(scene, record, error: ServerError, state_name: str | None = None) -> None:
    if state_name:
        record.state = state_name
    record.error_code, record.error_message = error.code, error.message
    scene.edn.last_error = error.message


def _copy_job(record, job: dict) -> None:
    record.state = str(job.get("state") or record.state)
    record.progress = float(job.get("progress") or 0.0)
    record.stage = str(job.get("stage") or "")
    eta = job.get("eta_s")
    record.eta_s = float(eta) if eta is not None else -1.0
    error = job.get("error") or {}
    if error:
        record.error_code, record.error_message = str(error.get("code", "")), str(error.get("message", ""))


def submit(settings: ServerSettings, uid: str, kind: str, params: dict, media: dict | None,
           upload: UploadSource | None = None) -> None:
    """Send a job for the record `uid` (already in the scene, state 'submitting'); a remote server is
    first sent the media (`upload`), and the job names the upload instead of a path."""

    def work() -> dict:
        client = client_for(settings, start=True)
        if upload is not None and settings.is_remote:
            event = state.cancel_events.setdefault(uid, threading.Event())
            return upload.submit_job(client, kind, params, media, uid, cancelled=event.is_set,
                                     progress=_reporter(uid, "uploading"))
        return client.submit(kind, params, media)

    def on_done(reply, error) -> None:
        state.transfers.pop(uid, None)
        scene, record = find_record(uid)
        if record is None:
            return
        if error is not None:
            _fail(scene, record, error, jobstate.NOT_SENT)
            return
        record.job_id, record.state, record.stage = reply["id"], reply.get("state", jobstate.QUEUED), ""
        state.next_poll[uid] = 0.0
        if uid in state.cancel_after_submit:
            state.cancel_after_submit.discard(uid)
            cancel(settings, uid)

    run_background(f"submit:{uid}", work, on_done)


def cancel(settings: ServerSettings, uid: str) -> None:
    scene, record = find_record(uid)
    if record is None or jobstate.is_final(record.state) and (record.placed or record.state != jobstate.DONE):
        return
    if uid in state.cancel_events:
        state.cancel_events[uid].set()  # stops an upload or a download in flight
    if not record.job_id:
        state.cancel_after_submit.add(uid)
        return
    if record.state == jobstate.DONE:  # the job finished; what is left is our download
        _fail(scene, record, ServerError("CANCELLED", "The download of the result was cancelled."), jobstate.CANCELLED)
        return
    job_id = record.job_id

    def on_done(job, error) -> None:
        scene, record = find_record(uid)
        if record is None:
            return
        if error is not None:
            _fail(scene, record, error)
        else:
            _copy_job(record, job)
            state.next_poll[uid] = 0.0

    run_background(f"cancel:{uid}", lambda: client_for(settings, start=False).cancel(job_id), on_done)


def _poll(settings: ServerSettings, uid: str, job_id: str) -> None:
    def on_done(job, error) -> None:
        scene, record = find_record(uid)
        if record is None:
            return
        if error is None:
            _copy_job(record, job)
            state.next_poll[uid] = time.monotonic() + POLL_S
            if record.remote and jobstate.is_final(record.state) and record.state != jobstate.DONE:
                _release_remote(settings, uid, job_id, delete_job=False)  # a new try uploads again
        elif error.code in TRANSIENT:
            record.stage = f"waiting for the server: {error.message}"
            state.next_poll[uid] = time.monotonic() + RETRY_S
        else:  # e.g. NOT_FOUND: this server never had the job (another data dir or server)
            _fail(scene, record, error, jobstate.FAILED)

    run_background(f"poll:{uid}", lambda: client_for(settings, start=False).job(job_id), on_done)


def _fetch_result(settings: ServerSettings, uid: str, job_id: str, output_dir: str, remote: bool) -> None:
    from . import results

    event = state.cancel_events.setdefault(uid, threading.Event())

    def work():
        client = client_for(settings, start=False)
        if remote:
            fetched = results.download_frames(client, job_id, output_dir, cancelled=event.is_set,
                                              progress=_reporter(uid, "downloading frames"))
            results.release_server_files(client, job_id, delete_job=True)  # the frames are here now
            return fetched
        return results.local_frames(client.job(job_id).get("result") or {})

    def on_done(value, error) -> None:
        state.transfers.pop(uid, None)
        scene, record = find_record(uid)
        if record is None or record.placed or record.state != jobstate.DONE:
            return
        if error is not None:
            if error.code in TRANSIENT:
                state.next_poll[uid] = time.monotonic() + RETRY_S
                record.stage = f"waiting for the server: {error.message}"
            else:
                _fail(scene, record, error, jobstate.FAILED if error.code != "CANCELLED" else jobstate.CANCELLED)
            return
        folder, names = value
        _place(scene, record, str(folder), names)

    if remote:
        _set_stage(uid, "downloading frames")
    run_background(f"fetch:{uid}", work, on_done)


def _release_remote(settings: ServerSettings, uid: str, job_id: str, delete_job: bool) -> None:
    from . import results

    run_background(f"release:{uid}", lambda: results.release_server_files(client_for(settings, start=False), job_id,
                                                                          delete_job), lambda value, error: None)


def _set_stage(uid: str, stage: str) -> None:
    _, record = find_record(uid)
    if record is not None:
        record.stage = stage


def _place(scene, record, folder: str, names: list[str]) -> None:
    from . import strips

    name = jobstate.result_strip_name(record.source_strip, record.target, record.kind)
    try:
        strip = strips.add_image_sequence(scene, name, folder, names, record.source_channel, record.timeline_start)
    except (ValueError, RuntimeError) as exc:
        _fail(scene, record, ServerError("PLACE_FAILED", f"The result frames in {folder} could not be added to the "
                                                         f"timeline ({exc}). Free a channel above the source and reload."))
        return
    record.result_strip, record.placed = strip.name, True
    record.output_dir = folder
    record.stage = f"strip '{strip.name}' on channel {strip.channel}"


def _model_trained(scene, record) -> None:
    record.placed = True
    record.stage = "model ready"
    if record.target:
        scene.edn.target_model = record.target
    state.models_loaded = False  # fetch the list again, with the new model


def refresh_models(settings: ServerSettings, start: bool = True) -> None:
    def on_done(models, error) -> None:
        if error is not None:
            state.models_error = error.message
            return
        state.models, state.models_loaded, state.models_error = models, True, ""

    run_background("models", lambda: client_for(settings, start=start).models(), on_done)


def check_health(settings: ServerSettings) -> None:
    def work() -> dict:
        client: EdnClient = client_for(settings, start=False)
        return {**client.health(timeout=5.0), "url": client.url}

    def on_done(health, error) -> None:
        if error is not None:
            state.server = ServerStatus(code=error.code, message=error.message, checked=time.monotonic())
            return
        device = health.get("device") or {}
        state.server = ServerStatus(code="OK", message=f"Connected to {health.get('url', '')}",
                                    version=str(health.get("version", "")),
                                    device=str(device.get("name") or device.get("type") or ""), checked=time.monotonic())

    run_background("health", work, on_done)


# -- the timer ------------------------------------------------------------------------------------

def _advance(settings: ServerSettings, scene, record, now: float) -> bool:
    """Start whatever the record needs next; True while it still needs the poller."""
    uid = record.uid
    if record.state == jobstate.SUBMITTING:
        if f"submit:{uid}" not in state.inflight:  # the file was saved and reopened mid-submit
            _fail(scene, record, ServerError("NOT_SENT", "Blender stopped before this job reached the server. Start it again."),
                  jobstate.NOT_SENT)
            return False
        return True
    if record.state in jobstate.ACTIVE and record.job_id:
        if now >= state.next_poll.get(uid, 0.0):
            _poll(settings, uid, record.job_id)
        return True
    if record.state == jobstate.DONE and not record.placed:
        if now < state.next_poll.get(uid, 0.0) or f"fetch:{uid}" in state.inflight:
            return True
        if record.kind == "train":
            _model_trained(scene, record)
            if record.remote:
                _release_remote(settings, uid, record.job_id, delete_job=False)  # the model stays; the clip can go
            return False
        if record.kind not in RESULT_KINDS:
            record.placed = True
            return False
        _fetch_result(settings, uid, record.job_id, bpy.path.abspath(record.output_dir), record.remote)
        return True
    return False


def tick() -> float:
    """The bpy.app.timers function; returns the seconds until it should run again. Never raises
    (a timer that raises is unregistered by Blender)."""
    try:
        changed = _apply_finished()
        changed = _apply_transfers() or changed
        settings = settings_from_prefs()
        now = time.monotonic()
        active = False
        for scene in bpy.data.scenes:
            for record in scene.edn.jobs if getattr(scene, "edn", None) is not None else ():
                active = _advance(settings, scene, record, now) or active
        if now - state.server.checked > HEALTH_S:
            state.server.checked = now  # no second check while this one runs
            check_health(settings)
        if state.server.ok and not state.models_loaded and not state.models_error:
            refresh_models(settings, start=False)
        if changed:
            from . import strips

            strips.tag_sequencer_redraw()
        return POLL_S if active or busy() else IDLE_S
    except Exception:
        traceback.print_exc()
        return IDLE_S
